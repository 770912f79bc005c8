#!/usr/bin/env bash
# Schedule calibration of the DETR-style mini configs: short runs (1800 iterations, lr x0.1 at 1440, validation
# at 900 and 1800) of four variants side by side, one per GPU, to see whether a detector learns at all before
# paying for its seeds. Writes the json logs to results/logs/calibration_mini/ and a summary table to
# results/tables/calibration_mini.md (reproduce/log_summary.py).
#   bash reproduce/calibrate_mini.sh            # on a machine with 4 GPUs (fewer: the runs share them)
# Variants: DETR with ResNet-18 C4 features (stride 16) instead of C5; Conditional DETR with C5 and with C4;
# DAB-DETR with C5. (DETR with C5 is the table's own config: results/logs/detection_mini/DETR-base-s0.json.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=.venv/bin/python
S="train_cfg.max_iters=1800 train_cfg.val_interval=900 param_scheduler.0.end=1800 param_scheduler.0.milestones=[1440] default_hooks.checkpoint.interval=100000"
C4="model.backbone.out_indices=(2,) model.neck.in_channels=[256]"
NGPU=$("$PY" -c 'import torch; print(max(1, torch.cuda.device_count()))')
i=0
run() {  # name config [cfg-options...]
  local name=$1 cfg=$2; shift 2
  CUDA_VISIBLE_DEVICES=$(( i % NGPU )) "$PY" tools/train.py "configs/mini/$cfg" --work-dir "work_dirs/calib/$name" \
    --cfg-options $S "$@" > "work_dirs/calib/$name.log" 2>&1 &
  i=$(( i + 1 ))
}
mkdir -p work_dirs/calib results/logs/calibration_mini
run detr-c4 detr_r18_1xb16-mini.py $C4
run cond-c5 conditional-detr_r18_1xb16-mini.py
run dab-c5 dab-detr_r18_1xb16-mini.py
run cond-c4 conditional-detr_r18_1xb16-mini.py $C4
wait
for name in detr-c4 cond-c5 cond-c4 dab-c5; do
  cp "$(ls -t work_dirs/calib/$name/*/vis_data/scalars.json | head -1)" results/logs/calibration_mini/$name.json
done
"$PY" reproduce/log_summary.py results/logs/calibration_mini/{detr-c4,cond-c5,cond-c4,dab-c5}.json \
  results/logs/detection_mini/DETR-base-s0.json results/logs/detection_mini/DeformableDETR-base-s0.json \
  --title "Mini-scale schedule calibration (reproduce/calibrate_mini.sh); provenance: results/logs/calibration_mini/README.md" \
  --out results/tables/calibration_mini.md
