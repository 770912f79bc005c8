#!/usr/bin/env bash
# On the GPU machine (device run; carry .whl and .data): the training-speed benchmark, stock against fast
# components, side by side on one GPU; returns $OUT/speed.csv (copy it to results/measured/speed.csv).
#   BF_COMMIT=<commit> bash reproduce/device_speed.sh [benchmark_speed.py options]
# Default: Deformable DETR and DETR, baseline and BatchFormerV2, variants stock, fast and fast-bf16 (about 8 min).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source reproduce/gpu_env.sh
source reproduce/device_mini_data.sh
CONFIGS=${CONFIGS:-"configs/mini/deformable-detr_r18_1xb16-mini.py configs/mini/bf-deformable-detr_r18_1xb16-mini.py configs/mini/detr_r18_1xb16-mini.py configs/mini/bf-detr_r18_1xb16-mini.py"}
PYTHONUNBUFFERED=1 python3 reproduce/benchmark_speed.py $CONFIGS --data-root data/fashion_canvas \
  --variants stock fast fast-bf16 --out "$OUT/speed.csv" "$@" 2>&1 | grep -v "Iter(train)" | tee "$OUT/speed.log"
