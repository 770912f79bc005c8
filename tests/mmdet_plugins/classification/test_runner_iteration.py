"""One mmengine Runner iteration of the mini BatchFormerV2 DeiT config through tools/train.py (CPU), ending in the
long-tail metric and the gradient-per-class log; a missing Fashion-MNIST is one line."""
import json
import os.path as osp
import subprocess
import sys

import pytest

from helpers import REPO
from mmdet_plugins.datasets.fashion_canvas import FASHION_MNIST_DIR

pytest.importorskip('mmpretrain')
CONFIG = osp.join(REPO, 'configs/deit/mini/bf-deit-tiny-p4_1xb256-fmnist-lt.py')
SMALL = f"""_base_ = '{CONFIG}'
train_dataloader = dict(batch_size=8, dataset=dict(max_items=64))
val_dataloader = dict(batch_size=50, dataset=dict(max_items=100))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=2)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1))
custom_hooks = [dict(type='ClsGradPerClassHook', interval=1, warmup=0, max_images=3, write_interval=1)]
"""


def train(tmp_path, env_extra=None):
    import os
    config = tmp_path / 'small.py'
    config.write_text(SMALL)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', PYTHONPATH=REPO, **(env_extra or {}))
    return subprocess.run([sys.executable, osp.join(REPO, 'tools/train.py'), str(config), '--work-dir',
                           str(tmp_path / 'w')], capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


@pytest.mark.skipif(not osp.isfile(osp.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')),
                    reason='Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)')
def test_two_iterations_end_in_the_long_tail_metric_and_the_gradient_log(tmp_path):
    res = train(tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    scalars = sorted((tmp_path / 'w').glob('*/vis_data/scalars.json'))
    rows = [json.loads(line) for line in open(scalars[-1])]
    evals = [r for r in rows if 'accuracy/top1' in r]
    assert evals and all(k in evals[-1] for k in ('accuracy/many', 'accuracy/medium', 'accuracy/few'))
    grad = json.load(open(tmp_path / 'w' / 'grad_per_class.json'))
    assert grad['measured_iters'] == 2 and sum(c['count'] for c in grad['classes']) == 6  # 3 images x 2 iterations


def test_missing_fashion_mnist_is_one_line(tmp_path):
    res = train(tmp_path, dict(FASHION_MNIST_DIR=str(tmp_path / 'nowhere')))
    assert res.returncode != 0
    lines = [line for line in res.stderr.strip().splitlines() if line.strip()]
    assert lines[-1].startswith('error: ') and 'dataset-fashion-mnist' in lines[-1] and 'Traceback' not in res.stderr
