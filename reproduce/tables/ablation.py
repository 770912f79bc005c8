"""This repository's ablation table of BatchFormerV2 (no ablation numbers were published) as a spec for the runner.

    bash reproduce/table_ablation.sh [--scale smoke|mini] [--seeds N] [--only RUN ...] ...

Rows: the detector: Deformable DETR (the paper's main setting) with every arm, and SMCA-DETR with the baseline, the
default and the variants that moved Deformable DETR beyond their interval (``SMCA_VARIANTS``). Arms (the CSV column
``variant``): the baseline, the default BatchFormerV2 setting (the paper's: one module after encoder layer 0, two
streams, padding-aware attention, dropout 0.5, the whole batch), and variants that each change one thing
(``configs/mini/ablation/``). Every arm is trained with the same seeds, so each is paired by seed with the baseline
and with the default. The table has one line per arm: AP, Δ against the baseline and Δ against the default, with
paired 95% intervals. The baseline and the default train the detection table's configs: their finished runs there
(``results/measured/detection_mini.csv``) are taken over, not trained again (the CSV's ``borrowed_from`` column).
"""
from __future__ import annotations

import math
import os.path as osp
import sys

if __name__ == '__main__':  # run as a script: make the repository importable
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from reproduce.runner import Arm, Borrow, Scale, TableSpec  # noqa: E402
from reproduce.tables.detection import SMOKE_BANNER, smoke_overrides  # noqa: E402

# arm value -> (tag, what it is, config under configs/mini/)
VARIANTS = {
    0: ('base', 'baseline (no BatchFormerV2)', 'deformable-detr_r18_1xb16-mini.py'),
    1: ('bf', 'default: after layer 0, two streams, masked, dropout 0.5, whole batch',
        'bf-deformable-detr_r18_1xb16-mini.py'),
    2: ('insert2', 'after encoder layer 2', 'ablation/bf-deformable-detr-insert2_r18_1xb16-mini.py'),
    3: ('insert5', 'after encoder layer 5', 'ablation/bf-deformable-detr-insert5_r18_1xb16-mini.py'),
    4: ('all-shared', 'after all six layers, one shared module', 'ablation/bf-deformable-detr-all-shared_r18_1xb16-mini.py'),
    5: ('all-separate', 'after all six layers, one module each',
        'ablation/bf-deformable-detr-all-separate_r18_1xb16-mini.py'),
    6: ('one-stream', 'one stream (applied in place, no plain stream)',
        'ablation/bf-deformable-detr-one-stream_r18_1xb16-mini.py'),
    # (every mini canvas is 320x320, so no batch holds padding: this arm computes what the default computes and
    # measures seed noise only, a control; docs/ablation.md)
    7: ('unmasked', 'unmasked attention (the official code; no padding in the mini batches: a control)',
        'ablation/bf-deformable-detr-unmasked_r18_1xb16-mini.py'),
    8: ('dropout0p1', 'module dropout 0.1', 'ablation/bf-deformable-detr-dropout0p1_r18_1xb16-mini.py'),
    9: ('group2', 'attention within groups of 2 images', 'ablation/bf-deformable-detr-group2_r18_1xb16-mini.py'),
    10: ('group4', 'attention within groups of 4 images', 'ablation/bf-deformable-detr-group4_r18_1xb16-mini.py'),
    11: ('group8', 'attention within groups of 8 images', 'ablation/bf-deformable-detr-group8_r18_1xb16-mini.py'),
}
# The second detector trains the baseline, the default and the variants that moved Deformable DETR beyond their
# interval (the one-stream arm, against the default): arm value -> config under configs/mini/.
SMCA_VARIANTS = {
    0: 'smca-detr_r18_1xb16-mini.py',
    1: 'bf-smca-detr_r18_1xb16-mini.py',
    6: 'ablation/bf-smca-detr-one-stream_r18_1xb16-mini.py',
}
DETECTORS = ('DeformableDETR', 'SMCADETR')
DEFAULT_ARM = 1


def config_path(detector: str, variant: int, scale: str = 'mini') -> str:
    """Repository-relative config of an arm (the mini configs; smoke shrinks them at run time)."""
    if detector not in DETECTORS:
        raise KeyError(f'unknown detector {detector!r}; the ablation trains {list(DETECTORS)}')
    if variant not in VARIANTS:
        raise KeyError(f'unknown variant {variant}; known: {sorted(VARIANTS)}')
    if scale not in ('mini', 'smoke'):
        raise ValueError(f'the ablation table has no {scale!r} scale: mini or smoke')
    if detector == 'SMCADETR':
        if variant not in SMCA_VARIANTS:
            raise KeyError(f'SMCADETR trains the variants {sorted(SMCA_VARIANTS)} only, not {variant}')
        return f'configs/mini/{SMCA_VARIANTS[variant]}'
    return f'configs/mini/{VARIANTS[variant][2]}'


def render_ablation(df, paper, spec, scale: str, banner=None) -> str:
    """Markdown: per detector, one line per arm with its AP (mean ± std over seeds), its paired Δ against the
    baseline and against the default setting (95% t intervals), AP50, and the seeds it has."""
    from reproduce.runner.results import fmt, fmt_diff, paired_difference, provenance_lines
    lines = [f'> **{banner}**', ''] if banner else []
    lines += [f'**Ablation of BatchFormerV2, {scale} scale**', '',
              'AP points: mean ± standard deviation over seeds. Δ: paired by seed, with a 95% t interval. No '
              'ablation numbers were published: every number here is this repository\'s.', '']
    for detector in sorted(df[spec.row_column].unique()):
        d = df[df[spec.row_column] == detector]
        by_arm = {arm.value: d[d[spec.arm_column] == arm.value].set_index('seed') for arm in spec.arms}
        lines += [f'*{detector}*', '', '| variant | seeds | AP | Δ vs baseline [95% CI] | Δ vs default [95% CI] | AP50 |',
                  '|---|---|---|---|---|---|']
        for arm in spec.arms_of(detector):
            runs = by_arm[arm.value]
            if runs.empty:
                lines.append(f'| `{arm.tag}`: {arm.name} | not run | – | – | – | – |')
                continue
            cells = [f'`{arm.tag}`: {arm.name}', str(len(runs)),
                     fmt(runs.AP.mean(), runs.AP.std(ddof=1) if len(runs) > 1 else math.nan)]
            for ref in (0, DEFAULT_ARM):
                if arm.value == ref or by_arm[ref].empty:
                    cells.append('–')
                else:
                    diff, half, _ = paired_difference(by_arm[ref].AP, runs.AP)
                    cells.append(fmt_diff(diff, half))
            cells.append(fmt(runs.AP50.mean()) if 'AP50' in runs else 'missing')
            lines.append('| ' + ' | '.join(cells) + ' |')
        lines.append('')
    def seeds(g):
        return ' '.join(str(int(x)) for x in sorted(g.seed))
    if 'borrowed_from' in df.columns:
        taken = df[df.borrowed_from.notna()]
        for stem, d in taken.groupby('borrowed_from'):
            which = '; '.join(f'{detector}: ' + ', '.join(f'`{spec.arm(int(v)).tag}` (seeds {seeds(g)})'
                                                          for v, g in dd.groupby(spec.arm_column))
                              for detector, dd in d.groupby(spec.row_column))
            lines += [f'Runs of `results/measured/{stem}.csv` (the same configs, schedules and data), not trained '
                      f'again: {which}.', '']
    for line in provenance_lines(df):
        lines += [line, '']
    if {'config', 'iterations'} <= set(df.columns):
        cols = [spec.row_column, spec.arm_column, 'config', 'iterations']
        cfgs = df[cols].drop_duplicates().sort_values(cols[:2])
        for detector, d in cfgs.groupby(spec.row_column):
            lines += [f'Configs, {detector}: ' + '; '.join(f'`{spec.arm(int(r[2])).tag}`: `{r[3]}` ({int(r[4])} it)'
                                                            for r in d.itertuples()), '']
    return '\n'.join(lines)


SPEC = TableSpec(
    name='ablation',
    title='Ablation',
    row_column='detector',
    row_option='detectors',
    rows=DETECTORS,
    arm_column='variant',
    arms=tuple(Arm(v, tag, tag, what) for v, (tag, what, _) in VARIANTS.items()),
    config=lambda detector, arm, scale: config_path(detector, arm.value, scale),
    metrics={'AP': 'coco/bbox_mAP', 'AP50': 'coco/bbox_mAP_50', 'AP75': 'coco/bbox_mAP_75'},
    unit='AP points',
    delta_meaning='the variant − baseline',
    chance=1.0,
    render=render_ablation,
    # (the baseline and the default are the detection table's runs of the same detector: the same configs)
    borrow=Borrow(table='detection', arms={0: 0, 1: 1}),
    row_arms={'SMCADETR': tuple(SMCA_VARIANTS)},
    scales={
        # (the smoke batch of 2 images: groups of 2 only; every code path of the variants once)
        'smoke': Scale(data='canvas', data_root='data/fashion_canvas_smoke', seeds=1, rows=DETECTORS[:1],
                       canvas_preset='smoke', overrides=smoke_overrides, banner=SMOKE_BANNER, cpu_only=True,
                       arms=(0, 1, 5, 6, 7, 9)),
        'mini': Scale(data='canvas', data_root='data/fashion_canvas', seeds=3, rows=DETECTORS, canvas_preset='mini',
                      pretrain_backbones=True),
    },
)


def main(argv=None) -> int:
    from reproduce.runner.cli import main as run_table
    return run_table(SPEC, argv)


if __name__ == '__main__':
    sys.exit(main())
