"""Training-step cost of DETR panoptic with and without BatchFormerV2, both stages, side by side in one run.

For each stage (1: the box model on things and stuff; 2: the mask head on the frozen detector) the baseline and the
BatchFormerV2 model (two streams, as the table trains them) are built from the panoptic configs, random init, and
trained on one synthetic batch (random images; boxes, and box-shaped masks for stage 2) with the optimiser wrapper
of their config (AMP, clipping, parameter groups: what the table's runs do). Rounds interleave the two models,
the order alternating (AB, BA, AB, ...), each round timing ``--steps`` training steps of each; the host's noise
reaches both alike. Reported per stage: each model's median step time over the rounds, the ratio BF / baseline
(its median over rounds and its range), and the memory of a step: the model's resident state (parameters,
gradients, optimiser state) and the peak a step adds above everything allocated before it.

    python reproduce/bench/benchmark_panoptic.py --scale mini --out results/measured/panoptic_cost_mini.csv
    python reproduce/bench/benchmark_panoptic.py --scale full --out results/measured/panoptic_cost_full.csv

Shapes: mini, the mini configs (ResNet-18) at 320x320 with 16 images; full, the COCO configs (ResNet-50) at
800x1216 with 2 images per GPU (the paper's). ``--height/--width/--batch`` override them (a CPU check:
``--device cpu``; AMP is left off there).
"""
from __future__ import annotations

import argparse
import os.path as osp
import statistics
import sys
import time

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from reproduce.bench.benchmark_overhead import sync  # noqa: E402
from reproduce.tables.panoptic import config_path  # noqa: E402

SHAPES = {'mini': dict(height=320, width=320, batch=16, segments=6),
          'full': dict(height=800, width=1216, batch=2, segments=12)}


def build(config: str, device):
    """(model, optimiser wrapper) of the config: random init (no pretrained backbone), AMP off on the CPU."""
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmdet.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    model = model.to(device)
    optim_cfg = cfg.optim_wrapper
    if device.type != 'cuda' and optim_cfg.get('type') == 'AmpOptimWrapper':
        optim_cfg = dict(optim_cfg)
        optim_cfg['type'] = 'OptimWrapper'
        optim_cfg.pop('loss_scale', None)
    return model, build_optim_wrapper(model, optim_cfg)


def train_step(model, optim_wrapper, inputs, samples):
    """One training step as mmengine's ``train_step`` without the data preprocessor (the batch is ready)."""
    with optim_wrapper.optim_context(model):
        losses = model.loss(inputs, samples)
    loss, _ = model.parse_losses(losses)
    optim_wrapper.update_params(loss)


def resident_gib(model, optim_wrapper) -> float:
    """Parameters, their gradients and the optimiser's state, in GiB."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    total += sum(p.numel() * p.element_size() for p in model.parameters() if p.grad is not None)
    for state in optim_wrapper.optimizer.state.values():
        total += sum(v.numel() * v.element_size() for v in state.values() if torch.is_tensor(v))
    return total / 2**30


def step_peak_gib(model, optim_wrapper, inputs, samples, device) -> float:
    """The peak memory one step adds above what is allocated before it (NaN off the GPU)."""
    if device.type != 'cuda':
        train_step(model, optim_wrapper, inputs, samples)
        return float('nan')
    sync(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    train_step(model, optim_wrapper, inputs, samples)
    sync(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**30


def timed(model, optim_wrapper, inputs, samples, steps, device) -> float:
    """Median seconds of ``steps`` training steps, each timed on its own."""
    times = []
    for _ in range(steps):
        sync(device)
        t0 = time.perf_counter()
        train_step(model, optim_wrapper, inputs, samples)
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', required=True, help='CSV to write (atomically)')
    p.add_argument('--summary', default=None, help='also a markdown table here')
    p.add_argument('--scale', choices=sorted(SHAPES), default='mini')
    p.add_argument('--stages', nargs='+', type=int, choices=[1, 2], default=[1, 2])
    p.add_argument('--height', type=int, default=None)
    p.add_argument('--width', type=int, default=None)
    p.add_argument('--batch', type=int, default=None, help='images per GPU')
    p.add_argument('--segments', type=int, default=None, help='ground-truth segments (boxes, masks) per image')
    p.add_argument('--rounds', type=int, default=6)
    p.add_argument('--steps', type=int, default=10, help='timed steps of each model per round')
    p.add_argument('--warmup', type=int, default=5, help='untimed steps of each model first')
    p.add_argument('--device', default='cuda')
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    for name in ('rounds', 'steps'):
        if getattr(args, name) < 1:
            raise SystemExit(f'error: --{name} {getattr(args, name)}: give at least 1')
    shape = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in SHAPES[args.scale].items()}
    for name, least in (('batch', 1), ('height', 32), ('width', 32), ('segments', 1)):
        if shape[name] < least:
            raise SystemExit(f'error: --{name} {shape[name]}: give at least {least}')

    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('error: no CUDA GPU: run on the GPU machine, or pass --device cpu for a functional check')
    import pandas as pd
    import mmcv
    from mmengine.optim import AmpOptimWrapper
    import mmdet
    import mmdet_plugins  # noqa: F401
    from mmdet.utils import register_all_modules
    from mmdet_plugins.utils.provenance import atomic_write_text, git_commit, hardware, today
    from mmdet_plugins.utils.synthetic import synthetic_batch
    register_all_modules()

    rows = []
    for stage in args.stages:
        configs = {arm: config_path('DETR', arm == 'bf', args.scale, stage=stage) for arm in ('base', 'bf')}
        models = {}
        for arm, config in configs.items():
            torch.manual_seed(args.seed)
            models[arm] = build(config, device)
        num_classes = models['base'][0].bbox_head.num_classes
        inputs, samples = synthetic_batch([(shape['height'], shape['width'])] * shape['batch'],
                                          [shape['segments']] * shape['batch'], num_classes=num_classes,
                                          seed=args.seed, device=device, with_masks=stage == 2)
        peak, resident = {}, {}
        for arm, (model, optim) in models.items():
            model.train()
            for _ in range(args.warmup):
                train_step(model, optim, inputs, samples)
            peak[arm] = step_peak_gib(model, optim, inputs, samples, device)
            resident[arm] = resident_gib(model, optim)
        per_round = {'base': [], 'bf': []}
        for r in range(args.rounds):
            for arm in (('base', 'bf') if r % 2 == 0 else ('bf', 'base')):
                model, optim = models[arm]
                per_round[arm].append(timed(model, optim, inputs, samples, args.steps, device))
            print(f'stage {stage} round {r + 1}/{args.rounds}: baseline {per_round["base"][-1]:.4f} s, '
                  f'BatchFormerV2 {per_round["bf"][-1]:.4f} s', flush=True)
        ratios = [b / a for a, b in zip(per_round['base'], per_round['bf'])]
        precision = 'fp16 AMP' if isinstance(models['base'][1], AmpOptimWrapper) else 'fp32'
        rows.append(dict(
            stage=stage, scale=args.scale, batch_per_gpu=shape['batch'], height=shape['height'],
            width=shape['width'], segments_per_image=shape['segments'],
            base_step_s=statistics.median(per_round['base']), bf_step_s=statistics.median(per_round['bf']),
            step_ratio=statistics.median(ratios), step_ratio_min=min(ratios), step_ratio_max=max(ratios),
            base_resident_gib=resident['base'], bf_resident_gib=resident['bf'],
            base_step_peak_gib=peak['base'], bf_step_peak_gib=peak['bf'],
            peak_ratio=peak['bf'] / peak['base'] if peak['base'] == peak['base'] else float('nan'),
            rounds=args.rounds, steps=args.steps, warmup=args.warmup, precision=precision, seed=args.seed,
            gpu=hardware(device), torch=torch.__version__, mmdet=mmdet.__version__, mmcv=mmcv.__version__,
            commit=git_commit(), date=today(), config=configs['bf'], baseline_config=configs['base']))
        del models
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    df = pd.DataFrame(rows)
    atomic_write_text(args.out, df.to_csv(index=False, float_format='%.4f'))
    if args.summary:
        atomic_write_text(args.summary, summary_markdown(df))
    cols = ['stage', 'base_step_s', 'bf_step_s', 'step_ratio', 'base_step_peak_gib', 'bf_step_peak_gib']
    print(df[cols].to_string(index=False, float_format=lambda v: f'{v:.3f}'))
    print(f'wrote {args.out}' + (f' and {args.summary}' if args.summary else ''))
    return 0


def summary_markdown(df) -> str:
    """Markdown: one line per stage, baseline and BatchFormerV2 side by side, the ratio with its range."""
    r0 = df.iloc[0]
    lines = [f'DETR panoptic training step, baseline vs BatchFormerV2 (two streams), {r0.scale} shapes: '
             f'{int(r0.batch_per_gpu)} images of {int(r0.height)}x{int(r0.width)}, {r0.precision}; median over '
             f'{int(r0.rounds)} interleaved rounds of {int(r0.steps)} steps each. Memory: resident (parameters, '
             'gradients, optimiser state) + the peak a step adds.', '',
             '| stage | baseline step | +BF step | ratio (range over rounds) | baseline memory | +BF memory |',
             '|---|---|---|---|---|---|']
    def memory(resident, peak):
        return f'{resident:.2f} + {peak:.2f} GiB' if peak == peak else f'{resident:.2f} GiB + not measured (CPU)'
    for r in df.itertuples():
        what = 'box model (things + stuff)' if r.stage == 1 else 'mask head, frozen detector'
        lines.append(f'| {r.stage}: {what} | {1000 * r.base_step_s:.1f} ms | {1000 * r.bf_step_s:.1f} ms | '
                     f'{r.step_ratio:.3f} ({r.step_ratio_min:.3f}-{r.step_ratio_max:.3f}) | '
                     f'{memory(r.base_resident_gib, r.base_step_peak_gib)} | '
                     f'{memory(r.bf_resident_gib, r.bf_step_peak_gib)} |')
    lines += ['', f'Measured on {r0.gpu}, commit {r0.commit}, {r0.date} (torch {r0.torch}, mmdet {r0.mmdet}, '
              f'mmcv {r0.mmcv}); configs: ' + ', '.join(f'`{c}`' for c in sorted(set(df.baseline_config) |
                                                                            set(df.config))), '']
    return '\n'.join(lines)


if __name__ == '__main__':
    sys.exit(main())
