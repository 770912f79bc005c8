"""The paper's panoptic table (DETR R50, COCO panoptic val2017: PQ 43.4 -> 45.1 with BatchFormerV2) as a spec for the
runner.

    bash reproduce/table_panoptic.sh [--scale smoke|mini|full] [--seeds N] [--data-root DIR] ...

Row: DETR. Arms: the baseline, BatchFormerV2, and a plain mask head on the BatchFormerV2 box model. Each run has two
stages, as DETR's recipe (docs/panoptic.md): the box model on things and stuff (``TableSpec.pre_stage``, trained in
``<work_dir>/stage1/``), then the mask head on the frozen box model, which starts from that stage's final checkpoint
and ends with PQ from mmdet's CocoPanopticMetric. BatchFormerV2 keeps its two streams in stage 2 (the official
``panoptic_2.sh``); the plain-head arm (``panoptic_1.sh``) trains the baseline's stage 2 from the first stage of the
BatchFormerV2 run of its seed (``Arm.first_stage_from``): it trains no box model of its own.
"""
from __future__ import annotations

import os.path as osp
import sys

if __name__ == '__main__':  # run as a script: make the repository importable
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from reproduce.runner import Arm, Scale, TableSpec  # noqa: E402
from reproduce.tables.detection import SMOKE_BANNER, smoke_overrides  # noqa: E402

ROWS = ('DETR', )
FULL = 'configs/detr_panoptic/{bf}detr-panoptic-stage{stage}_r50_8xb2-{epochs}e_coco-panoptic.py'
MINI = 'configs/mini/panoptic/{bf}detr-panoptic-stage{stage}_r18_1xb16-mini.py'
PLAIN_HEAD = '-from-bf-stage1'  # (stage 2 of a plain mask head on the BatchFormerV2 box model: a plain DETRPanoptic)


def config_path(row: str, bf: bool, scale: str, stage: int = 2, plain_head: bool = False) -> str:
    """Repository-relative config of a run's stage (1: the box model, 2: the mask head); ``plain_head``: stage 2
    of the plain mask head on the BatchFormerV2 box model."""
    if row not in ROWS:
        raise KeyError(f'unknown row {row!r}; the panoptic table trains {list(ROWS)}')
    if stage not in (1, 2):
        raise ValueError(f'stage must be 1 or 2, got {stage}')
    if plain_head and not (bf and stage == 2):
        raise ValueError('a plain mask head is a stage 2 on the BatchFormerV2 box model: give bf=True, stage=2')
    prefix = 'bf-' if bf and not plain_head else ''
    stage_name = f'{stage}{PLAIN_HEAD if plain_head else ""}'
    if scale == 'full':
        return FULL.format(bf=prefix, stage=stage_name, epochs=300 if stage == 1 else 25)
    if scale in ('mini', 'smoke'):
        return MINI.format(bf=prefix, stage=stage_name)
    raise ValueError(f'the panoptic table has no {scale!r} scale: smoke, mini or full')


SPEC = TableSpec(
    name='panoptic',
    title='Panoptic segmentation',
    row_column='model',
    row_option='models',
    rows=ROWS,
    arm_column='bf',
    arms=(Arm(0, 'base', 'baseline', 'baseline'), Arm(1, 'bf', '+BF', 'BF'),
          Arm(2, 'bf-plain-head', '+BF, plain head', 'BF box model with a plain mask head', first_stage_from=1)),
    config=lambda row, arm, scale: config_path(row, arm.value > 0, scale, stage=2, plain_head=arm.value == 2),
    pre_stage=lambda row, arm, scale: config_path(row, arm.value > 0, scale, stage=1),
    metrics={'PQ': 'coco_panoptic/PQ', 'SQ': 'coco_panoptic/SQ', 'RQ': 'coco_panoptic/RQ',
             'PQ_th': 'coco_panoptic/PQ_th', 'SQ_th': 'coco_panoptic/SQ_th', 'RQ_th': 'coco_panoptic/RQ_th',
             'PQ_st': 'coco_panoptic/PQ_st', 'SQ_st': 'coco_panoptic/SQ_st', 'RQ_st': 'coco_panoptic/RQ_st'},
    metric_scale=1.0,  # (mmdet's CocoPanopticMetric logs points)
    delta_metrics=('PQ_th', 'PQ_st'),
    delta_meaning='the arm − baseline',
    mean_metrics=('SQ', 'RQ'),
    unit='PQ points',
    paper_csv='results/paper/panoptic.csv',
    paper_setting='COCO panoptic val2017, DETR ResNet-50, as published (source below)',
    chance=0.0,
    # (each stage-2 run's predictions on the first validation images, for the panoptic figure)
    artifacts=('panoptic_predictions.json', ),
    scales={
        'smoke': Scale(data='canvas', data_root='data/fashion_canvas_smoke', seeds=1, rows=ROWS,
                       canvas_preset='smoke', overrides=smoke_overrides, banner=SMOKE_BANNER, cpu_only=True),
        'mini': Scale(data='canvas', data_root='data/fashion_canvas', seeds=3, rows=ROWS, canvas_preset='mini',
                      pretrain_backbones=True),
        'full': Scale(data='coco', data_root='data/coco', seeds=1, rows=ROWS, one_run_per_gpu=False),
    },
)


def main(argv=None) -> int:
    from reproduce.runner.cli import main as run_table
    return run_table(SPEC, argv)


if __name__ == '__main__':
    sys.exit(main())
