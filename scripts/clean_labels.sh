#!/usr/bin/env bash
# Bring your own noisy data: a CSV in, corrected labels out.
# Builds an example CSV from real TREC questions (string labels, ~27% of them flipped, a
# `gold` column with the true ones), runs DyGen on it and shows the most suspect rows.
# Replace the example with your own file: --train_file F [--test_file F]
#   [--text_column text --label_column label --gold_column gold] [--flag_ratio r]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-cache/clean_labels_example}
mkdir -p "$OUT"
python - "$OUT" <<'PY'
import sys
from src.data.example import write_noisy_example
rate = write_noisy_example(f"{sys.argv[1]}/train.csv", n=240, noise_ratio=0.3, seed=0,
                           n_test=60, test_path=f"{sys.argv[1]}/test.csv")
print(f"example: {sys.argv[1]}/train.csv, 240 questions, {rate:.1%} of labels flipped")
PY
python main.py --dataset csv --train_file "$OUT/train.csv" --test_file "$OUT/test.csv" \
  --max_len 32 --epochs 4 --train_batch_size 16 --lr 2e-4 --vae_epochs 10 --flag_ratio 0.25 \
  --output_dir "$OUT/cache" "$@"
RUN=$(ls -td "$OUT"/cache/runs/*/ | head -1)
echo "corrected labels: ${RUN}corrected_labels.csv (most suspect first); label ids: ${RUN}label_map.json"
head -n 11 "${RUN}corrected_labels.csv" | cut -c1-160
