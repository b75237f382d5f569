"""The one exception type for problems a user can cause (bad flag, missing file...).

main.py catches it once and prints a single line; anything else is a bug and may raise.
"""


class UserError(Exception):
    """A problem with the user's input or environment, reported as one line, exit code 2."""
