#!/usr/bin/env bash
# Download, on a machine with PyPI, what the GPU machine lacks (it reaches no registry): cp312 wheels of the
# OpenMMLab stack (mmdet, mmpretrain) and their pure and compiled dependencies, setuptools 69.5.1 and the mmcv 2.1.0 source archive,
# into .whl/ (git-ignored; carry it with the device run). Then, on the GPU machine: source tools/offline_gpu_host/env.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
DEST=.whl
mkdir -p "$DEST"
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
fetch() { python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            "${plat[@]}" -d "$DEST" "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
fetch mmengine==0.10.7 mmdet==3.3.0 pycocotools==2.0.11 shapely addict yapf platformdirs termcolor \
      terminaltables setuptools==69.5.1
fetch panopticapi-lite==0.2.0  # PQ (CocoPanopticMetric); pure Python
# mmpretrain (the classification table) and those of its pure-Python requirements that the GPU image lacks (it has
# einops, rich, click, markdown, zipp; no wheels of them here, so that the image's versions stay in use)
fetch mmpretrain==1.2.0 mat4py modelindex model-index==0.1.11 ordered-set importlib-metadata==8.7.0  # (10.x needs lazy_importer)
# grad-cam (analysis/gradcam.py) is published as a source archive only: build its pure-python wheel here
PYW=python3; [ -x .venv/bin/python ] && PYW=.venv/bin/python
"$PYW" -m pip wheel -q --no-deps -w "$DEST" grad-cam==1.5.7 ttach==0.0.3 2>&1 | grep -v "^WARNING: Location" || true
if ! ls "$DEST"/mmcv-2.1.0.tar.gz >/dev/null 2>&1; then
  # metadata generation imports torch and pkg_resources: use the project venv (setup.sh) when there is one
  PYB=python3; [ -x .venv/bin/python ] && PYB=.venv/bin/python
  "$PYB" -m pip download -q --no-deps --no-binary=:all: --no-build-isolation -d "$DEST" mmcv==2.1.0 2>&1 \
    | grep -v "^WARNING: Location" || true
fi
ls -la "$DEST"
du -sh "$DEST"

# The Fashion-MNIST files for the mini benchmark (carry .data too; 31 MB).
FMNIST=/usr/share/datasets/fashion-mnist
if [ -f "$FMNIST/train-images-idx3-ubyte.gz" ]; then
  mkdir -p .data/fashion-mnist && cp -u "$FMNIST"/*-ubyte.gz .data/fashion-mnist/
  du -sh .data
else
  echo "NOTE: $FMNIST missing (apt-get install dataset-fashion-mnist); .data not prepared"
fi
