#!/usr/bin/env bash
# One-command setup: creates .venv in the repository root and installs the pinned OpenMMLab stack (mmdet, mmpretrain),
# mmcv 2.1.0 built from source with its ops, and this repository (editable).
# Safe to run again: what is already installed is checked and skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
log() { printf '[setup] %s\n' "$*"; }

if [ ! -x "$PY" ]; then
  log "creating virtual environment at $VENV"
  python3 -m venv "$VENV"
fi
# pip's notes about this machine's unused local index folders are noise: filter them, keep pip's exit status.
pip_install() {
  "$PY" -m pip install --disable-pip-version-check -q "$@" 2>&1 | { grep -v "^WARNING: Location 'file://" || true; }
}

# 1. torch + torchvision. Pinned to a version with no local CPU-only wheel, so pip takes PyPI's build,
#    whose torchvision imports (the local CPU-only torch breaks torchvision::nms).
if ! "$PY" -c "import torch, torchvision, sys; sys.exit(not (torch.__version__.startswith('2.11.0') and torchvision.__version__.startswith('0.26.0')))" 2>/dev/null; then
  log "installing torch and torchvision (about 3 GB)"
  pip_install "$(grep '^torch==' requirements.txt)" "$(grep '^torchvision==' requirements.txt)"
fi

# 2. Everything else in requirements.txt, plus setuptools<70 (mmcv 2.1.0's setup.py imports pkg_resources).
if ! "$PY" - <<'PYCHECK' 2>/dev/null
import importlib.metadata as md, re, sys
for line in open('requirements.txt'):
    line = line.split('#')[0].strip()
    if not line:
        continue
    name, _, ver = line.partition('==')
    have = md.version(name)
    if ver and have != ver:
        sys.exit(1)
st = md.version('setuptools')
sys.exit(int(st.split('.')[0]) >= 70)
PYCHECK
then
  log "installing pinned requirements"
  pip_install -r requirements.txt 'setuptools<70' wheel
fi

# 2b. panopticapi for mmdet's CocoPanopticMetric (PQ): PyPI has it as panopticapi-lite, whose numpy<2 pin is not
#     needed (upstream needs only numpy and Pillow): installed without its dependencies.
if ! "$PY" -c "import panopticapi.evaluation, panopticapi.utils" 2>/dev/null; then
  log "installing panopticapi-lite 0.2.0 (without dependencies)"
  pip_install --no-deps panopticapi-lite==0.2.0
fi

# 3. mmcv 2.1.0 with its ops, built against the installed torch (about 10 minutes on 2 cores the first time;
#    pip caches the built wheel, so later setups on the same machine take seconds).
if ! "$PY" -c "import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '2.1.0')" 2>/dev/null; then
  log "building mmcv 2.1.0 with ops (first time: about 10 minutes)"
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" pip_install --no-build-isolation mmcv==2.1.0
fi

# 4. This repository, editable.
if ! "$PY" -c "import importlib.metadata as m; m.version('batchformerv2-mmdet')" 2>/dev/null; then
  log "installing this repository (editable)"
  pip_install --no-build-isolation --no-deps -e .
fi

# 5. Fashion-MNIST (Debian package) for the mini benchmark; optional where apt is not usable.
FMNIST=/usr/share/datasets/fashion-mnist
if [ ! -f "$FMNIST/train-images-idx3-ubyte.gz" ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    log "installing Debian package dataset-fashion-mnist"
    (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
      (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) || \
      log "WARNING: could not install dataset-fashion-mnist; the mini benchmark needs it (apt-get install dataset-fashion-mnist)"
  else
    log "NOTE: Fashion-MNIST not found at $FMNIST; the mini benchmark needs: apt-get install dataset-fashion-mnist"
  fi
fi

# 6. transformers stays out of this environment: with pycocotools present it switches on mmpretrain's multimodal
#    models, whose imports recent transformers breaks (`import mmpretrain.models` fails).
if "$PY" -c "import importlib.metadata as m; m.version('transformers')" 2>/dev/null; then
  log "removing transformers from $VENV (it breaks import mmpretrain.models)"
  "$PY" -m pip uninstall -y -q transformers
fi

"$PY" -c "import torch, torchvision, mmcv, mmcv.ops, mmdet, mmengine, mmpretrain.models, panopticapi.evaluation; print('[setup] ok: torch', torch.__version__, '| torchvision', torchvision.__version__, '| mmcv', mmcv.__version__, '| mmdet', mmdet.__version__, '| mmpretrain', mmpretrain.__version__, '| mmengine', mmengine.__version__)"
