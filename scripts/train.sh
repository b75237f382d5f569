#!/usr/bin/env bash
# The authors' 20 Newsgroups configuration (SN 20%, lr 1e-4, batch 64, 10 epochs, T 10,
# lambda_t 1, seed 1, max_len 150) on the embedded all-MiniLM-L6-v2.
# Hours on a 2-core CPU, minutes on a GPU. Extra flags are passed on (e.g. --noise_ratio 0.4).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 main.py --dataset 20news --preset paper \
  --noise_type SN --noise_ratio 0.2 --lr 1e-4 --train_batch_size 64 --epochs 10 \
  --vae_epochs 10 --lambda_t 1 --seed 1 --max_len 150 --n_model 2 "$@"
