#!/usr/bin/env bash
# On a 4-GPU machine (device run; carry .whl and .data): the speed benchmark and a mini-AP check of the fast
# components at once, one job per GPU, everything packed into $OUT/fast_check.tgz:
#   GPU 0  benchmark_speed.py  Deformable DETR baseline and BF, stock vs fast       -> speed/deformable.csv
#   GPU 1  benchmark_speed.py  DETR baseline and BF, stock vs fast vs fast-bf16     -> speed/detr.csv
#   GPU 2, 3  table_detection.sh --only $RUNS (the mini configs, fast components by default) into a separate
#             results folder (results/measured/detection_mini.csv, logs, table), to compare with the stored
#             stock runs: python reproduce/compare.py NEW.csv results/measured/detection_mini.csv
#   BF_COMMIT=<commit> bash tools/offline_gpu_host/run_fast_check.sh
# The four jobs share the host (64 cores); stock and fast are measured under the same load.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
BUDGET=${BUDGET:-575}
RUNS=${RUNS:-"DeformableDETR-base-s0 DeformableDETR-bf-s0"}
SPEED_ARGS=${SPEED_ARGS:-"--warmup 10 --iters 40 --profile-iters 1"}
source tools/offline_gpu_host/env.sh
source tools/offline_gpu_host/mini_data.sh
W=/tmp/fast_check; rm -rf "$W"; mkdir -p "$W/speed" "$W/results" && cp -r results/paper "$W/results/"
export PYTHONUNBUFFERED=1
left=$(( BUDGET - SECONDS - 40 ))
CUDA_VISIBLE_DEVICES=0 timeout $left python3 reproduce/bench/benchmark_speed.py configs/mini/deformable-detr_r18_1xb16-mini.py \
  configs/mini/bf-deformable-detr_r18_1xb16-mini.py --variants stock fast $SPEED_ARGS --data-root data/fashion_canvas \
  --out "$W/speed/deformable.csv" > "$W/speed/deformable.log" 2>&1 &
CUDA_VISIBLE_DEVICES=1 timeout $left python3 reproduce/bench/benchmark_speed.py configs/mini/detr_r18_1xb16-mini.py \
  configs/mini/bf-detr_r18_1xb16-mini.py --variants stock fast fast-bf16 $SPEED_ARGS --data-root data/fashion_canvas \
  --out "$W/speed/detr.csv" > "$W/speed/detr.log" 2>&1 &
bash reproduce/table_detection.sh --scale mini --gpu-ids 2 3 --only $RUNS --results-dir "$W/results" \
  --work-root "$W/work" --deadline $(( left - 45 )) --min-start-s 60 > "$W/table.log" 2>&1
wait
grep -h "s/iter\|skipped" "$W"/speed/*.log; tail -15 "$W/table.log"
tar czf "$OUT/fast_check.tgz" -C "$W" speed results table.log
echo "[device_fast_check] done at $SECONDS s"
