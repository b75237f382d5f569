#!/usr/bin/env bash
# The quick preset: the same method on a stratified 20 Newsgroups subset, minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 main.py --preset quick "$@"
