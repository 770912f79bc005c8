"""Markdown table of the training-speed benchmark (reproduce/bench/benchmark_speed.py's CSV).

    python reproduce/bench/speed_table.py results/measured/speed_mini_detr.csv [--readme docs/training_speed.md]

Writes results/tables/<csv name>.md (``--out`` to choose) and, with ``--readme``, replaces that file's block named
after the table (``<!-- speed_mini_detr:start -->``; see reproduce/runner/markdown.py).
"""
from __future__ import annotations

import argparse
import math
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from reproduce.runner.results import ResultsFileError, read_csv_checked  # noqa: E402
from reproduce.runner.markdown import write_table  # noqa: E402

REQUIRED = ['config', 'variant', 's_per_iter', 'it_per_s', 'gpu_util_smi', 'syncs_per_iter', 'peak_gib',
            'speedup_vs_stock', 'bf_over_baseline', 'hardware', 'commit', 'date']


def _num(value, fmt):
    return '–' if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def several_rounds(row) -> bool:
    """Whether ``row`` combines several measurements (rows of one round: no ``rounds`` column, NaN or 1)."""
    rounds = getattr(row, 'rounds', 1)
    return not math.isnan(rounds) and rounds > 1


def has_paired_range(row) -> bool:
    """Whether ``row`` has a speed-up range over several paired rounds (one round's pairs with itself)."""
    low, high = getattr(row, 'speedup_rounds_min', math.nan), getattr(row, 'speedup_rounds_max', math.nan)
    return several_rounds(row) and not (math.isnan(low) or math.isnan(high))


def render(df) -> str:
    lines = ['| config | components | s / iteration | iterations / s | **speed-up vs stock** | BF / baseline step '
             '| GPU utilisation % | syncs / iteration | peak GiB |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in df.itertuples():
        seconds = f'{r.s_per_iter:.3f}'
        if several_rounds(r):
            seconds += f' ({r.s_per_iter_min:.3f}-{r.s_per_iter_max:.3f})'
        speedup = f'**{_num(r.speedup_vs_stock, ".2f")}x**'
        if r.variant != 'stock' and has_paired_range(r):
            speedup += f' ({r.speedup_rounds_min:.2f}-{r.speedup_rounds_max:.2f})'
        lines.append(f'| `{osp.basename(r.config)}` | {r.variant} | {seconds} | {r.it_per_s:.2f} | '
                     f'{speedup} | {_num(r.bf_over_baseline, ".2f")} | '
                     f'{_num(r.gpu_util_smi, ".0f")} | {_num(r.syncs_per_iter, ".0f")} | {r.peak_gib:.2f} |')
    provenance = sorted({f'{r.hardware}, commit {r.commit}, {r.date}' for r in df.itertuples()})
    lines += ['', 'Mini configs, batch 16 of 320x320, fp16 AMP unless the variant says bf16; mmengine\'s training loop, '
              'seconds per iteration over the timed iterations after warm-up (`reproduce/bench/benchmark_speed.py`). '
              '`stock`: mmdet 3.3.0 components; `fast`: this repository\'s (the mini configs\' default)'
              + ('; `fast-compile`: fast with the encoder and decoder layers compiled by torch.compile '
                 '(CompileLayersHook, opt-in: configs/mini/compiled/)' if 'fast-compile' in set(df.variant) else '')
              + ('; `fast-compile-all`: the backbone and neck compiled too (and the head\'s forward, from commit '
                 '44d0a16)' if 'fast-compile-all' in set(df.variant) else '')
              + ('; `-fused`: AdamW\'s fused CUDA kernel' if any(v.endswith('-fused') for v in df.variant) else '')
              + ('; `fast-mmcv-backward`: fast with the deformable attention\'s backward in mmcv\'s dtype (fp16), '
                 'as stock' if 'fast-mmcv-backward' in set(df.variant) else '')
              + ('; seconds per iteration: the median of interleaved rounds (range in brackets)'
                 if any(several_rounds(r) for r in df.itertuples()) else '')
              + ('; speed-up in brackets: its lowest and highest over the rounds, each round\'s stock step against '
                 'the same round\'s'
                 if any(r.variant != 'stock' and has_paired_range(r) for r in df.itertuples()) else '')
              + ('; `fast-compile-all-cudagraphs`: fast with the backbone, neck, encoder and decoder layers and the '
                 'head\'s forward compiled by torch.compile in `reduce-overhead` mode, replayed as CUDA graphs '
                 '(opt-in: configs/mini/cudagraphs/, Deformable DETR only; its peak GiB leaves out the graphs\' '
                 'private memory pools, so it is not comparable)'
                 if 'fast-compile-all-cudagraphs' in set(df.variant) else '')
              + f'. Measured on: {"; ".join(provenance)}.']
    return '\n'.join(lines) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('csv', nargs='?', default=osp.join(REPO, 'results', 'measured', 'speed_mini_detr.csv'))
    parser.add_argument('--out', help='markdown file (default results/tables/<csv name>.md)')
    parser.add_argument('--readme', help="also replace this markdown file's block named after --out's file name")
    args = parser.parse_args(argv)
    try:
        df = read_csv_checked(args.csv, required=REQUIRED, keys=["config", "variant"])
    except ResultsFileError as e:
        raise SystemExit(f'error: {e} (reproduce/bench/benchmark_speed.py writes it)')
    table = render(df)
    out = args.out or osp.join(REPO, 'results', 'tables', osp.splitext(osp.basename(args.csv))[0] + '.md')
    write_table(table, out, args.readme, osp.splitext(osp.basename(out))[0])


if __name__ == '__main__':
    main()
