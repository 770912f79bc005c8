#!/usr/bin/env bash
# Train what the analysis figures need beyond the stored logs, on one GPU, then store their small outputs:
#   bash analysis/train_analysis_runs.sh [--seed S] [--data-root DIR] [--work-root DIR] [--max-iters N]
# 1. the gradient-per-class run: configs/mini/analysis/bf-deformable-detr_r18_1xb16-mini_gradlog.py (Deformable
#    DETR + BatchFormerV2 with GradPerClassHook; training itself is unchanged by the hook), and
# 2. its baseline, configs/mini/deformable-detr_r18_1xb16-mini.py, with the same seed,
# both at once on the visible GPU (CUDA_VISIBLE_DEVICES), resuming when interrupted (BF_DEADLINE: see tools/train.py).
# When both have finished:
#   results/logs/grad_per_class/<run>/grad_per_class.json     (+ the run's mmengine scalars.json)
#   results/figures/gradcam/*.png    Grad-CAM, baseline vs BatchFormerV2, from the two final checkpoints
# Then `bash analysis/make_figures.sh` draws the gradient figure from the stored log. --max-iters N shortens both
# runs (a pipeline check, e.g. on the CPU with the smoke data; its numbers mean nothing, so its outputs go to
# WORK/check_results/ instead of results/).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=.venv/bin/python
SEED=0; DATA=data/fashion_canvas; WORK=work_dirs/analysis; MAX_ITERS=
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) SEED=$2; shift 2 ;;
    --data-root) DATA=$2; shift 2 ;;
    --work-root) WORK=$2; shift 2 ;;
    --max-iters) MAX_ITERS=$2; shift 2 ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    *) echo "train_analysis_runs.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ ! -f "$DATA/annotations/instances_train.json" ]; then
  echo "train_analysis_runs.sh: no mini benchmark at $DATA; make it with" \
       "python -m mmdet_plugins.datasets.fashion_canvas $DATA --scale mini (or pass --data-root)" >&2
  exit 2
fi
GRAD_CFG=configs/mini/analysis/bf-deformable-detr_r18_1xb16-mini_gradlog.py
BASE_CFG=configs/mini/deformable-detr_r18_1xb16-mini.py
BF_CFG=configs/mini/bf-deformable-detr_r18_1xb16-mini.py
GRAD_RUN=bf-deformable-detr-gradlog-s$SEED; BASE_RUN=deformable-detr-base-s$SEED
max_iters=${MAX_ITERS:-$("$PY" -c "from mmengine.config import Config; print(Config.fromfile('$BASE_CFG').train_cfg.max_iters)")}
mkdir -p "$WORK"
RESULTS=results; [ -n "$MAX_ITERS" ] && RESULTS=$WORK/check_results

train() {  # CONFIG RUN: train (or resume) in the background, log to WORK/RUN.log
  local opts=(randomness.seed="$SEED" train_dataloader.dataset.data_root="$DATA/"
              val_dataloader.dataset.data_root="$DATA/" val_evaluator.ann_file="$DATA/annotations/instances_val.json"
              train_cfg.max_iters="$max_iters" train_cfg.val_interval="$max_iters")
  if [ -f "$WORK/$2/iter_$max_iters.pth" ]; then echo "[analysis] $2: finished already"; return; fi
  echo "[analysis] $2: training ($1, seed $SEED; log $WORK/$2.log)"
  PYTHONUNBUFFERED=1 "$PY" tools/train.py "$1" --work-dir "$WORK/$2" --resume --cfg-options "${opts[@]}" \
    >> "$WORK/$2.log" 2>&1 &
}
train "$GRAD_CFG" "$GRAD_RUN"
train "$BASE_CFG" "$BASE_RUN"
wait
for run in "$GRAD_RUN" "$BASE_RUN"; do
  if [ ! -f "$WORK/$run/iter_$max_iters.pth" ]; then
    echo "[analysis] $run has not finished (stopped at a deadline or failed: tail $WORK/$run.log); run again to resume"
    tail -5 "$WORK/$run.log"
    exit 3
  fi
done

store=$RESULTS/logs/grad_per_class/$GRAD_RUN
mkdir -p "$store"
cp "$WORK/$GRAD_RUN/grad_per_class.json" "$store/grad_per_class.json.tmp" && mv "$store/grad_per_class.json.tmp" "$store/grad_per_class.json"
for run in "$GRAD_RUN" "$BASE_RUN"; do  # every sitting's mmengine json log, in order (timestamped folders)
  mkdir -p "$RESULTS/logs/grad_per_class/$run"
  cat $(ls "$WORK/$run"/*/vis_data/scalars.json | sort) > "$RESULTS/logs/grad_per_class/$run/scalars.json.tmp" \
    && mv "$RESULTS/logs/grad_per_class/$run/scalars.json.tmp" "$RESULTS/logs/grad_per_class/$run/scalars.json"
done
echo "[analysis] stored $store/grad_per_class.json"

device=cpu; "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" && device=cuda
mkdir -p "$RESULTS/figures/gradcam"
"$PY" analysis/gradcam.py "$BASE_CFG" "$WORK/$BASE_RUN/iter_$max_iters.pth" \
  "$DATA"/val/val_00000{0,1,2,3,4,5}.png -o "$RESULTS/figures/gradcam" --device "$device" \
  --compare "$BF_CFG" "$WORK/$GRAD_RUN/iter_$max_iters.pth" --names baseline BatchFormerV2
