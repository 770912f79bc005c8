"""The paper's classification table (ImageNet-1k top-1 of DeiT-T/S/B, arXiv 2204.01254) as a spec for the runner.

    bash reproduce/table_classification.sh [--scale smoke|mini|full] [--models ...] [--seeds N] ...

Rows: DeiT models. Arms (the CSV column ``bf``): 0 the baseline, 1 BatchFormerV2 as a second stream after block 8
(the paper), 2 BatchFormerV2 as the official DeiT code released it (the module's output replaces the batch).
Full scale: ``configs/deit/`` on ImageNet-1k (mmpretrain's configs); mini: ``configs/deit/mini/``, DeiT-Tiny on
28 px Fashion-MNIST-LT (top-1 overall and many/medium/few-shot); smoke: the mini configs shrunk to a few CPU
iterations on a few hundred images.
"""
from __future__ import annotations

import os.path as osp
import sys

if __name__ == '__main__':  # run as a script: make the repository importable
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from reproduce.runner import Arm, Scale, TableSpec  # noqa: E402

# model -> full-scale config stem (configs/deit/<prefix><stem>.py)
MODELS = {
    'DeiT-T': 'deit-tiny_4xb256_in1k',
    'DeiT-S': 'deit-small_4xb256_in1k',
    'DeiT-B': 'deit-base_16xb64_in1k',
}
MINI_STEM = {'DeiT-T': 'deit-tiny-p4_1xb256-fmnist-lt'}
PREFIX = {0: '', 1: 'bf-', 2: 'bf-released-'}


def config_path(model: str, arm_value: int, scale: str = 'full') -> str:
    """Repository-relative config of ``model`` in arm ``arm_value`` (0 baseline, 1 two-stream, 2 released) at
    ``scale`` (``full``: ImageNet-1k; ``mini``/``smoke``: Fashion-MNIST-LT, DeiT-T only)."""
    if model not in MODELS:
        raise KeyError(f'unknown model {model!r}; known: {sorted(MODELS)}')
    if scale == 'full':
        return f'configs/deit/{PREFIX[arm_value]}{MODELS[model]}.py'
    if scale in ('mini', 'smoke'):
        if model not in MINI_STEM:
            raise KeyError(f'{model} has no {scale}-scale config (the mini benchmark trains {sorted(MINI_STEM)})')
        return f'configs/deit/mini/{PREFIX[arm_value]}{MINI_STEM[model]}.py'
    raise ValueError(f'unknown scale {scale!r}: full, mini or smoke')


def smoke_overrides(cfg):
    """Tiny and CPU-friendly: 256 training and 200 test images, batch 16, 4 iterations, the gradient log every
    second iteration."""
    iters = 4
    cfg.train_dataloader.batch_size = 16
    cfg.train_dataloader.dataset.max_items = 256
    for loader in ('val_dataloader', 'test_dataloader'):
        cfg[loader].batch_size = 100
        cfg[loader].dataset.max_items = 200
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.param_scheduler = [dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False, begin=0, end=iters)]
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    for hook in cfg.get('custom_hooks', []):
        if hook['type'] == 'ClsGradPerClassHook':
            hook.update(interval=2, warmup=0, max_images=4, write_interval=2)


SMOKE_BANNER = ('SMOKE SCALE: a few hundred images, a few CPU iterations. These numbers only check that the '
                'pipeline runs (train, evaluate, CSV, table); they say nothing about BatchFormerV2.')

SPEC = TableSpec(
    name='classification',
    title='Classification',
    row_column='model',
    row_option='models',
    rows=tuple(MODELS),
    arm_column='bf',
    arms=(Arm(0, 'base', 'baseline', 'baseline'), Arm(1, 'bf', '+BF', 'BF (two streams)'),
          Arm(2, 'released', 'released', 'BF as released (batch replaced)')),
    config=lambda model, arm, scale: config_path(model, arm.value, scale),
    metrics={'top1': 'accuracy/top1', 'many': 'accuracy/many', 'medium': 'accuracy/medium',
             'few': 'accuracy/few', 'top5': 'accuracy/top5'},
    metric_scale=1.0,  # mmpretrain's accuracies are percentages already
    delta_metrics=('many', 'medium', 'few'),
    unit='top-1 accuracy, %',
    delta_meaning='the arm − baseline',
    paper_csv='results/paper/classification.csv',
    paper_setting='ImageNet-1k top-1, DeiT at 224 px, as published (source below)',
    chance=15.0,  # 10 classes at the mini scale: 10% is chance
    artifacts=('grad_per_class.json', ),
    scales={
        'smoke': Scale(data='fashion_mnist', data_root=None, seeds=2, rows=('DeiT-T', ), overrides=smoke_overrides,
                       banner=SMOKE_BANNER, cpu_only=True),
        'mini': Scale(data='fashion_mnist', data_root=None, seeds=5, rows=('DeiT-T', )),
        'full': Scale(data='imagenet', data_root='data/imagenet', seeds=1, rows=tuple(MODELS), one_run_per_gpu=False),
    },
)


def main(argv=None) -> int:
    from reproduce.runner.cli import main as run_table
    return run_table(SPEC, argv)


if __name__ == '__main__':
    sys.exit(main())
