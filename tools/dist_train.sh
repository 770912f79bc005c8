#!/usr/bin/env bash
# Multi-GPU training through torchrun: bash tools/dist_train.sh CONFIG NUM_GPUS [train.py options]
set -euo pipefail
if [ $# -lt 2 ]; then echo "usage: bash tools/dist_train.sh CONFIG NUM_GPUS [options]" >&2; exit 2; fi
CONFIG=$1; GPUS=$2; shift 2
NNODES=${NNODES:-1}; NODE_RANK=${NODE_RANK:-0}; PORT=${PORT:-29500}; MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" -m torch.distributed.run --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
  --nproc_per_node="$GPUS" --master_port="$PORT" tools/train.py "$CONFIG" --launcher pytorch "$@"
