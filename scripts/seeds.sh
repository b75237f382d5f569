#!/usr/bin/env bash
# Base vs DyGen on the quick preset: SN 20% and 40%, seeds 1-3, then the summary table.
# Usage: bash scripts/seeds.sh [OUTPUT_DIR [MAIN.PY FLAGS...]] (default cache); e.g.
# bash scripts/seeds.sh /tmp/seeds --length_bucket 0 --cpu_dropout torch. About 6 x 3-6 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-cache}
shift || true
for r in 0.2 0.4; do
  for s in 1 2 3; do
    python3 main.py --preset quick --noise_ratio "$r" --seed "$s" --output_dir "$out" "$@"
  done
done
python3 scripts/summarize_runs.py "$out"
