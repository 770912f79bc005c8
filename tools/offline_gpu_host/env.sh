# Source on the GPU machine (python 3.12 + torch there, no registry): installs the carried wheels from .whl/
# into /tmp/site and builds mmcv 2.1.0 with CUDA ops (about 150 s on 16 cores), or installs a carried
# prebuilt mmcv wheel (.whl/mmcv-2.1.0-*.whl or split parts .whl/mmcv-part-*) when one is there.
#   source tools/offline_gpu_host/env.sh   -> exports PYTHONPATH, MMCV_WHEEL (path of the built wheel)
set -e
_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SITE=${SITE:-/tmp/site}
export PYTHONPATH="$SITE:$_repo${PYTHONPATH:+:$PYTHONPATH}"
# Byte-compile the install once (each python process would compile mmdet's sources again where the image sets
# PYTHONDONTWRITEBYTECODE), and the checkout's own code each command (it arrives afresh).
_compile() { python3 -m compileall -q -j 0 "$@" >/dev/null 2>&1 || true; }
# Warm machine: done already (the stamp is written below once the whole stack imported; without it, an install left
# by an older copy of this script is checked by importing it).
if [ -f "$SITE/.bf_stack_ok" ] || python3 -c "import mmcv.ops, mmdet, mmengine, pycocotools, mmpretrain" 2>/dev/null; then
  _compile "$_repo/mmdet_plugins" "$_repo/reproduce"
  echo "[gpu_env] reusing $SITE"; set +e; return 0
fi
mkdir -p "$SITE"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
  $(ls "$_repo"/.whl/*.whl | grep -v '/mmcv-') >/dev/null
# The image's transformers (5.x) would switch on mmpretrain's multimodal models, whose imports it breaks
# (`import mmpretrain.models` fails): switch them off in this install (one line of mmpretrain/utils/dependency.py).
if [ -f "$SITE/mmpretrain/utils/dependency.py" ]; then
  sed -i 's/^WITH_MULTIMODAL = all(/WITH_MULTIMODAL = False and all(/' "$SITE/mmpretrain/utils/dependency.py"
fi
if ls "$_repo"/.whl/mmcv-part-* >/dev/null 2>&1 && ! ls "$_repo"/.whl/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
  cat "$_repo"/.whl/mmcv-part-* > /tmp/mmcv-2.1.0-cp312-cp312-linux_x86_64.whl
  MMCV_WHEEL=/tmp/mmcv-2.1.0-cp312-cp312-linux_x86_64.whl
elif ls "$_repo"/.whl/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
  MMCV_WHEEL=$(ls "$_repo"/.whl/mmcv-2.1.0-*.whl | head -1)
elif ls /tmp/mmcv-build/mmcv-2.1.0/dist/mmcv-2.1.0-*.whl >/dev/null 2>&1; then  # built by an earlier command here
  MMCV_WHEEL=$(ls /tmp/mmcv-build/mmcv-2.1.0/dist/mmcv-2.1.0-*.whl | head -1)
else
  _t0=$(date +%s)
  rm -rf /tmp/mmcv-build && mkdir -p /tmp/mmcv-build
  tar -xzf "$_repo"/.whl/mmcv-2.1.0.tar.gz -C /tmp/mmcv-build
  (cd /tmp/mmcv-build/mmcv-2.1.0 && MMCV_WITH_OPS=1 FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=${MAX_JOBS:-$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))} \
     python3 setup.py -q bdist_wheel >/tmp/mmcv-build/build.log 2>&1) || { tail -30 /tmp/mmcv-build/build.log; return 1; }
  MMCV_WHEEL=$(ls /tmp/mmcv-build/mmcv-2.1.0/dist/mmcv-*.whl)
  echo "[gpu_env] built mmcv in $(( $(date +%s) - _t0 )) s: $MMCV_WHEEL"
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$MMCV_WHEEL" >/dev/null
export MMCV_WHEEL
_t0=$(date +%s); _compile "$SITE" "$_repo/mmdet_plugins" "$_repo/reproduce"
echo "[gpu_env] byte-compiled $SITE in $(( $(date +%s) - _t0 )) s"
python3 -c "import torch, mmcv, mmcv.ops, mmdet, mmengine, mmpretrain.models; print('[gpu_env] torch', torch.__version__, 'cuda', torch.cuda.is_available(), '| mmcv', mmcv.__version__, '| mmdet', mmdet.__version__, '| mmpretrain', mmpretrain.__version__, '| mmengine', mmengine.__version__)"
touch "$SITE/.bf_stack_ok"  # (reached only when the import above succeeded: set -e)
set +e
