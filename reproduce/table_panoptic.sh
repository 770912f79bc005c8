#!/usr/bin/env bash
# The panoptic table (DETR; paper numbers beside this repository's measured numbers; two stages per run):
#   bash reproduce/table_panoptic.sh [--scale smoke|mini|full] [--seeds N] [--models DETR] [--gpus N]
#                                     [--data-root DIR] [--dry-run] [--collect-only] [--force] [--parallel N]
# Default scale: mini where a GPU is present, smoke otherwise. Every option: --help. See reproduce/README.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=python3
[ -x "$ROOT/.venv/bin/python" ] && PY="$ROOT/.venv/bin/python"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" -m reproduce.tables.panoptic "$@"
