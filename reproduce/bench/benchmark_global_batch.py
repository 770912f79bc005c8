"""What BatchFormerV2 over the global batch costs against the per-GPU module: one layer, side by side, per rank.

    python -m torch.distributed.run --standalone --nproc_per_node=W reproduce/bench/benchmark_global_batch.py \
        [--batch 16] [--tokens 2100] [--channels 256] [--rounds 5] [--iters 10] [--out CSV]

Every rank runs the same BatchFormerV2 layer (forward and backward of its B images' N tokens) once with the
per-GPU attention and once with ``global_batch=True``, alternating in rounds, with a barrier around each timing.
Reports per variant the median seconds per step over the rounds, the ratio global / per-GPU, the bytes each rank
gathers per call (keys and values of the other ranks, from the tensors' shapes) and, on GPUs, the peak memory.
One GPU per process with NCCL where GPUs are visible, else the CPU with gloo. Rank 0 writes the CSV and its
markdown table (``--table``, default ``results/tables/<csv name>.md``); ``--render CSV`` only renders a stored CSV.
Defaults: the mini Deformable DETR's encoder tokens at the insertion point (320 px: 40x40 + 20x20 + 10x10 = 2100
positions, 256 channels, 16 images per GPU).
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import statistics
import sys
import time

import torch
import torch.distributed as dist

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--batch', type=int, default=16, help='images per rank (B)')
    p.add_argument('--tokens', type=int, default=2100, help='token positions (N)')
    p.add_argument('--channels', type=int, default=256, help='embedding channels (C)')
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--iters', type=int, default=10, help='timed steps per variant and round (after one warm-up)')
    p.add_argument('--out', default=osp.join(REPO, 'results', 'measured', 'global_batch_cost.csv'))
    p.add_argument('--table', default=None, help='markdown table (default: results/tables/<csv name>.md)')
    p.add_argument('--render', metavar='CSV', default=None, help='render a stored CSV into --table, measure nothing')
    args = p.parse_args(argv)
    if min(args.batch, args.tokens, args.channels, args.rounds, args.iters) < 1:
        p.error('every size and count must be at least 1')
    return args


def render(df) -> str:
    """Markdown of the benchmark's CSV: one row per variant, then the provenance."""
    lines = ['| variant | ranks | images per rank | tokens | channels | s / step, median (range) | global / per-GPU | '
             'MiB gathered per call | peak MiB |', '|---|---|---|---|---|---|---|---|---|']
    for r in df.itertuples():
        peak = '–' if r.peak_mib != r.peak_mib else f'{r.peak_mib:.0f}'
        lines.append(f'| {r.variant} | {r.world_size} | {r.batch_per_rank} | {r.tokens} | {r.channels} | '
                     f'{r.s_per_step:.3f} ({r.s_per_step_min:.3f}-{r.s_per_step_max:.3f}) | {r.over_per_gpu:.2f} | '
                     f'{r.gathered_mib_per_call:.1f} | {peak} |')
    prov = df[['hardware', 'backend', 'dtype', 'torch', 'commit', 'date']].drop_duplicates()
    lines += ['', f'One BatchFormerV2 layer, forward and backward of each rank\'s images, per-GPU and global batch '
              f'alternating over {int(df.rounds.iloc[0])} rounds of {int(df.iters.iloc[0])} steps '
              '(`reproduce/bench/benchmark_global_batch.py`). Measured on: ' + '; '.join(
                  f'{r.hardware}, {r.backend}, {r.dtype}, torch {r.torch}, commit {r.commit}, {r.date}'
                  for r in prov.itertuples()) + '.', '']
    return '\n'.join(lines)


def write_table(df, csv_path, table):
    from mmdet_plugins.utils.provenance import atomic_write_text
    table = table or osp.join(REPO, 'results', 'tables', osp.splitext(osp.basename(csv_path))[0] + '.md')
    atomic_write_text(table, render(df))
    return table


def step(layer, x, grad, device):
    y = layer(x)
    y.backward(grad)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def main(argv=None):
    args = parse_args(argv)
    if args.render:
        from reproduce.runner.results import ResultsFileError, read_csv_checked
        try:
            df = read_csv_checked(args.render, ['variant', 'world_size', 's_per_step', 'over_per_gpu', 'hardware',
                                                'commit', 'date'], keys=['variant'])
        except ResultsFileError as e:
            raise SystemExit(f'error: {e}')
        print(f'wrote {write_table(df, args.render, args.table)}')
        return 0
    if 'RANK' not in os.environ:
        raise SystemExit('error: run it under torchrun: python -m torch.distributed.run --standalone '
                         '--nproc_per_node=2 reproduce/bench/benchmark_global_batch.py')
    cuda = torch.cuda.is_available()
    dist.init_process_group('nccl' if cuda else 'gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device('cuda', int(os.environ.get('LOCAL_RANK', 0))) if cuda else torch.device('cpu')
    if cuda:
        torch.cuda.set_device(device)
    from mmdet_plugins.batchformer.layer import BatchFormerV2Layer
    torch.manual_seed(0)
    layers = {'per_gpu': BatchFormerV2Layer(args.channels, dropout=0.0).to(device)}
    layers['global'] = BatchFormerV2Layer(args.channels, dropout=0.0, global_batch=True).to(device)
    layers['global'].load_state_dict(layers['per_gpu'].state_dict())
    x = torch.randn(args.batch, args.tokens, args.channels, device=device, requires_grad=True)
    grad = torch.randn_like(x)
    seconds = {name: [] for name in layers}
    peak = {}
    for name, layer in layers.items():  # warm-up
        step(layer, x, grad, device)
    for _ in range(args.rounds):
        for name, layer in layers.items():
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            dist.barrier()
            t0 = time.perf_counter()
            for _ in range(args.iters):
                step(layer, x, grad, device)
            dist.barrier()
            seconds[name].append((time.perf_counter() - t0) / args.iters)
            if cuda:
                peak[name] = max(peak.get(name, 0.0), torch.cuda.max_memory_allocated(device) / 2 ** 20)
    if rank == 0:
        import pandas as pd
        from mmdet_plugins.utils.provenance import atomic_write_text, git_commit, hardware, today
        base = statistics.median(seconds['per_gpu'])
        item = x.element_size()
        rows = []
        for name in layers:
            med = statistics.median(seconds[name])
            gathered = (world - 1) * args.batch * args.tokens * 2 * args.channels * item if name == 'global' else 0
            rows.append(dict(variant=name, world_size=world, batch_per_rank=args.batch, tokens=args.tokens,
                             channels=args.channels, dtype=str(x.dtype).replace('torch.', ''), rounds=args.rounds,
                             iters=args.iters, s_per_step=round(med, 5),
                             s_per_step_min=round(min(seconds[name]), 5), s_per_step_max=round(max(seconds[name]), 5),
                             over_per_gpu=round(med / base, 3), gathered_mib_per_call=round(gathered / 2 ** 20, 2),
                             peak_mib=round(peak[name], 1) if name in peak else float('nan'),
                             backend=dist.get_backend(), hardware=hardware(device), torch=torch.__version__,
                             commit=git_commit(), date=today()))
        df = pd.DataFrame(rows)
        atomic_write_text(args.out, df.to_csv(index=False))
        print(df.to_string(index=False))
        print(f'wrote {args.out} and {write_table(df, args.out, args.table)}')
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == '__main__':
    sys.exit(main())
