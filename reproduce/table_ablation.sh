#!/usr/bin/env bash
# The ablation table of BatchFormerV2 (this repository's own: no ablation numbers were published), Deformable DETR:
#   bash reproduce/table_ablation.sh [--scale smoke|mini] [--seeds N] [--only RUN ...] [--parallel N]
#                                    [--data-root DIR] [--dry-run] [--collect-only] [--force]
# Default scale: mini where a GPU is present, smoke otherwise. Every option: --help. See reproduce/README.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=python3
[ -x "$ROOT/.venv/bin/python" ] && PY="$ROOT/.venv/bin/python"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" -m reproduce.tables.ablation "$@"
