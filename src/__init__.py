"""DyGen: learning from noisy labels via dynamics-enhanced generative modelling."""
import os

# The one place: no model or dataset hub at run time unless the user sets HF_HUB_OFFLINE=0
# (before anything imports transformers; every entry point imports src first).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
