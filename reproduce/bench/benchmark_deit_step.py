"""What BatchFormerV2 costs a DeiT training step: the baseline, two-stream and released configs side by side.

    python reproduce/bench/benchmark_deit_step.py [--model small] [--batch 128] [--img-size 224] [--rounds 5]
        [--iters 10] [--no-amp] [--out CSV] [--table MD] [--render CSV]

Builds each config's model (``configs/deit/{,bf-,bf-released-}deit-<model>_*.py``) and runs full training steps
through mmengine's ``train_step`` (data preprocessor with the config's Mixup/CutMix, forward, loss, backward,
an AdamW step over all parameters in one group, not the configs' per-parameter groups; ``AmpOptimWrapper`` fp16
unless ``--no-amp``) on random images of ``--img-size`` px, the variants
alternating over ``--rounds`` rounds (the first variant changes each round), after one untimed warm-up step each.
Reports per variant the median seconds per step, its ratio to the baseline and the peak memory; beside the
two-stream ratio the bound two streams imply for the blocks alone: ``(k + 1 + 2 (depth - k - 1)) / depth`` with the
module after block k (the blocks before it at B images, the rest at 2B). Writes a CSV with provenance and a markdown
table (default ``results/tables/<csv name>.md``); ``--render CSV`` only renders a stored CSV.
"""
from __future__ import annotations

import argparse
import glob
import os.path as osp
import statistics
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
VARIANTS = (('baseline', ''), ('two_stream', 'bf-'), ('released', 'bf-released-'))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', default='small', choices=['tiny', 'small', 'base'])
    p.add_argument('--batch', type=int, default=128, help='images per step (one GPU)')
    p.add_argument('--img-size', type=int, default=224)
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--iters', type=int, default=10, help='timed steps per variant and round')
    p.add_argument('--no-amp', action='store_true', help='fp32 (OptimWrapper) instead of fp16 mixed precision')
    p.add_argument('--device', default=None, help='default: cuda when available, else cpu')
    p.add_argument('--out', default=osp.join(REPO, 'results', 'measured', 'classification_cost_full.csv'))
    p.add_argument('--table', default=None, help='markdown table (default: results/tables/<csv name>.md)')
    p.add_argument('--render', metavar='CSV', default=None, help='render a stored CSV into --table, measure nothing')
    args = p.parse_args(argv)
    if min(args.batch, args.img_size, args.rounds, args.iters) < 1:
        p.error('every size and count must be at least 1')
    return args


def config_of(model: str, prefix: str) -> str:
    matches = sorted(glob.glob(osp.join(REPO, 'configs', 'deit', f'{prefix}deit-{model}_*in1k.py')))
    if not matches:
        raise SystemExit(f'error: no config configs/deit/{prefix}deit-{model}_*in1k.py')
    return matches[0]


def two_stream_bound(insert_idx: int, depth: int) -> float:
    """Cost of the blocks in two-stream training over the baseline's: blocks 0..k at B, k+1.. at 2B."""
    return (insert_idx + 1 + 2 * (depth - insert_idx - 1)) / depth


def render(df) -> str:
    lines = ['| variant | config | images | px | precision | s / step, median (range) | × baseline | '
             'two-stream bound (blocks) | peak MiB |', '|---|---|---|---|---|---|---|---|---|']
    for r in df.itertuples():
        bound = f'{r.bound:.2f}' if r.variant == 'two_stream' else '–'
        peak = '–' if r.peak_mib != r.peak_mib else f'{r.peak_mib:.0f}'
        lines.append(f'| {r.variant} | `{r.config}` | {r.batch} | {r.img_size} | {r.precision} | {r.s_per_step:.4f} '
                     f'({r.s_per_step_min:.4f}-{r.s_per_step_max:.4f}) | {r.over_baseline:.2f} | {bound} | {peak} |')
    prov = df[['hardware', 'torch', 'commit', 'date']].drop_duplicates()
    lines += ['', f'Full training steps (preprocessor with Mixup/CutMix, forward, backward, AdamW over one parameter '
              f'group), the variants '
              f'alternating over {int(df.rounds.iloc[0])} rounds of {int(df.iters.iloc[0])} steps '
              '(`reproduce/bench/benchmark_deit_step.py`); the bound counts only the transformer blocks. Measured '
              'on: ' + '; '.join(f'{r.hardware}, torch {r.torch}, commit {r.commit}, {r.date}' for r in prov.itertuples()),
              '']
    return '\n'.join(lines)


def write_table(df, csv_path, table):
    from mmdet_plugins.utils.provenance import atomic_write_text
    table = table or osp.join(REPO, 'results', 'tables', osp.splitext(osp.basename(csv_path))[0] + '.md')
    atomic_write_text(table, render(df))
    print(f'wrote {table}')


def build(config: str, device, amp: bool):
    import torch
    from mmengine.config import Config
    from mmengine.optim import AmpOptimWrapper, OptimWrapper
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(config)
    model = MODELS.build(cfg.model).to(device)
    model.init_weights()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    wrapper = AmpOptimWrapper(optimizer=optimizer, loss_scale='dynamic') if amp else OptimWrapper(optimizer)
    return model, wrapper


def make_batch(batch: int, size: int, num_classes: int, device):
    import torch
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(0)
    inputs = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=g).to(device)
    labels = torch.randint(0, num_classes, (batch, ), generator=g)
    return dict(inputs=inputs, data_samples=[DataSample().set_gt_label(int(y)) for y in labels])


def timed_steps(model, wrapper, data, iters: int, device) -> float:
    import torch

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
    sync()
    start = time.perf_counter()
    for _ in range(iters):
        model.train_step(data, wrapper)
    sync()
    return (time.perf_counter() - start) / iters


def main(argv=None):
    args = parse_args(argv)
    import pandas as pd
    if args.render:
        from reproduce.runner.results import ResultsFileError, read_csv_checked
        try:
            df = read_csv_checked(args.render, ['variant', 'config', 's_per_step', 'over_baseline', 'bound',
                                                'hardware', 'commit', 'date'], numeric=['s_per_step', 'over_baseline'])
        except ResultsFileError as e:
            raise SystemExit(f'error: {e}')
        write_table(df, args.render, args.table)
        return 0
    import torch
    from mmengine.registry import init_default_scope
    import mmdet_plugins.classification  # noqa: F401  (registers the BatchFormerV2 DeiT)
    from mmdet_plugins.utils.provenance import atomic_write_text, git_commit, hardware, today
    init_default_scope('mmpretrain')
    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    amp = not args.no_amp and device.type == 'cuda'
    configs = {name: config_of(args.model, prefix) for name, prefix in VARIANTS}
    built = {name: build(path, device, amp) for name, path in configs.items()}
    backbone = built['two_stream'][0].backbone
    bound = two_stream_bound(backbone.bf_insert_idx[0], len(backbone.layers))
    data = make_batch(args.batch, args.img_size, built['baseline'][0].head.num_classes, device)
    times = {name: [] for name in built}
    peaks = {name: float('nan') for name in built}
    for name, (model, wrapper) in built.items():  # warm-up (cudnn, allocator), and the peak memory of a step
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        timed_steps(model, wrapper, data, 1, device)
        if device.type == 'cuda':
            peaks[name] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    names = list(built)
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            model, wrapper = built[name]
            times[name].append(timed_steps(model, wrapper, data, args.iters, device))
        print(f'round {r + 1}/{args.rounds}: ' + ', '.join(f'{n} {times[n][-1]:.4f} s' for n in names), flush=True)
    base = statistics.median(times['baseline'])
    rows = []
    for name in names:
        med = statistics.median(times[name])
        rows.append(dict(variant=name, config=osp.relpath(configs[name], REPO), batch=args.batch,
                         img_size=args.img_size, precision='fp16 AMP' if amp else 'fp32', s_per_step=round(med, 5),
                         s_per_step_min=round(min(times[name]), 5), s_per_step_max=round(max(times[name]), 5),
                         over_baseline=round(med / base, 4), bound=round(bound, 4), peak_mib=round(peaks[name], 1),
                         rounds=args.rounds, iters=args.iters, hardware=hardware(str(device)),
                         torch=torch.__version__, commit=git_commit(), date=today()))
    df = pd.DataFrame(rows)
    atomic_write_text(args.out, df.to_csv(index=False))
    print(render(df))
    print(f'wrote {args.out}')
    write_table(df, args.out, args.table)
    return 0


if __name__ == '__main__':
    sys.exit(main())
