"""The paper's detection table (COCO val2017 box AP, Table 1 of arXiv 2204.01254) as a spec for the runner.

    bash reproduce/table_detection.sh [--scale smoke|mini|full] [--detectors ...] [--seeds N] ...

Rows: six DETR-family detectors; arms: the baseline (``bf`` = 0) and BatchFormerV2 (``bf`` = 1). Full scale:
``configs/<detector>/`` on COCO 2017; mini: ``configs/mini/`` on the Fashion-MNIST canvases; smoke: the mini
configs shrunk to a few CPU iterations.
"""
from __future__ import annotations

import os.path as osp
import sys

if __name__ == '__main__':  # run as a script: make the repository importable
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from reproduce.runner import Arm, Scale, TableSpec  # noqa: E402

# detector -> (config folder, file stem, full-scale schedule suffix)
DETECTORS = {
    'DETR': ('detr', 'detr', 'r50_8xb2-50e'),
    'DeformableDETR': ('deformable_detr', 'deformable-detr', 'r50_8xb3-50e'),
    'ConditionalDETR': ('conditional_detr', 'conditional-detr', 'r50_8xb2-50e'),
    'DABDETR': ('dab_detr', 'dab-detr', 'r50_8xb2-50e'),
    'DINO': ('dino', 'dino-4scale', 'r50_8xb2-12e'),
    'SMCADETR': ('smca_detr', 'smca-detr', 'r50_8xb2-50e'),  # single-scale SMCA-DETR (mmdet_plugins.smca_detr)
}


def config_path(detector: str, bf: bool, scale: str = 'full') -> str:
    """Repository-relative config of ``detector`` (baseline or BatchFormerV2) at scale ``full`` (COCO, the
    paper's setting) or ``mini``/``smoke`` (configs/mini/; smoke shrinks the mini config at run time)."""
    if detector not in DETECTORS:
        raise KeyError(f'unknown detector {detector!r}; known: {sorted(DETECTORS)}')
    folder, stem, schedule = DETECTORS[detector]
    prefix = 'bf-' if bf else ''
    if scale == 'full':
        return f'configs/{folder}/{prefix}{stem}_{schedule}_coco.py'
    if scale in ('mini', 'smoke'):
        return f'configs/mini/{prefix}{stem}_r18_1xb16-mini.py'
    raise ValueError(f'unknown scale {scale!r}: full, mini or smoke')


def smoke_overrides(cfg):
    """Tiny and CPU-friendly: 128 px canvases, batch 2, no workers, 4 iterations, plain fp32 optimiser."""
    size, iters = 128, 4
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if not cfg.get(loader):  # (a config without validation: panoptic stage 1)
            continue
        cfg[loader].batch_size = 2
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
        for step in cfg[loader].dataset.pipeline:
            if step['type'] == 'Resize':
                step['scale'] = (size, size)
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.param_scheduler = [dict(type='MultiStepLR', begin=0, end=iters, by_epoch=False, milestones=[3], gamma=0.1)]
    cfg.optim_wrapper.type = 'OptimWrapper'
    cfg.optim_wrapper.pop('loss_scale', None)
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    cfg.model.num_queries = 20
    cfg.model.test_cfg.max_per_img = 20
    cfg.model.backbone.init_cfg = None  # no pretrained backbone (its pretraining is a GPU job)
    if 'dn_cfg' in cfg.model:
        cfg.model.dn_cfg.group_cfg = dict(dynamic=True, num_groups=None, num_dn_queries=10)


SMOKE_BANNER = ('SMOKE SCALE: tiny data, a few CPU iterations. These numbers only check that the pipeline runs '
                '(train, evaluate, CSV, table); they say nothing about BatchFormerV2.')
PAPER_DETECTORS = ('DETR', 'DeformableDETR', 'ConditionalDETR', 'SMCADETR')

SPEC = TableSpec(
    name='detection',
    title='Detection',
    row_column='detector',
    row_option='detectors',
    rows=tuple(DETECTORS),
    arm_column='bf',
    arms=(Arm(0, 'base', 'baseline', 'baseline'), Arm(1, 'bf', '+BF', 'BF')),
    config=lambda detector, arm, scale: config_path(detector, bool(arm.value), scale),
    metrics={'AP': 'coco/bbox_mAP', 'AP50': 'coco/bbox_mAP_50', 'AP75': 'coco/bbox_mAP_75',
             'APs': 'coco/bbox_mAP_s', 'APm': 'coco/bbox_mAP_m', 'APl': 'coco/bbox_mAP_l'},
    delta_metrics=('AP50', 'AP75'),
    mean_metrics=('AP50', ),
    unit='AP points',
    paper_csv='results/paper/detection.csv',
    paper_setting='COCO val2017, ResNet-50, as published (source below)',
    chance=1.0,
    scales={
        'smoke': Scale(data='canvas', data_root='data/fashion_canvas_smoke', seeds=2, rows=('DETR', ),
                       canvas_preset='smoke', overrides=smoke_overrides, banner=SMOKE_BANNER, cpu_only=True),
        'mini': Scale(data='canvas', data_root='data/fashion_canvas', seeds=3, rows=PAPER_DETECTORS,
                      canvas_preset='mini', pretrain_backbones=True),
        'full': Scale(data='coco', data_root='data/coco', seeds=1, rows=PAPER_DETECTORS, one_run_per_gpu=False),
    },
)


def main(argv=None) -> int:
    from reproduce.runner.cli import main as run_table
    return run_table(SPEC, argv)


if __name__ == '__main__':
    sys.exit(main())
