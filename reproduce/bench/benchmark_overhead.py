"""Training-step and inference cost of BatchFormerV2, side by side with the baseline, in one run.

For each detector: the baseline at batch B, the two-stream BatchFormerV2 model at batch B, and the baseline
at batch 2B (what two streams should cost at most), all on the same synthetic images (random init,
ResNet-50, the full-scale configs of configs/). One training step = forward, backward, gradient clipping
(max norm 0.1, as the configs) and an AdamW step. Reports medians and the ratios BF/baseline.

    python reproduce/bench/benchmark_overhead.py --out results/measured/overhead_full.csv [--detectors DETR ...]

Needs a CUDA GPU for meaningful numbers (it runs on the CPU with --device cpu, slowly, for a check).
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

from reproduce.tables.detection import DETECTORS, config_path  # noqa: E402


def build(config: str, device, components: str = 'stock'):
    """The config's detector, random init; ``components='fast'`` swaps in the batched matching head and
    assigner (``reproduce/bench/benchmark_speed.py``'s ``fast`` variant; same matchings and losses)."""
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet_plugins.fast_training.heads import with_matching
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.backbone.init_cfg = None
    cfg.model = with_matching(cfg.model, batched=components == 'fast')
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.to(device)


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_train(model, inputs, samples, steps, warmup, device):
    """Median seconds per training step and peak memory (GiB) over the timed steps."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4)
    times = []
    for i in range(warmup + steps):
        if i == warmup and device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        sync(device)
        t0 = time.perf_counter()
        losses = model.loss(inputs, samples)
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 0.1)
        optim.step()
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == 'cuda' else float('nan')
    del optim
    return statistics.median(times), peak


@torch.no_grad()
def time_infer(model, inputs, samples, steps, warmup, device):
    model.eval()
    times = []
    for i in range(warmup + steps):
        batch = [s.clone() for s in samples]
        sync(device)
        t0 = time.perf_counter()
        model.predict(inputs, batch)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='CSV to write (rows are replaced atomically)')
    parser.add_argument('--detectors', nargs='+', default=list(DETECTORS), choices=list(DETECTORS))
    parser.add_argument('--batch', type=int, default=2, help='images per GPU (B)')
    parser.add_argument('--height', type=int, default=800)
    parser.add_argument('--width', type=int, default=1216)
    parser.add_argument('--boxes', type=int, default=7, help='ground-truth boxes per image')
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--components', nargs='+', choices=['stock', 'fast'], default=['stock'],
                        help="stock mmdet heads, and/or 'fast' (batched matching); one set of rows each")
    args = parser.parse_args(argv)

    import pandas as pd
    import mmdet
    import mmcv
    import mmdet_plugins  # noqa: F401
    from mmdet.utils import register_all_modules
    from mmdet_plugins.utils.provenance import atomic_write_text, git_commit, hardware, today
    from mmdet_plugins.utils.synthetic import synthetic_batch
    register_all_modules()

    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('no CUDA GPU: run on the GPU machine, or pass --device cpu for a functional check')
    gpu = hardware(device)
    B = args.batch
    rows = []
    for name in args.detectors:
        base_cfg, bf_cfg = config_path(name, False), config_path(name, True)
        torch.manual_seed(args.seed)
        inputs, samples = synthetic_batch([(args.height, args.width)] * (2 * B), [args.boxes] * (2 * B),
                                          num_classes=80, seed=args.seed, device=device)
        for components in args.components:
            measured = {}
            for variant, config, batch in (('baseline', base_cfg, B), ('batchformer', bf_cfg, B),
                                           ('baseline_2B', base_cfg, 2 * B)):
                torch.manual_seed(args.seed)
                model = build(config, device, components)
                train_s, peak = time_train(model, inputs[:batch], samples[:batch], args.steps, args.warmup, device)
                infer_s = time_infer(model, inputs[:batch], samples[:batch], args.steps, args.warmup, device)
                measured[variant] = (train_s, peak, infer_s)
                print(f'{name:16s} {components:5s} {variant:12s} batch {batch}: train {train_s:.4f} s  '
                      f'peak {peak:.2f} GiB  infer {infer_s:.4f} s', flush=True)
                del model
                if device.type == 'cuda':
                    torch.cuda.empty_cache()
            (bt, bm, bi), (ft, fm, fi), (dt, dm, di) = (measured[v] for v in
                                                        ('baseline', 'batchformer', 'baseline_2B'))
            rows.append(dict(
                detector=name, components=components, batch_per_gpu=B, height=args.height, width=args.width,
                boxes_per_image=args.boxes,
                base_train_s=bt, bf_train_s=ft, base2B_train_s=dt, train_ratio=ft / bt, train_ratio_vs_2B=ft / dt,
                base_peak_gib=bm, bf_peak_gib=fm, base2B_peak_gib=dm, peak_ratio=fm / bm,
                base_infer_s=bi, bf_infer_s=fi, infer_ratio=fi / bi,
                steps=args.steps, warmup=args.warmup, precision='fp32', seed=args.seed,
                gpu=gpu, torch=torch.__version__, mmdet=mmdet.__version__, mmcv=mmcv.__version__,
                commit=git_commit(), date=today(),
                config=bf_cfg, baseline_config=base_cfg))
    df = pd.DataFrame(rows)
    atomic_write_text(args.out, df.to_csv(index=False, float_format='%.4f'))
    cols = ['detector', 'components', 'base_train_s', 'bf_train_s', 'base2B_train_s', 'train_ratio', 'train_ratio_vs_2B',
            'peak_ratio', 'infer_ratio']
    print(df[cols].to_string(index=False, float_format=lambda v: f'{v:.3f}'))
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
