#!/usr/bin/env bash
# Schedule calibration of the DETR-style mini configs: short runs of four variants side by side, one per GPU,
# with validations on the way, to see whether a detector learns at all before paying for its seeds. Writes the
# json logs to results/logs/calibration_mini/ and a summary of every calibration log there (with the table's
# DETR and Deformable DETR runs for reference) to results/tables/calibration_mini.md (analysis/log_summary.py),
# and the detr set beside the table's DETR runs to results/tables/calibration_detr.md. Only runs that reached their
# last iteration are stored (every sitting's log lines); a run that failed or stopped early is named and the script
# exits 1. Called again, it resumes the runs that a deadline (BF_DEADLINE) stopped and skips the finished ones.
#   bash reproduce/bench/calibrate_mini.sh [scratch|pretrained|smca|detr|compile|cudagraphs|dabdino|tables]   # on a machine with 4 GPUs (fewer: they share)
# scratch (1800 iterations, validation at 900 and 1800), from-scratch backbones: DETR with ResNet-18 C4
#   features (stride 16) instead of C5; Conditional DETR with C5 and with C4; DAB-DETR with C5.
# pretrained (2400 iterations, validation at 1200 and 2400), the Fashion-MNIST-pretrained ResNet-18 (made first
#   when missing: python -m mmdet_plugins.pretrain.fashion_mnist_backbone): DETR and Conditional DETR, C5, with
#   the backbone at 0.1x the learning rate (the configs' setting) and at 1x.
# smca (1000 iterations, validation at 1000), pretrained backbone: SMCA-DETR seed 1, whose table run learned and
#   then fell back to the average-box plateau by iteration 1000: as configured (fp16, lr 2e-4), in fp32, at lr 1e-4
#   (the official SMCA lr), and both.
# detr (2400 iterations, validation at 1200 and 2400), pretrained backbone: DETR seeds 0 and 2, whose 8000-iteration
#   baselines at lr 2e-4 stayed at chance (the logs of those runs, results/logs/calibration_mini/detr_8000it_lr2e-4/,
#   are the reference: same settings up to iteration 1920; the DETR configs have used lr 1e-4 since),
#   at lr 1e-4 (the official DETR lr), seed 0 also in fp32 at lr 2e-4 and with BatchFormerV2 at lr 1e-4: does DETR's
#   plateau have the cause SMCA's had, and does BatchFormerV2 still help without it?
# compile (1500 iterations, the config's schedule, validation at 1500), Deformable DETR from scratch: baseline and
#   BatchFormerV2 seed 0 with the encoder and decoder layers compiled (configs/mini/compiled/), to set their AP
#   beside the eager fast runs of the same seed (results/measured/detection_mini_fast.csv): issue 6's accuracy check.
# cudagraphs (1500 iterations, validation at 1500), Deformable DETR from scratch: baseline and BatchFormerV2, seeds 0
#   and 1, with the whole training forward compiled and replayed as CUDA graphs (configs/mini/cudagraphs/), to set
#   their AP beside the eager runs of the same seeds (results/measured/detection_mini.csv).
# dabdino (each config's own schedule, validation half way and at the end): the DAB-DETR (3000 iterations) and DINO
#   (1500) mini baselines as configured, seeds 0 and 1, before their table rows: does every baseline learn?
# tables: no runs; only the two tables, rebuilt from the stored logs (no GPU needed).
# GPUS="2 3" puts the runs on those GPUs (default: all, one run each, round-robin).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=.venv/bin/python
SET=${1:-pretrained}
unset RUN_ITERS  # (set per run below, never from the caller's environment)
if [ -n "${GPUS:-}" ]; then gpu_list=$GPUS
else gpu_list=$("$PY" -c 'import torch; print(*range(max(1, torch.cuda.device_count())))') \
  || { echo "error: could not count the GPUs with torch; set GPUS=\"0 1 ...\"" >&2; exit 2; }; fi
IFS=', ' read -r -a GPU_IDS <<< "$gpu_list"
for g in "${GPU_IDS[@]}"; do
  [[ $g =~ ^[0-9]+$ ]] || { echo "error: GPUS='$GPUS': '$g' is not a GPU id (give ids like \"0 1\" or \"0,1\")" >&2; exit 2; }
done
[ ${#GPU_IDS[@]} -gt 0 ] || { echo "error: no GPU ids (GPUS='${GPUS:-}')" >&2; exit 2; }
C4="model.backbone.out_indices=(2,) model.neck.in_channels=[256]"
LR1="optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult=1.0"
SCRATCH="model.backbone.init_cfg=None optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult=1.0"
case "$SET" in
  scratch) ITERS=1800 ;;
  pretrained) ITERS=2400 ;;
  smca) ITERS=1000 ;;
  detr) ITERS=2400 ;;
  compile|cudagraphs) ITERS=1500 ;;
  dabdino) ITERS=3000 ;;  # (DINO's runs: RUN_ITERS=1500)
  tables) ITERS=0 ;;
  *) echo "error: unknown set '$SET' (scratch, pretrained, smca, detr, compile, cudagraphs, dabdino or tables)" >&2; exit 2 ;;
esac
schedule() {  # ITERS -> cfg-options: that many iterations, lr x0.1 at 80%, validation half way (or at the end only)
  local n=$1 val=$(( $1 / 2 )); case "$SET" in smca|compile|cudagraphs) val=$1 ;; esac
  echo "train_cfg.max_iters=$n train_cfg.val_interval=$val param_scheduler.0.end=$n param_scheduler.0.milestones=[$(( n * 4 / 5 ))] default_hooks.checkpoint.interval=100000"
}
i=0
names=() pids=() iters=()
finished() { grep -q "Iter(train) \[ *$2/$2\]" "work_dirs/calib/$1.log" 2>/dev/null; }  # name iters
run() {  # name config [tools/train.py flags] [cfg-options...]; RUN_ITERS=N for another length than the set's
  # A run that a deadline (BF_DEADLINE) stopped resumes from its checkpoint; a finished one is not trained again.
  local name=$1 cfg=$2 flags=() n=${RUN_ITERS:-$ITERS}; shift 2
  while [ "${1:-}" = --no-amp ]; do flags+=("$1"); shift; done
  names+=("$name"); iters+=("$n")
  if finished "$name" "$n"; then echo "$name: trained already (work_dirs/calib/$name.log)"; pids+=(""); return; fi
  [ -f "work_dirs/calib/$name/last_checkpoint" ] && flags+=(--resume)
  CUDA_VISIBLE_DEVICES=${GPU_IDS[$(( i % ${#GPU_IDS[@]} ))]} "$PY" tools/train.py "configs/mini/$cfg" --work-dir "work_dirs/calib/$name" \
    "${flags[@]}" --cfg-options $(schedule "$n") "$@" >> "work_dirs/calib/$name.log" 2>&1 &
  pids+=($!); i=$(( i + 1 ))
}
mkdir -p work_dirs/calib results/logs/calibration_mini
if [ "$SET" = tables ]; then
  :  # no runs
elif [ "$SET" = scratch ]; then
  run detr-c4 detr_r18_1xb16-mini.py $SCRATCH $C4
  run cond-c5 conditional-detr_r18_1xb16-mini.py $SCRATCH
  run dab-c5 dab-detr_r18_1xb16-mini.py $SCRATCH
  run cond-c4 conditional-detr_r18_1xb16-mini.py $SCRATCH $C4
elif [ "$SET" = compile ]; then
  run compile-deformable-base-s0 compiled/deformable-detr_r18_1xb16-mini.py randomness.seed=0
  run compile-deformable-bf-s0 compiled/bf-deformable-detr_r18_1xb16-mini.py randomness.seed=0
elif [ "$SET" = cudagraphs ]; then
  for seed in 0 1; do
    run cudagraphs-deformable-base-s$seed cudagraphs/deformable-detr_r18_1xb16-mini.py randomness.seed=$seed
    run cudagraphs-deformable-bf-s$seed cudagraphs/bf-deformable-detr_r18_1xb16-mini.py randomness.seed=$seed
  done
else  # pretrained, smca, detr: the Fashion-MNIST-pretrained backbone
  ckpt=data/pretrained/resnet18_gn_fashion_mnist.pth
  [ -f "$ckpt" ] || "$PY" -m mmdet_plugins.pretrain.fashion_mnist_backbone "$ckpt" 2>&1 | tee work_dirs/calib/pretrain.log
  cp "$ckpt" /dev/null  # fail here, not in four runs, if it is missing
  if [ "$SET" = smca ]; then
    LR2=optim_wrapper.optimizer.lr=2e-4 LR1=optim_wrapper.optimizer.lr=1e-4  # (the config's lr is now 1e-4)
    run smca-fp16-lr2e-4-s1 smca-detr_r18_1xb16-mini.py randomness.seed=1 $LR2
    run smca-fp32-lr2e-4-s1 smca-detr_r18_1xb16-mini.py --no-amp randomness.seed=1 $LR2
    run smca-fp16-lr1e-4-s1 smca-detr_r18_1xb16-mini.py randomness.seed=1 $LR1
    run smca-fp32-lr1e-4-s1 smca-detr_r18_1xb16-mini.py --no-amp randomness.seed=1 $LR1
  elif [ "$SET" = dabdino ]; then
    for seed in 0 1; do
      run dab-s$seed dab-detr_r18_1xb16-mini.py randomness.seed=$seed
      RUN_ITERS=1500 run dino-s$seed dino-4scale_r18_1xb16-mini.py randomness.seed=$seed
    done
  elif [ "$SET" = detr ]; then
    LR2=optim_wrapper.optimizer.lr=2e-4 LR1=optim_wrapper.optimizer.lr=1e-4
    run detr-fp16-lr1e-4-s0 detr_r18_1xb16-mini.py randomness.seed=0 $LR1
    run detr-fp16-lr1e-4-s2 detr_r18_1xb16-mini.py randomness.seed=2 $LR1
    run detr-fp32-lr2e-4-s0 detr_r18_1xb16-mini.py --no-amp randomness.seed=0 $LR2
    run bf-detr-fp16-lr1e-4-s0 bf-detr_r18_1xb16-mini.py randomness.seed=0 $LR1
  else
    run detr-pre detr_r18_1xb16-mini.py
    run detr-pre-lr1 detr_r18_1xb16-mini.py $LR1
    run cond-pre conditional-detr_r18_1xb16-mini.py
    run cond-pre-lr1 conditional-detr_r18_1xb16-mini.py $LR1
  fi
fi
incomplete=() finished_names=()
for k in "${!names[@]}"; do
  name=${names[$k]}
  if [ -n "${pids[$k]}" ] && ! wait "${pids[$k]}"; then
    echo "error: $name failed: see work_dirs/calib/$name.log" >&2; incomplete+=("$name"); continue
  fi
  n=${iters[$k]}
  if ! finished "$name" "$n"; then  # e.g. stopped at BF_DEADLINE: the same command again resumes it
    echo "error: $name stopped before iteration $n: its log is not stored yet (work_dirs/calib/$name.log)" >&2
    incomplete+=("$name"); continue
  fi
  finished_names+=("$name")
done
if [ ${#finished_names[@]} -gt 0 ]; then
  # Store each finished run's log: every sitting's lines, without those a later sitting trained again (one python
  # for all). A run without log lines keeps its stored log; the names of those are printed and count as incomplete.
  no_lines=$("$PY" -c 'import sys, glob
from reproduce.runner.runs import merge_sittings
from mmdet_plugins.utils.provenance import atomic_write_text
for name in sys.argv[1:]:
    lines = merge_sittings(sorted(glob.glob(f"work_dirs/calib/{name}/*/vis_data/scalars.json")))
    if not lines:
        print(f"error: {name}: no json log lines in work_dirs/calib/{name}/; the stored log stays", file=sys.stderr)
        print(name)
        continue
    atomic_write_text(f"results/logs/calibration_mini/{name}.json", "".join(lines))' "${finished_names[@]}")
  for name in $no_lines; do incomplete+=("$name"); done
fi
logs=()
for name in detr-c4 cond-c5 cond-c4 dab-c5 detr-c5-3000-scratch detr-pre detr-pre-lr1 cond-pre cond-pre-lr1 \
            smca-fp16-lr2e-4-s1 smca-fp32-lr2e-4-s1 smca-fp16-lr1e-4-s1 smca-fp32-lr1e-4-s1 \
            detr-fp16-lr1e-4-s0 detr-fp16-lr1e-4-s2 detr-fp32-lr2e-4-s0 bf-detr-fp16-lr1e-4-s0 \
            compile-deformable-base-s0 compile-deformable-bf-s0 \
            cudagraphs-deformable-base-s0 cudagraphs-deformable-bf-s0 \
            cudagraphs-deformable-base-s1 cudagraphs-deformable-bf-s1 dab-s0 dino-s0 dab-s1 dino-s1; do
  [ -f results/logs/calibration_mini/$name.json ] && logs+=(results/logs/calibration_mini/$name.json)
done
"$PY" analysis/log_summary.py "${logs[@]}" \
  results/logs/detection_mini/DeformableDETR-{base,bf}-s{0,1}.json \
  --title "Mini-scale schedule calibration (reproduce/bench/calibrate_mini.sh); provenance: results/logs/calibration_mini/README.md" \
  --out results/tables/calibration_mini.md
# The DETR set beside the table's runs of the same seeds (same settings up to iteration 1920): box L1 on the way.
detr_logs=(results/logs/calibration_mini/{detr-fp16-lr1e-4-s0,detr-fp16-lr1e-4-s2,detr-fp32-lr2e-4-s0,bf-detr-fp16-lr1e-4-s0}.json
           results/logs/calibration_mini/detr_8000it_lr2e-4/DETR-{base-s0,base-s2,bf-s0}.json)
if ls "${detr_logs[@]}" > /dev/null 2>&1; then
  "$PY" analysis/log_summary.py "${detr_logs[@]}" --at 1000 1500 1900 \
    --title "DETR calibration (calibrate_mini.sh detr) beside the earlier table DETR runs of the same seeds (fp16, lr 2e-4, 8000 iterations: calibration_mini/detr_8000it_lr2e-4); provenance: results/logs/calibration_mini/README.md" \
    --out results/tables/calibration_detr.md
fi
if [ ${#incomplete[@]} -gt 0 ]; then echo "incomplete runs (not stored): ${incomplete[*]}" >&2; exit 1; fi
