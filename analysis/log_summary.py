"""Summarise mmengine json training logs (``vis_data/scalars.json``, or the merged logs under ``results/logs/``):
per run, the training loss at the start and at the end, and every validation's bbox AP, as a markdown table.

    python analysis/log_summary.py results/logs/calibration_mini/*.json [--out results/tables/calibration_mini.md]
    python analysis/log_summary.py LOG ... --at 1000 1500 1900 [--key loss_bbox]   # also a metric at those iterations

``--at`` adds a column per iteration with the training metric logged at exactly that iteration (one logging
window's mean, as mmengine logs it); an iteration the log does not have is an error naming the nearest ones.

A run is named after its file (``NAME.json``), or after its work directory for ``.../NAME/<time>/vis_data/scalars.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

AP_KEY = 'coco/bbox_mAP'


def run_name(path: str) -> str:
    if osp.basename(path) == 'scalars.json':  # NAME/<timestamp>/vis_data/scalars.json
        return osp.basename(osp.dirname(osp.dirname(osp.dirname(path))))
    return osp.splitext(osp.basename(path))[0]


def read_log(path: str):
    """The log's training rows (with ``loss``) and validation rows (with the bbox AP), in file order. A
    validation row gets the iteration of the training row before it (mmengine logs iteration-based validations
    with ``step`` = the iteration, or 0 in older versions)."""
    train, val = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise SystemExit(f'error: {path}, line {n}: not json ({e}); is this an mmengine scalars.json log?')
            if 'loss' in row:
                train.append(row)
            elif AP_KEY in row:
                val.append(dict(row, iter=train[-1].get('iter', 0) if train else 0))
    if not train and not val:
        raise SystemExit(f'error: {path}: no training loss and no {AP_KEY} rows; is this an mmengine json log?')
    return train, val


def _mean(rows, key, k=3):
    values = [float(r[key]) for r in rows[:k] if key in r and math.isfinite(float(r[key]))]
    return sum(values) / len(values) if values else math.nan


def summarise(path: str, at=(), key: str = 'loss_bbox') -> dict:
    """One run's row; ``at``: iterations at which to also read the training metric ``key`` (value_at)."""
    train, val = read_log(path)
    return dict(run=run_name(path), iterations=int(train[-1].get('iter', 0)) if train else 0,
                loss_start=_mean(train, 'loss'), loss_end=_mean(train[::-1], 'loss'),
                loss_cls_end=_mean(train[::-1], 'loss_cls'), loss_bbox_end=_mean(train[::-1], 'loss_bbox'),
                aps=[(int(v['iter']), 100.0 * float(v[AP_KEY])) for v in val],
                at=[value_at(path, train, key, it) for it in at])


def value_at(path: str, train, key: str, iteration: int) -> float:
    """The training metric ``key`` logged at ``iteration`` among ``train`` (the training rows of the log at
    ``path``, as read_log returns them). Should a merged log repeat an iteration, the last row counts."""
    logged = {int(r['iter']): r for r in train if 'iter' in r}
    if iteration not in logged:
        near = sorted(logged, key=lambda it: abs(it - iteration))[:2]
        raise SystemExit(f'error: {path} has no training log at iteration {iteration} (nearest: {sorted(near)}); '
                         f'pick iterations the logs have (a multiple of the logging interval)')
    if key not in logged[iteration]:
        raise SystemExit(f'error: {path}, iteration {iteration}: no {key!r} in the log row')
    return float(logged[iteration][key])


def render(rows, at=(), key='loss_bbox') -> str:
    head = ['run', 'iterations', 'loss, first 3 logs', 'loss, last 3 logs', 'loss_cls, last', 'loss_bbox, last']
    head += [f'{key} at {it}' for it in at] + ['bbox AP (iteration: AP)']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        aps = ', '.join(f'{it}: {ap:.1f}' for it, ap in r['aps']) or '–'
        cells = [r['run'], str(r['iterations']), f"{r['loss_start']:.2f}", f"{r['loss_end']:.2f}",
                 f"{r['loss_cls_end']:.3f}", f"{r['loss_bbox_end']:.3f}"]
        cells += [f'{v:.2f}' for v in (r.get('at') or [math.nan] * len(at))] + [aps]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('logs', nargs='+', help='mmengine json logs')
    p.add_argument('--out', default=None, help='write the markdown table here (atomically)')
    p.add_argument('--title', default=None, help='a line above the table')
    p.add_argument('--at', type=int, nargs='+', default=[], metavar='ITER',
                   help='also show the training metric --key logged at these iterations')
    p.add_argument('--key', default=None, help='the metric --at shows (default: loss_bbox, the box L1)')
    args = p.parse_args(argv)
    if args.key and not args.at:
        p.error('--key names the metric that --at shows: give --at ITER ... too')
    key = args.key or 'loss_bbox'
    missing = [path for path in args.logs if not osp.isfile(path)]
    if missing:
        raise SystemExit(f'error: no such log file: {missing}')
    text = render([summarise(path, args.at, key) for path in args.logs], args.at, key)
    if args.title:
        text = f'{args.title}\n\n{text}'
    if args.out:
        from mmdet_plugins.utils.provenance import atomic_write_text
        atomic_write_text(args.out, text)
    print(text, end='')
    return 0


if __name__ == '__main__':
    sys.exit(main())
