"""Gradient magnitude per class: how much gradient each class's images receive from the other images through
BatchFormerV2, from GradPerClassHook's logs (``grad_per_class.json``; mmdet_plugins/analysis/grad_per_class_hook.py).

    python analysis/plot_grad_per_class.py LOG... -o results/figures/grad_per_class_mini.png [--labels A B ...]

Classes are on the x axis, sorted by their number of training boxes (detection) or images (classification), most
frequent first; the count is in the tick label. For every log (a detector, a seed) the mean cross-sample gradient norm of the class's images is drawn with
its standard deviation as an error bar; logs with the same label are averaged (the error bar then is the spread of
their means). The label of a log is ``--labels`` or its parent directory's name. Every series' legend entry, and the
printed summary, gives the Spearman rank correlation between a class's training frequency and its mean gradient
(negative: rarer classes receive larger gradients).
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
from collections import defaultdict

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

REQUIRED = ('class_id', 'name', 'count', 'mean', 'std')
FREQUENCY_KEYS = {'train_boxes': 'boxes', 'train_images': 'images'}  # detection (boxes), classification (images)


def frequency_key(log: dict) -> str:
    return next(k for k in FREQUENCY_KEYS if k in log['classes'][0])


def read_log(path: str) -> dict:
    if not osp.isfile(path):
        raise SystemExit(f'error: no such log file: {path}')
    try:
        with open(path) as f:
            log = json.load(f)
    except ValueError as e:
        raise SystemExit(f'error: {path}: not json ({e}); expected a grad_per_class.json from GradPerClassHook')
    classes = log.get('classes') if isinstance(log, dict) else None
    if not classes or not all(isinstance(c, dict) and all(k in c for k in REQUIRED)
                              and any(k in c for k in FREQUENCY_KEYS) for c in classes):
        raise SystemExit(f'error: {path}: no "classes" list with {", ".join(REQUIRED)} and train_boxes or '
                         f'train_images; expected a grad_per_class.json from GradPerClassHook')
    if not any(c['count'] for c in classes):
        raise SystemExit(f'error: {path}: no measured image (every count is 0); did the run reach a measured '
                         f'iteration (the hook\'s interval)?')
    return log


def frequency_correlation(boxes, means):
    """Spearman's rho (and its p-value) between the classes' training box counts and their mean gradients,
    over the classes with a measured mean."""
    from scipy.stats import spearmanr
    pairs = [(b, m) for b, m in zip(boxes, means) if m == m]  # (NaN: class never measured)
    if len(pairs) < 3:
        return float('nan'), float('nan')
    result = spearmanr([b for b, _ in pairs], [m for _, m in pairs])
    return float(result.statistic), float(result.pvalue)


def plot(paths, labels, out: str, title: str = None) -> list:
    """Draw the figure; return one summary line per series (label, Spearman rho and p)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import seaborn as sns
    logs = [read_log(p) for p in paths]
    names = [c['name'] for c in logs[0]['classes']]
    for path, log in zip(paths, logs):
        if [c['name'] for c in log['classes']] != names:
            raise SystemExit(f'error: {path}: its classes differ from {paths[0]}\'s; plot logs of one dataset')
    key = frequency_key(logs[0])
    unit = FREQUENCY_KEYS[key]
    boxes = [logs[0]['classes'][k][key] for k in range(len(names))]
    order = sorted(range(len(names)), key=lambda k: -boxes[k])
    grouped = defaultdict(list)
    for label, log in zip(labels, logs):
        grouped[label].append(log)
    sns.set_theme(style='whitegrid', context='notebook')
    colours = sns.color_palette('colorblind', len(grouped))
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(names) + 3), 4.8))
    width = 0.8 / len(grouped)
    summary = []
    for g, (label, group) in enumerate(grouped.items()):
        means, spreads = [], []
        for k in order:
            values = [log['classes'][k]['mean'] for log in group if log['classes'][k]['count']]
            if not values:
                means.append(float('nan'))
                spreads.append(0.0)
            elif len(group) == 1:
                means.append(values[0])
                spreads.append(group[0]['classes'][k]['std'] or 0.0)
            else:
                m = sum(values) / len(values)
                means.append(m)
                spreads.append((sum((v - m) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5)
        xs = [n - 0.4 + width * (g + 0.5) for n in range(len(order))]
        what = 'std over images' if len(group) == 1 else f'spread over {len(group)} runs'
        rho, pvalue = frequency_correlation([boxes[k] for k in order], means)
        summary.append(f'{label}: Spearman rho(training {unit}, mean gradient) = {rho:+.2f} (p = {pvalue:.2f}, '
                       f'{len(order)} classes, {len(group)} run{"s" if len(group) > 1 else ""})')
        ax.errorbar(xs, means, yerr=spreads, fmt='o', color=colours[g], capsize=3,
                    label=f'{label} ({what}); Spearman rho(frequency, mean) = {rho:+.2f}, p = {pvalue:.2f}')
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([f'{names[k]}\n{boxes[k]} {unit}' for k in order], rotation=0, fontsize=8)
    ax.set_xlabel(f'class, by number of training {unit} (most frequent first)')
    ax.set_ylabel('cross-sample gradient norm\n(mean over images with the class)')
    ax.set_title(title or 'Gradient each class receives from the other images through BatchFormerV2')
    ax.legend(fontsize=8)
    from analysis.figure_io import finish_figure
    finish_figure(fig, out)
    return summary


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('logs', nargs='+', help='grad_per_class.json files')
    p.add_argument('-o', '--out', required=True, help='PNG to write')
    p.add_argument('--labels', nargs='+', help='one label per log (default: the parent directory name)')
    p.add_argument('--title', default=None)
    p.add_argument('--stats', default=None, help='also write the summary lines (Spearman rho per series) here')
    args = p.parse_args(argv)
    labels = args.labels or [osp.basename(osp.dirname(osp.abspath(path))) for path in args.logs]
    if len(labels) != len(args.logs):
        p.error(f'{len(labels)} --labels for {len(args.logs)} logs')
    summary = plot(args.logs, labels, args.out, args.title)
    for line in summary:
        print(line)
    if args.stats:
        from mmdet_plugins.utils.provenance import atomic_write_text
        atomic_write_text(args.stats, '\n'.join(summary) + '\n')
        print(f'wrote {args.stats}')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
