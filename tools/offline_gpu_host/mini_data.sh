# Source on the GPU machine after reproduce/gpu_env.sh: installs the carried Fashion-MNIST files (.data/, from
# reproduce/fetch_gpu_wheels.sh) where the generator looks for them, then makes the mini canvases at
# data/fashion_canvas (skipped when they are complete already).
#   source reproduce/device_mini_data.sh
if [ -d .data/fashion-mnist ] && [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  mkdir -p /usr/share/datasets && cp -r .data/fashion-mnist /usr/share/datasets/
fi
python3 -m mmdet_plugins.datasets.fashion_canvas data/fashion_canvas --scale mini
