#!/usr/bin/env bash
# DyT against the dense ViT-B/16 on a GPU, in one process per line: threshold
# (skipping) and capacity mode, eager and torch.compile, bfloat16, gates
# forced to 50 % of the patch tokens. Usage:
#   bash tools/deployment/benchmark_gpu.sh [CONFIG] [CAPACITY]   > gpu.txt
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
CONFIG=${1:-configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py}
CAPACITY=${2:-0.6}
BM=("$PY" tools/analysis_tools/benchmark.py "$CONFIG" --device cuda --dtype bfloat16
    --batch-size 1 16 64 128 256 --force-rate 0.5 --repeats 10 --warmup 3)
for compile in "" --compile; do
  echo "== threshold (skipping) ${compile:-eager}"
  "${BM[@]}" $compile
  echo "== capacity ${CAPACITY} ${compile:-eager}"
  "${BM[@]}" $compile --cfg-options model.backbone.capacity="$CAPACITY"
done
