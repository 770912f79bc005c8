"""How busy the GPU stays in a mini classification training step: data held on the GPU against a per-sample
pipeline, side by side.

    python reproduce/bench/benchmark_cls_data.py [--config configs/deit/mini/bf-deit-tiny-p4_1xb256-fmnist-lt.py]
        [--rounds 3] [--steps 30] [--workers 2] [--out CSV] [--table MD] [--render CSV]

Variants, both training the config's model with its optimiser through ``train_step`` on the same Fashion-MNIST-LT
images, batch and augmentation (random 2 px shift, horizontal flip):

- ``gpu_held``: the config's own data path. ``FashionMNISTLT`` on the GPU gathers a batch in one indexing
  operation; ``ShiftFlipClsDataPreprocessor`` augments it on the GPU.
- ``per_sample``: mmpretrain's usual path. A DataLoader with ``--workers`` worker processes runs, per image,
  ``RandomCrop(28, padding=2)``, ``RandomFlip`` and ``PackInputs`` on the CPU; ``pseudo_collate``; the batch is
  copied to the GPU and normalised there.

The variants alternate over ``--rounds`` rounds of ``--steps`` steps (after warm-up). Per round and variant: the wall
time per step, timed with no profiler attached, and the GPU's busy fraction: the union of the intervals in which a
CUDA kernel or copy ran, from a second, profiled pass of as many steps, over the unprofiled time (the profiled
pass's own fraction, lowered by the profiler's host overhead, is kept as ``gpu_busy_profiled``). Writes a CSV with provenance and a markdown table.
"""
from __future__ import annotations

import argparse
import os.path as osp
import statistics
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
DEFAULT_CONFIG = 'configs/deit/mini/bf-deit-tiny-p4_1xb256-fmnist-lt.py'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default=DEFAULT_CONFIG)
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--steps', type=int, default=30, help='timed steps per variant and round')
    p.add_argument('--workers', type=int, default=2, help='DataLoader workers of the per-sample pipeline')
    p.add_argument('--out', default=osp.join(REPO, 'results', 'measured', 'classification_data_mini.csv'))
    p.add_argument('--table', default=None)
    p.add_argument('--render', metavar='CSV', default=None)
    args = p.parse_args(argv)
    if min(args.rounds, args.steps) < 1 or args.workers < 0:
        p.error('--rounds and --steps must be at least 1, --workers at least 0')
    return args


def union_length(intervals) -> float:
    """The length of the union of ``[start, end)`` intervals."""
    total, end = 0, None
    for s, e in sorted(intervals):
        if end is None or s > end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total


def busy_fraction(intervals, wall_ns: float) -> float:
    """The union of ``[start, end)`` intervals (ns) over ``wall_ns``."""
    return union_length(intervals) / wall_ns if wall_ns > 0 else float('nan')


class PerSampleDataset:
    """The same images as ``FashionMNISTLT``, on the CPU, through mmpretrain's per-sample transforms."""

    def __init__(self, held, pipeline):
        from mmengine.dataset import Compose
        self.images = held.images.squeeze(1).cpu().numpy()  # (N, 28, 28) uint8
        self.labels = held.label_list
        self.pipeline = Compose(pipeline)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.pipeline(dict(img=self.images[i][:, :, None], gt_label=self.labels[i]))


def batches_gpu_held(dataset, batch_size: int, seed: int):
    import torch
    g = torch.Generator().manual_seed(seed)
    while True:
        for idx in torch.randperm(len(dataset), generator=g).split(batch_size):
            if len(idx) == batch_size:
                yield dataset.__getitems__(idx.tolist())


def batches_per_sample(dataset, batch_size: int, workers: int, seed: int):
    import torch
    from mmengine.dataset import pseudo_collate
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                                         num_workers=workers, collate_fn=pseudo_collate,
                                         persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed))
    while True:
        yield from loader


def run_steps(model, wrapper, batches, steps: int, device):
    """Wall seconds per step and the GPU's busy fraction over ``steps`` training steps.

    Two passes of ``steps`` steps: one timed with nothing attached (the step time), then one under torch.profiler
    (the GPU's busy time per step: the union of its kernel and copy intervals). The busy fraction is the profiled
    busy time per step over the unprofiled step time, so the profiler's own host overhead does not count as idle
    GPU time. Returns ``(s_per_step, busy, busy_profiled)``; ``busy_profiled`` is the busy time over the profiled
    pass's own wall time (the lower, profiler-inflated figure).
    """
    import torch
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == 'cuda' else [])
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == 'cuda' else (lambda: None)
    sync()
    t0 = time.perf_counter_ns()
    for _ in range(steps):
        model.train_step(next(batches), wrapper)
    sync()
    wall = time.perf_counter_ns() - t0
    busy = busy_profiled = float('nan')
    if device.type == 'cuda':
        from torch.autograd import DeviceType
        with profile(activities=activities) as prof:
            t0 = time.perf_counter_ns()
            for _ in range(steps):
                model.train_step(next(batches), wrapper)
            sync()
            wall_profiled = time.perf_counter_ns() - t0
        events = prof.profiler.kineto_results.events()
        intervals = [(e.start_ns(), e.start_ns() + e.duration_ns()) for e in events
                     if e.device_type() == DeviceType.CUDA and e.duration_ns() > 0]
        busy_ns = union_length(intervals)
        busy = min(1.0, busy_ns / wall)
        busy_profiled = busy_ns / wall_profiled
    return wall / steps / 1e9, busy, busy_profiled


def render(df) -> str:
    lines = ['| variant | s / step, median (range) | GPU busy, median (range) | steps × rounds |', '|---|---|---|---|']
    for v, g in df.groupby('variant', sort=False):
        lines.append(f'| {v} | {g.s_per_step.median():.4f} ({g.s_per_step.min():.4f}-{g.s_per_step.max():.4f}) | '
                     f'{100 * g.gpu_busy.median():.0f}% ({100 * g.gpu_busy.min():.0f}-{100 * g.gpu_busy.max():.0f}%) | '
                     f'{int(g.steps.iloc[0])} × {len(g)} |')
    med = df.groupby('variant').s_per_step.median()
    if {'gpu_held', 'per_sample'} <= set(med.index):
        lines += ['', f'per_sample / gpu_held step time: {med["per_sample"] / med["gpu_held"]:.2f}']
    prov = df[['config', 'hardware', 'torch', 'commit', 'date']].drop_duplicates()
    workers = sorted(set(int(w) for w in df[df.variant == 'per_sample'].workers)) if 'workers' in df else []
    lines += ['', 'One mini training step each (`reproduce/bench/benchmark_cls_data.py`; busy: the union of CUDA '
              'kernel and copy intervals in a profiled pass, per step, over the step time of an unprofiled pass; per_sample '
              'with '
              f'{", ".join(map(str, workers)) or "?"} DataLoader workers). Measured on: ' + '; '.join(
                  f'`{r.config}`, {r.hardware}, torch {r.torch}, commit {r.commit}, {r.date}' for r in prov.itertuples()),
              '']
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    import pandas as pd
    from mmdet_plugins.utils.provenance import atomic_write_text, git_commit, hardware, today
    table = args.table or osp.join(REPO, 'results', 'tables', osp.splitext(osp.basename(args.render or args.out))[0]
                                   + '.md')
    if args.render:
        from reproduce.runner.results import ResultsFileError, read_csv_checked
        try:
            df = read_csv_checked(args.render, ['variant', 's_per_step', 'gpu_busy', 'steps', 'hardware', 'commit'],
                                  numeric=['s_per_step', 'gpu_busy'])
        except ResultsFileError as e:
            raise SystemExit(f'error: {e}')
        atomic_write_text(table, render(df))
        print(f'wrote {table}')
        return 0
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    import mmdet_plugins.classification  # noqa: F401
    from mmdet_plugins.runtime import apply_config_matmul_precision
    from mmpretrain.registry import DATASETS, MODELS
    init_default_scope('mmpretrain')
    path = args.config if osp.isabs(args.config) else osp.join(REPO, args.config)
    if not osp.isfile(path):
        raise SystemExit(f'error: config {args.config} not found')
    cfg = Config.fromfile(path)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    apply_config_matmul_precision(cfg)  # what the config's Runner would set (TF32 matrix products)
    try:
        held = DATASETS.build(cfg.train_dataloader.dataset)
    except FileNotFoundError as e:
        raise SystemExit(f'error: {e}')
    per_sample = PerSampleDataset(held, [dict(type='RandomCrop', crop_size=28, padding=2),
                                         dict(type='RandomFlip', prob=0.5, direction='horizontal'),
                                         dict(type='PackInputs')])
    bs = cfg.train_dataloader.batch_size
    variants = {}
    for name in ('gpu_held', 'per_sample'):
        model = MODELS.build(cfg.model).to(device)
        model.init_weights()
        model.train()
        if name == 'per_sample':
            model.data_preprocessor.max_shift, model.data_preprocessor.flip_prob = 0, 0.0  # done per sample
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        batches = batches_gpu_held(held, bs, 0) if name == 'gpu_held' else \
            batches_per_sample(per_sample, bs, args.workers, 0)
        run_steps(model, wrapper, batches, 5, device)  # warm-up (workers start, allocator, cudnn)
        variants[name] = (model, wrapper, batches)
    rows = []
    names = list(variants)
    for r in range(args.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            model, wrapper, batches = variants[name]
            s, busy, busy_prof = run_steps(model, wrapper, batches, args.steps, device)
            rows.append(dict(variant=name, round=r, s_per_step=round(s, 5), gpu_busy=round(busy, 4),
                             gpu_busy_profiled=round(busy_prof, 4), steps=args.steps,
                             batch=bs, workers=args.workers if name == 'per_sample' else 0,
                             config=osp.relpath(path, REPO), hardware=hardware(str(device)), torch=torch.__version__,
                             commit=git_commit(), date=today()))
            print(f'round {r + 1}/{args.rounds} {name}: {s:.4f} s/step, GPU busy {100 * busy:.0f}%', flush=True)
    df = pd.DataFrame(rows)
    atomic_write_text(args.out, df.to_csv(index=False))
    atomic_write_text(table, render(df))
    print(render(df))
    print(f'wrote {args.out} and {table}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
