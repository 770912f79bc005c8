"""Training curves from mmengine json logs: loss and bbox AP against iteration, runs grouped over seeds.

    python analysis/plot_curves.py results/logs/detection_mini/*.json -o results/figures/curves_mini.png

Each log is a run named after its file (``DeformableDETR-bf-s1.json``) or work directory (``.../NAME/<time>/
vis_data/scalars.json``). Runs whose names differ only in the seed suffix ``-s<N>`` form one group, drawn as the
mean over seeds with a band from the lowest to the highest seed. Left: the total training loss; right: the bbox AP
of every validation (a point per validation). BatchFormerV2 runs (``-bf-`` or ``bf-`` in the name) are drawn
solid, baselines dashed, each group in its own colour.
"""
from __future__ import annotations

import argparse
import os.path as osp
import re
import sys
from collections import defaultdict

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from analysis.log_summary import AP_KEY, read_log, run_name  # noqa: E402

SEED = re.compile(r'-s(\d+)$')


def group_name(run: str) -> str:
    return SEED.sub('', run)


def is_bf(name: str) -> bool:
    return '-bf' in name or name.startswith('bf-')


def load_groups(paths):
    """``{group: [(train rows, val rows), ...]}`` (one entry per seed), in the order first seen."""
    groups = defaultdict(list)
    for path in paths:
        if not osp.isfile(path):
            raise SystemExit(f'error: no such log file: {path}')
        train, val = read_log(path)
        if not any('iter' in r for r in train):
            raise SystemExit(f'error: {path}: training rows have no "iter" key; is this an mmengine json log of '
                             f'an iteration-based run?')
        groups[group_name(run_name(path))].append((train, val))
    return groups


def running_mean(values: dict, window: int) -> dict:
    """``{iteration: value}`` averaged over the last ``window`` logged points (fewer at the start)."""
    keys = sorted(values)
    out = {}
    for n, k in enumerate(keys):
        recent = keys[max(0, n - window + 1):n + 1]
        out[k] = sum(values[q] for q in recent) / len(recent)
    return out


def _mean_band(series):
    """``series``: per seed, {iteration: value}. Returns iterations and mean, min, max over the seeds that have
    the iteration (all of them only: a partial iteration is dropped)."""
    common = sorted(set.intersection(*(set(s) for s in series)))
    mean = [sum(s[i] for s in series) / len(series) for i in common]
    return common, mean, [min(s[i] for s in series) for i in common], [max(s[i] for s in series) for i in common]


def plot(groups, out: str, title: str = None, smooth: int = 1) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import seaborn as sns
    sns.set_theme(style='whitegrid', context='notebook')
    colours = dict(zip(groups, sns.color_palette('tab10', len(groups))))
    fig, (ax_loss, ax_ap) = plt.subplots(1, 2, figsize=(13, 4.8))
    for name, runs in groups.items():
        colour, style = colours[name], '-' if is_bf(name) else '--'
        label = f'{name} ({len(runs)} seed{"s" if len(runs) > 1 else ""})'
        losses = []
        for train, _ in runs:
            values = {int(r['iter']): float(r['loss']) for r in train if 'iter' in r and 'loss' in r}
            losses.append(running_mean(values, smooth))
        its, mean, lo, hi = _mean_band(losses)
        ax_loss.plot(its, mean, style, color=colour, label=label)
        if len(runs) > 1:
            ax_loss.fill_between(its, lo, hi, color=colour, alpha=0.15, linewidth=0)
        aps = [{int(v['iter']): 100.0 * float(v[AP_KEY]) for v in val} for _, val in runs]
        if all(aps):
            its, mean, lo, hi = _mean_band(aps)
            if its:
                ax_ap.plot(its, mean, style, marker='o', color=colour, label=label)
                if len(runs) > 1:
                    ax_ap.vlines(its, lo, hi, color=colour, alpha=0.6)
    ax_loss.set(xlabel='iteration', ylabel='training loss (all terms)', title='Training loss (mean over seeds, '
                'band: min-max)')
    ax_ap.set(xlabel='iteration', ylabel='bbox AP (COCO, %)', title='Validation bbox AP (mean; bar: min-max)')
    ax_loss.legend(fontsize=8)
    if ax_ap.lines:
        ax_ap.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    from analysis.figure_io import finish_figure
    finish_figure(fig, out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('logs', nargs='+', help='mmengine json logs (scalars.json)')
    p.add_argument('-o', '--out', required=True, help='PNG to write')
    p.add_argument('--title', default=None)
    p.add_argument('--smooth', type=int, default=1, help='running mean over this many logged loss points')
    args = p.parse_args(argv)
    plot(load_groups(args.logs), args.out, args.title, args.smooth)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
