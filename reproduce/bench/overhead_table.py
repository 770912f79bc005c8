"""Markdown table of the BatchFormerV2 training/inference overhead from the benchmark's CSV.

    python reproduce/bench/overhead_table.py [results/measured/overhead_full.csv] [--readme README.md]

Writes results/tables/<csv name>.md (and, with --readme, replaces the README's ``overhead_full`` block,
see reproduce/runner/markdown.py). The official
implementation's ratio (results/reference/official_overhead_h200.csv) is shown beside ours for DETR.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from reproduce.runner.results import ResultsFileError, read_csv_checked  # noqa: E402
from reproduce.runner.markdown import write_table  # noqa: E402

REQUIRED = ['detector', 'batch_per_gpu', 'height', 'width', 'base_train_s', 'bf_train_s', 'base2B_train_s',
            'train_ratio', 'train_ratio_vs_2B', 'base_peak_gib', 'bf_peak_gib', 'peak_ratio', 'infer_ratio',
            'gpu', 'commit', 'date']


def read_csv(path, required, keys):
    try:
        return read_csv_checked(path, required=required, keys=keys)
    except ResultsFileError as e:
        raise SystemExit(f'error: {e} (the benchmark writes it: reproduce/bench/benchmark_overhead.py)')


def render(df, official) -> str:
    if 'components' not in df:  # CSVs written before --components existed: stock mmdet heads
        df = df.assign(components='stock')
    lines = ['| detector | components | baseline step s | BF step s | **BF / baseline** | baseline at 2B s | BF / baseline at 2B '
             '| peak GiB baseline → BF | inference BF / baseline | official fork BF / baseline |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for r in df.itertuples():
        ref = official[(official.detector == r.detector) & (official.batch_per_gpu == r.batch_per_gpu)]
        ref_text = f'{ref.train_ratio.iloc[0]:.2f} ({ref.base_train_s.iloc[0]:.4f} → {ref.bf_train_s.iloc[0]:.4f} s)' \
            if len(ref) else 'not measured'
        lines.append(f'| {r.detector} | {r.components} | {r.base_train_s:.4f} | {r.bf_train_s:.4f} | **{r.train_ratio:.2f}** | '
                     f'{r.base2B_train_s:.4f} | {r.train_ratio_vs_2B:.2f} | {r.base_peak_gib:.2f} → {r.bf_peak_gib:.2f} | '
                     f'{r.infer_ratio:.2f} | {ref_text} |')
    first = df.iloc[0]
    lines.append('')
    lines.append(f'B = {int(first.batch_per_gpu)} images of {int(first.height)}x{int(first.width)} per GPU, '
                 f'ResNet-50 (random init), fp32, one training step = forward + backward + clip + AdamW, medians. '
                 f'Measured on {first.gpu}, commit {first.commit}, {first.date} '
                 f'(`reproduce/bench/benchmark_overhead.py`). Components: `stock` = mmdet 3.3.0 heads and matcher, '
                 f'`fast` = the Batched*Head heads (batched matching and the sync-free per-layer loss, mmdet_plugins/fast_training/). '
                 f'Official fork: results/reference/official_overhead_h200.csv (measured separately on the same '
                 f'GPU kind, not in this run).')
    return '\n'.join(lines) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('csv', nargs='?', default=osp.join(REPO, 'results/measured/overhead_full.csv'))
    parser.add_argument('--official', default=osp.join(REPO, 'results/reference/official_overhead_h200.csv'))
    parser.add_argument('--out', help='markdown file (default results/tables/<csv name>.md)')
    parser.add_argument('--readme', help='also replace the overhead block of this README')
    args = parser.parse_args(argv)
    import pandas as pd
    header = pd.read_csv(args.csv, nrows=0).columns if osp.isfile(args.csv) else []
    keys = ['detector', 'batch_per_gpu'] + (['components'] if 'components' in header else [])
    df = read_csv(args.csv, REQUIRED, keys=keys)
    official = read_csv(args.official, ['detector', 'batch_per_gpu', 'train_ratio', 'base_train_s', 'bf_train_s'],
                        keys=['detector', 'batch_per_gpu'])
    table = render(df, official)
    out = args.out or osp.join(REPO, 'results/tables', osp.splitext(osp.basename(args.csv))[0] + '.md')
    write_table(table, out, args.readme, 'overhead_full')


if __name__ == '__main__':
    main()
