#!/usr/bin/env bash
# On the offline GPU host (carry .whl and .data): set up the stack, make the mini data, train/resume a table's mini
# runs until a deadline inside the host's command limit, and pack the results (CSV, table, json logs) into $OUT.
#   BF_COMMIT=<commit> bash tools/offline_gpu_host/run_table.sh TABLE [reproduce/table_TABLE.sh options]
# TABLE: detection, classification (the scripts reproduce/table_*.sh). BUDGET: seconds the command may take (default
# 585). Optional: GPU_UTIL_LOG=1 samples the GPUs' utilization (nvidia-smi, every 500 ms) into $OUT/gpu_util.csv.
# Optional: PROFILE_CONFIGS="cfg ..." PROFILE_GPU=3 also runs reproduce/bench/profile_train_step.py on that GPU
# (give the table script the other GPUs with --gpu-ids) and returns $OUT/profile.tgz.
# Optional: ANALYSIS_GPU=3 also runs analysis/train_analysis_runs.sh on that GPU (the gradient-per-class run, its
# baseline and Grad-CAM; same deadline, resumed by the next call) and returns $OUT/analysis.tgz.
# Optional: CALIBRATE_SET=detr CALIBRATE_GPUS="2 3" also runs reproduce/bench/calibrate_mini.sh with that set on those
# GPUs (give the table script the others with --gpu-ids, or leave it nothing to train; without CALIBRATE_GPUS the
# calibration shares every GPU) with the same deadline (the next call resumes its stopped runs), and returns $OUT/calibrate.tgz.
# Optional: SPEED_GPUS="2 3" SPEED_CONFIGS="a.py b.py;c.py d.py" also runs reproduce/bench/benchmark_speed.py
# (variants SPEED_VARIANTS, default "stock fast fast-compile") on those GPUs, one ';'-separated group of configs per
# GPU (keep a baseline and its BF config in one group: the BF overhead ratio needs both), then, with
# EQUIV_CONFIGS="...", reproduce/bench/check_fast_equivalence.py --compiled on the first of them; same deadline; returns
# $OUT/speed.tgz.
# When it builds mmcv (no prebuilt wheel in .whl/), it returns the wheel stripped as $OUT/mmcv-2.1.0-*.whl: put it in
# .whl/ for the next fresh host. Call it again at once (the machine stays warm about 30 s): finished runs are skipped, stopped ones resume.
set -euo pipefail
cd "$(dirname "$0")/../.."
TABLE=${1:-}
if [ -z "$TABLE" ] || [ ! -f "reproduce/table_$TABLE.sh" ]; then
  echo "usage: bash tools/offline_gpu_host/run_table.sh TABLE [options]; TABLE is one of:" \
    $(ls reproduce/table_*.sh | sed 's#reproduce/table_##; s#\.sh##') >&2
  exit 2
fi
shift
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
BUDGET=${BUDGET:-585}   # seconds this command may take (the device's limit is 600)
source tools/offline_gpu_host/env.sh
strip_pid=
case "${MMCV_WHEEL:-}" in  # built in this command (no prebuilt wheel carried): return it stripped, $OUT/mmcv-*.whl
  /tmp/mmcv-build/*) bash tools/offline_gpu_host/strip_mmcv_wheel.sh "$MMCV_WHEEL" -o "$OUT" > /tmp/strip.log 2>&1 &
                     strip_pid=$! ;;
esac
[ "$TABLE" = classification ] && export MINI_CANVASES=0  # it reads Fashion-MNIST itself
_t_data=$SECONDS
source tools/offline_gpu_host/mini_data.sh
echo "[device] $_t_data s on the stack, $(( SECONDS - _t_data )) s on the mini data"
util_pid=
if [ -n "${GPU_UTIL_LOG:-}" ]; then  # sample the GPUs' utilization every 500 ms while the table trains
  nvidia-smi --query-gpu=timestamp,index,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 \
    > "$OUT/gpu_util.csv" 2>/dev/null &
  util_pid=$!
fi
prof_pid=
if [ -n "${PROFILE_CONFIGS:-}" ]; then   # optionally profile a training step on one GPU meanwhile (keep it free)
  mkdir -p /tmp/profile
  # (bounded, so that the packing below still happens inside the command's limit)
  CUDA_VISIBLE_DEVICES=${PROFILE_GPU:-0} PYTHONUNBUFFERED=1 timeout $(( BUDGET - SECONDS - 40 )) \
    python3 reproduce/bench/profile_train_step.py $PROFILE_CONFIGS \
    --data-root data/fashion_canvas --out /tmp/profile/profile_mini.csv --summary /tmp/profile/profile_mini.md \
    --trace-dir /tmp/profile/traces > /tmp/profile/profile.log 2>&1 &
  prof_pid=$!
fi
# Leave time for the last validation, the checkpoints and the packing: a command that built mmcv took 93 s from its
# runs' deadline to its end (it also waits for the wheel's stripping), 18 s more than it had left; the others about 50.
reserve=75; [ -n "$strip_pid" ] && reserve=95
left=$(( BUDGET - SECONDS - reserve ))
echo "[device] $SECONDS s used for setup; training for at most $left s"
spd_pids=()
if [ -n "${SPEED_CONFIGS:-}" ]; then
  mkdir -p /tmp/speed
  read -r -a spd_gpus <<< "${SPEED_GPUS:-0}"
  [ ${#spd_gpus[@]} -gt 0 ] || spd_gpus=(0)
  IFS=';' read -r -a spd_groups <<< "$SPEED_CONFIGS"
  spd_end=$(( $(date +%s) + BUDGET - SECONDS - 45 ))
  for k in "${!spd_groups[@]}"; do
    g=${spd_gpus[$(( k % ${#spd_gpus[@]} ))]}
    ( set +e; export CUDA_VISIBLE_DEVICES=$g PYTHONUNBUFFERED=1
      rem=$(( spd_end - $(date +%s) ))  # (timeout 0 would mean no limit: start nothing with under 30 s left)
      if [ $rem -gt 30 ]; then
        timeout $rem python3 reproduce/bench/benchmark_speed.py ${spd_groups[$k]} \
          --variants ${SPEED_VARIANTS:-stock fast fast-compile} ${SPEED_ARGS:---warmup 10 --iters 40 --profile-iters 1} \
          --data-root data/fashion_canvas --out /tmp/speed/speed_$k.csv > /tmp/speed/speed_$k.log 2>&1 \
          || echo "[device] benchmark group $k ended with status $?" >> /tmp/speed/speed_$k.log
      fi
      rem=$(( spd_end - $(date +%s) ))
      if [ "$k" = 0 ] && [ -n "${EQUIV_CONFIGS:-}" ] && [ $rem -gt 30 ]; then
        timeout $rem python3 reproduce/bench/check_fast_equivalence.py $EQUIV_CONFIGS --compiled \
          --rtol 1e-2 --data-root data/fashion_canvas --out /tmp/speed/compiled_equivalence.csv \
          > /tmp/speed/equivalence.log 2>&1 || echo "[device] equivalence check: status $?" >> /tmp/speed/equivalence.log
      fi ) &
    spd_pids+=($!)
  done
fi
ana_pid=
if [ -n "${ANALYSIS_GPU:-}" ]; then
  ( export CUDA_VISIBLE_DEVICES=$ANALYSIS_GPU BF_DEADLINE=$(( $(date +%s) + left - 60 ))  # (Grad-CAM after it)
    bash analysis/train_analysis_runs.sh > /tmp/analysis.log 2>&1 ) &
  ana_pid=$!
fi
cal_pid=
if [ -n "${CALIBRATE_SET:-}" ]; then
  ckpt=data/pretrained/resnet18_gn_fashion_mnist.pth  # made once here, not by both scripts at the same time
  # (the from-scratch sets need no checkpoint)
  case "$CALIBRATE_SET" in
    scratch|compile|cudagraphs|tables) ;;
    *) [ -f "$ckpt" ] || python3 -m mmdet_plugins.pretrain.fashion_mnist_backbone "$ckpt" > /tmp/pretrain.log 2>&1 \
         || echo "[device] pretraining the backbone failed: see pretrain.log in calibrate.tgz" ;;
  esac
  left=$(( BUDGET - SECONDS - 75 ))
  ( export GPUS=${CALIBRATE_GPUS:-} BF_DEADLINE=$(( $(date +%s) + left - 20 ))
    bash reproduce/bench/calibrate_mini.sh "$CALIBRATE_SET" > /tmp/calibrate.log 2>&1 ) &
  cal_pid=$!
fi
set +e
PYTHONUNBUFFERED=1 bash "reproduce/table_$TABLE.sh" --scale mini --deadline "$left" --min-start-s 120 "$@" \
  2>&1 | tee "$OUT/table.log"
rc=${PIPESTATUS[0]}
set -e
for pid in "${spd_pids[@]}"; do wait "$pid" || echo "[device] a speed job failed or ran out of time: see speed.tgz"; done
[ ${#spd_pids[@]} -gt 0 ] && { tar czf "$OUT/speed.tgz" -C /tmp speed || true; }
if [ -n "$prof_pid" ]; then
  wait "$prof_pid" || echo "[device] the profile failed: see profile.log in profile.tgz"
  tar czf "$OUT/profile.tgz" -C /tmp profile || true
fi
if [ -n "$ana_pid" ]; then
  wait "$ana_pid" || echo "[device] the analysis runs have not finished: see analysis.log in analysis.tgz"
  cp /tmp/analysis.log work_dirs/analysis/ 2>/dev/null || true
  tar czf "$OUT/analysis.tgz" results/logs/grad_per_class results/figures/gradcam \
    $(ls work_dirs/analysis/*.log 2>/dev/null) 2>/dev/null || true
fi
if [ -n "$cal_pid" ]; then
  wait "$cal_pid" || echo "[device] the calibration failed: see calibrate.log in calibrate.tgz"
  cp /tmp/calibrate.log /tmp/pretrain.log work_dirs/calib/ 2>/dev/null || true
  tar czf "$OUT/calibrate.tgz" results/logs/calibration_mini results/tables/calibration_{mini,detr}.md \
    $(ls work_dirs/calib/*.log 2>/dev/null) 2>/dev/null || true
fi
if [ -n "$strip_pid" ]; then
  wait "$strip_pid" && tail -1 /tmp/strip.log || echo "[device] stripping the mmcv wheel failed: $(tail -1 /tmp/strip.log)"
fi
[ -n "$util_pid" ] && kill "$util_pid" 2>/dev/null || true
tar czf "$OUT/results.tgz" results/measured results/tables results/logs 2>/dev/null || true
nvidia-smi --query-gpu=name,utilization.gpu,memory.used --format=csv,noheader || true
exit $rc
