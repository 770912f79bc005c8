#!/usr/bin/env bash
# On the GPU machine (device run; carry .whl and .data): are the fast components equivalent to stock on the GPU,
# and how much faster are they? Three measurements, one after the other on one GPU, each bounded in time:
#   1. reproduce/bench/check_fast_equivalence.py  on all mini configs    -> $OUT/fast_equivalence.csv
#   2. reproduce/bench/benchmark_speed.py         stock / fast / fast-bf16 -> $OUT/speed.csv, $OUT/speed_traces/
#   3. reproduce/bench/benchmark_overhead.py      full-scale shapes, stock and fast components -> $OUT/overhead_full.csv
#   BF_COMMIT=<commit> bash tools/offline_gpu_host/run_speed_checks.sh
# Environment: CONFIGS (speed benchmark configs), DETECTORS (overhead benchmark), SPEED_ARGS, and the time
# limits EQUIV_S, SPEED_S, OVERHEAD_S (seconds). Copy the CSVs to results/measured/ afterwards.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source tools/offline_gpu_host/env.sh
source tools/offline_gpu_host/mini_data.sh
CONFIGS=${CONFIGS:-"configs/mini/deformable-detr_r18_1xb16-mini.py configs/mini/bf-deformable-detr_r18_1xb16-mini.py configs/mini/detr_r18_1xb16-mini.py configs/mini/bf-detr_r18_1xb16-mini.py"}
DETECTORS=${DETECTORS:-"DETR DeformableDETR ConditionalDETR DABDETR DINO"}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout "${EQUIV_S:-90}" python3 reproduce/bench/check_fast_equivalence.py configs/mini/*-mini.py \
  --data-root data/fashion_canvas --out "$OUT/fast_equivalence.csv" 2>&1 | grep -v "init_weights\|^ *$" \
  | tee "$OUT/fast_equivalence.log" | grep -v "Warning\|warn"
echo "[device_speed] equivalence done at $(( $(date +%s) - t0 )) s"
timeout "${SPEED_S:-300}" python3 reproduce/bench/benchmark_speed.py $CONFIGS --data-root data/fashion_canvas \
  --variants stock fast fast-bf16 ${SPEED_ARGS:-} --trace-dir "$OUT/speed_traces" --out "$OUT/speed.csv" 2>&1 \
  | grep -v "Iter(train)" > "$OUT/speed.log"
tail -20 "$OUT/speed.log"
echo "[device_speed] speed done at $(( $(date +%s) - t0 )) s"
timeout "${OVERHEAD_S:-200}" python3 reproduce/bench/benchmark_overhead.py --detectors $DETECTORS --components stock fast \
  --out "$OUT/overhead_full.csv" 2>&1 | tee "$OUT/overhead.log" | tail -12
echo "[device_speed] overhead done at $(( $(date +%s) - t0 )) s"
