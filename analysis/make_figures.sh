#!/usr/bin/env bash
# Regenerate every figure from what is stored under results/ (no training):
#   bash analysis/make_figures.sh [OUT_DIR]      (default results/figures)
# Figures whose inputs are not stored yet are skipped with a message saying how to make them. Beside the curves
# it also writes one table, convergence_mini.md (the baselines' box L1 on the way; a README block): into
# results/tables/ with the default OUT_DIR, into OUT_DIR otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=.venv/bin/python
OUT=${1:-results/figures}
TABLES=results/tables; [ "$OUT" = results/figures ] || TABLES=$OUT
mkdir -p "$OUT"

"$PY" analysis/plot_curves.py results/logs/detection_mini/*.json --smooth 3 -o "$OUT/curves_detection_mini.png" \
  --title "Mini benchmark, results/logs/detection_mini (fast components; Deformable DETR: with the fp32 deformable-attention backward)"
"$PY" analysis/plot_curves.py results/logs/detection_mini_fast/*.json --smooth 3 \
  -o "$OUT/curves_detection_mini_fast.png" \
  --title "Mini benchmark, fast components, same configs and seeds (results/logs/detection_mini_fast)"
"$PY" analysis/plot_curves.py results/logs/calibration_mini/{detr-c5-3000-scratch,detr-pre,cond-c5,cond-pre,cond-pre-lr1}.json \
  results/logs/detection_mini/DeformableDETR-base-s0.json -o "$OUT/curves_calibration_mini.png" \
  --title "Calibration: DETR-style detectors from scratch and with the Fashion-MNIST-pretrained backbone (one seed)"

"$PY" analysis/plot_curves.py results/logs/calibration_mini/smca-{fp16,fp32}-lr{2e-4,1e-4}-s1.json \
  results/logs/calibration_mini/detr_3000it/DETR-base-s1.json -o "$OUT/curves_calibration_smca.png" \
  --title "Calibration: SMCA-DETR seed 1 (fp16/fp32, lr 2e-4/1e-4) and DETR seed 1 at 3000 iterations (softmax CE: another loss scale)"
# Convergence of the baselines in numbers (box L1 on the way, AP at the end): SMCA-DETR and Conditional DETR
# against DETR, whose decoder they were designed to make converge faster. A table, beside the curves figure.
"$PY" analysis/log_summary.py results/logs/detection_mini/{SMCADETR-base-s{0,1,2},ConditionalDETR-base-s{0,1,2,3},DETR-base-s{0,1,2}}.json \
  --at 500 1000 3000 --out "$TABLES/convergence_mini.md" \
  --title "Mini benchmark baselines, every stored seed (results/logs/detection_mini; provenance in results/measured/detection_mini.csv): box L1 on the way and AP at the end (DETR trains 8000 iterations, the others 3000; DETR and SMCA-DETR at lr 1e-4, Conditional DETR at 2e-4)"
shopt -s nullglob
grad_logs=(results/logs/grad_per_class/*/grad_per_class.json)
if [ ${#grad_logs[@]} -gt 0 ]; then
  "$PY" analysis/plot_grad_per_class.py "${grad_logs[@]}" -o "$OUT/grad_per_class_mini.png"
else
  echo "skipped grad_per_class_mini.png: no logs under results/logs/grad_per_class/<run>/grad_per_class.json;" \
       "make them on a GPU with bash analysis/train_analysis_runs.sh"
fi
# The classification mini table's BatchFormerV2 runs log the gradient per class (ClsGradPerClassHook), one file a seed
cls_logs=(results/logs/classification_mini/DeiT-T-bf-s*.grad_per_class.json)
if [ ${#cls_logs[@]} -gt 0 ]; then
  labels=(); for _ in "${cls_logs[@]}"; do labels+=("DeiT-T + BatchFormerV2, Fashion-MNIST-LT"); done
  "$PY" analysis/plot_grad_per_class.py "${cls_logs[@]}" --labels "${labels[@]}" \
    -o "$OUT/grad_per_class_classification_mini.png" --stats "$TABLES/grad_per_class_classification_mini.md" \
    --title "Gradient each class receives from the other images through BatchFormerV2 (classification, ${#cls_logs[@]} seeds)"
else
  echo "skipped grad_per_class_classification_mini.png: no results/logs/classification_mini/DeiT-T-bf-s*.grad_per_class.json;" \
       "make them with bash reproduce/table_classification.sh --scale mini on a GPU"
fi
# The panoptic figure: seed 0 of the mini panoptic table's baseline and BatchFormerV2 runs on the same validation
# canvases, from the predictions each run stored (PanopticPredictionsHook), no checkpoint needed
pan=results/logs/panoptic_mini/DETR
if [ -f "$pan-base-s0.panoptic_predictions.json" ] && [ -f "$pan-bf-s0.panoptic_predictions.json" ]; then
  "$PY" analysis/plot_panoptic.py "$pan-base-s0.panoptic_predictions.json" "$pan-bf-s0.panoptic_predictions.json" \
    --labels "DETR" "DETR + BatchFormerV2" -o "$OUT/panoptic_mini.png" \
    --title "Mini panoptic benchmark, seed 0: the first validation canvases (results/logs/panoptic_mini)"
else
  echo "skipped panoptic_mini.png: no results/logs/panoptic_mini/DETR-{base,bf}-s0.panoptic_predictions.json;" \
       "make them with bash reproduce/table_panoptic.sh --scale mini on a GPU"
fi
# Grad-CAM needs checkpoints, which git does not store: analysis/train_analysis_runs.sh trains them (one GPU, about
# 7 minutes on an H200) into work_dirs/analysis/ and draws results/figures/gradcam/ itself.
base_ckpt=work_dirs/analysis/deformable-detr-base-s0/iter_1500.pth
bf_ckpt=work_dirs/analysis/bf-deformable-detr-gradlog-s0/iter_1500.pth
if [ -f "$base_ckpt" ] && [ -f "$bf_ckpt" ] && [ -d data/fashion_canvas/val ]; then
  mkdir -p "$OUT/gradcam"
  "$PY" analysis/gradcam.py configs/mini/deformable-detr_r18_1xb16-mini.py "$base_ckpt" \
    data/fashion_canvas/val/val_00000{0,1,2,3,4,5}.png -o "$OUT/gradcam" \
    --compare configs/mini/bf-deformable-detr_r18_1xb16-mini.py "$bf_ckpt" --names baseline BatchFormerV2
elif ls results/figures/gradcam/*.png >/dev/null 2>&1; then
  echo "gradcam/: no checkpoints under work_dirs/analysis/, so the stored results/figures/gradcam/ stays as it is" \
       "(bash analysis/train_analysis_runs.sh on a GPU makes new ones)"
else
  echo "skipped gradcam/: needs $base_ckpt and $bf_ckpt (bash analysis/train_analysis_runs.sh on a GPU)" \
       "and data/fashion_canvas"
fi
echo "figures in $OUT"
