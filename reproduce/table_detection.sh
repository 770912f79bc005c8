#!/usr/bin/env bash
# Regenerate the detection table (paper numbers beside this repository's measured numbers).
#   bash reproduce/table_detection.sh [--scale smoke|mini|full] [--seeds N] [--gpus N] [--data-root DIR]
#                                     [--dry-run] [--collect-only] [--force] [--detectors ...] [--parallel N]
# Default scale: mini where a GPU is present, smoke otherwise. Full help: --help.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=python3
[ -x "$ROOT/.venv/bin/python" ] && PY="$ROOT/.venv/bin/python"
exec "$PY" "$ROOT/reproduce/table_detection.py" "$@"
