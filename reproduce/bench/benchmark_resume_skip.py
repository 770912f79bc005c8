"""What a resume costs before its first training batch: mmengine's skip (read and drop every trained batch) against
``IndexSkippingIterBasedTrainLoop``'s (draw only the trained batches' indices), side by side.

    python reproduce/bench/benchmark_resume_skip.py [--config CONFIG] [--data-root data/fashion_canvas]
        [--skip 300] [--rounds 3] [--out CSV] [--summary MD]

Per round, both variants (their order alternating from round to round) build the config's training dataloader
afresh, start its iterator as the loop does, skip ``--skip`` batches and draw the first batch after them; the time
of all that is the resume's data cost. The first batch after the skip must be the same image files in both
variants (checked; the benchmark stops otherwise). Reports each variant's median time and the ratio mmengine /
index with its range over the rounds. Writes a CSV with provenance and a markdown summary.
"""
from __future__ import annotations

import argparse
import os.path as osp
import statistics
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
DEFAULT_CONFIG = 'configs/mini/panoptic/detr-panoptic-stage1_r18_1xb16-mini.py'
VARIANTS = ('mmengine', 'index')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default=DEFAULT_CONFIG)
    p.add_argument('--data-root', default=osp.join(REPO, 'data', 'fashion_canvas'))
    p.add_argument('--skip', type=int, default=300, help='trained batches the resume skips')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--workers', type=int, default=None, help="dataloader workers (default: the config's)")
    p.add_argument('--out', default=osp.join(REPO, 'results', 'measured', 'resume_skip_cpu.csv'))
    p.add_argument('--summary', default=osp.join(REPO, 'results', 'tables', 'resume_skip_cpu.md'))
    args = p.parse_args(argv)
    if min(args.rounds, args.skip) < 1 or (args.workers is not None and args.workers < 0):
        p.error('--rounds and --skip must be at least 1, --workers at least 0')
    args.config = osp.join(REPO, args.config)  # (relative to the repository; an absolute path stays as it is)
    if not osp.isfile(args.config):
        p.error(f'config {args.config} not found')
    if not osp.isdir(osp.join(args.data_root, 'annotations')):
        p.error(f'no dataset at --data-root {args.data_root} (no annotations/ folder); make it with '
                f'python -m mmdet_plugins.datasets.fashion_canvas {args.data_root} --scale mini')
    return args


def first_batch_after_skip(loader_cfg, variant: str, skip: int):
    """Seconds from building the dataloader to holding the first batch after ``skip`` skipped ones, and that
    batch's image files."""
    from mmengine.runner import Runner
    from mmengine.runner.loops import _InfiniteDataloaderIterator
    from mmdet_plugins.runtime.resume_loop import IndexSkippingIterator
    start = time.perf_counter()
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    it = _InfiniteDataloaderIterator(loader)
    if variant == 'index':
        it = IndexSkippingIterator(it, skip)
    for _ in range(skip):
        next(it)
    batch = next(it)
    seconds = time.perf_counter() - start
    files = [s.img_path for s in batch['data_samples']]
    del it, loader
    return seconds, files


def render(df) -> str:
    med = df.groupby('variant')['seconds'].median()
    ratios = [g.set_index('variant')['seconds'] for _, g in df.groupby('round')]
    ratios = [r['mmengine'] / r['index'] for r in ratios]
    prov = df.iloc[0]
    return '\n'.join([
        f"Resume data cost: build the training dataloader, skip {prov.skip} batches, draw the next one "
        f"(reproduce/bench/benchmark_resume_skip.py; `{prov.config}`, {prov.workers} workers, {prov.hardware}, "
        f"torch {prov.torch}, commit {prov.commit}, {prov.date}; {df['round'].nunique()} interleaved rounds)",
        '',
        '| variant | seconds to the first batch after the skip, median |',
        '|---|---|',
        *(f'| {v} | {med[v]:.1f} |' for v in VARIANTS),
        '',
        f'mmengine / index: {statistics.median(ratios):.1f}x (range {min(ratios):.1f}-{max(ratios):.1f}); the '
        'first batch after the skip held the same images in both.',
        '',
    ])


def main(argv=None):
    args = parse_args(argv)
    import pandas as pd
    import torch
    from mmengine.config import Config
    import mmdet_plugins  # noqa: F401
    from mmdet.utils import register_all_modules
    from mmdet_plugins.utils.provenance import atomic_write_text, git_commit, hardware, today
    from reproduce.runner.data import set_data_root
    register_all_modules()
    cfg = Config.fromfile(args.config)
    set_data_root(cfg, args.data_root)
    loader_cfg = cfg.train_dataloader
    if args.workers is not None:
        loader_cfg.num_workers = args.workers
        loader_cfg.persistent_workers = args.workers > 0
    rows = []
    for r in range(args.rounds):
        order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
        files = {}
        for variant in order:
            seconds, files[variant] = first_batch_after_skip(loader_cfg, variant, args.skip)
            rows.append(dict(round=r, variant=variant, seconds=round(seconds, 3)))
            print(f'[resume_skip] round {r} {variant}: {seconds:.1f} s', flush=True)
        if files['mmengine'] != files['index']:
            raise SystemExit(f'error: round {r}: the batch after the skip differs between the variants '
                             f'({files["mmengine"][:2]} ... against {files["index"][:2]} ...)')
    df = pd.DataFrame(rows)
    df = df.assign(skip=args.skip, batch_size=loader_cfg.batch_size, workers=loader_cfg.num_workers,
                   config=osp.relpath(args.config, REPO), hardware=hardware(), torch=torch.__version__,
                   commit=git_commit(), date=today())
    atomic_write_text(args.out, df.to_csv(index=False))
    text = render(df)
    atomic_write_text(args.summary, text)
    print(text)


if __name__ == '__main__':
    main()
