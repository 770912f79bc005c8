# Source on the GPU machine after tools/offline_gpu_host/env.sh: installs the carried Fashion-MNIST files (.data/, from
# tools/offline_gpu_host/fetch_wheels.sh) where the generator looks for them, then makes the mini canvases at
# data/fashion_canvas (skipped when they are complete already, or with MINI_CANVASES=0).
#   source tools/offline_gpu_host/mini_data.sh
if [ -d .data/fashion-mnist ] && [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  mkdir -p /usr/share/datasets && cp -r .data/fashion-mnist /usr/share/datasets/
fi
if [ "${MINI_CANVASES:-1}" != 0 ]; then  # (the classification table reads Fashion-MNIST itself: MINI_CANVASES=0)
  python3 -m mmdet_plugins.datasets.fashion_canvas data/fashion_canvas --scale mini
fi
