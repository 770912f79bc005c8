#!/usr/bin/env bash
# Multi-GPU evaluation through torchrun: bash tools/dist_test.sh CONFIG CHECKPOINT NUM_GPUS [test.py options]
set -euo pipefail
if [ $# -lt 3 ]; then echo "usage: bash tools/dist_test.sh CONFIG CHECKPOINT NUM_GPUS [options]" >&2; exit 2; fi
CONFIG=$1; CHECKPOINT=$2; GPUS=$3; shift 3
NNODES=${NNODES:-1}; NODE_RANK=${NODE_RANK:-0}; PORT=${PORT:-29500}; MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" -m torch.distributed.run --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
  --nproc_per_node="$GPUS" --master_port="$PORT" tools/test.py "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
