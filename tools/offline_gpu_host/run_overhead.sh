#!/usr/bin/env bash
# On the GPU machine (device run, carry .whl): set up the stack, then time baseline vs BatchFormerV2 for the
# five detectors at the paper's shapes and copy the CSV (and the built mmcv wheel, in parts) to $OUT.
#   BF_COMMIT=<commit> bash tools/offline_gpu_host/run_overhead.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source tools/offline_gpu_host/env.sh
if [[ "$MMCV_WHEEL" == /tmp/mmcv-build/* ]]; then  # freshly built: send it back for later sittings
  split -b 15M -d "$MMCV_WHEEL" "$OUT/mmcv-part-"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
PYTHONUNBUFFERED=1 python3 reproduce/bench/benchmark_overhead.py --out "$OUT/overhead_full.csv" "$@" 2>&1 | tee "$OUT/overhead.log"
