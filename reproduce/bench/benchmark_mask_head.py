"""The panoptic mask head in a training step: run on every query and the matched ones' masks taken (as DETR
does), against run on the matched queries alone (as ``DETRPanoptic.loss`` does), side by side.

    python reproduce/bench/benchmark_mask_head.py [--scale mini|full] [--device cuda] [--rounds 5] [--steps 10]
        [--matched 7] [--out CSV] [--summary MD]

Both variants take the same attention maps and backbone features, compute the mask logits of the same matched
queries, upsample them to the padded input and back-propagate the focal and dice losses into the head (and the
maps); their losses must agree (checked). Shapes: ``mini``: 2 x 16 images (two streams) of 320 x 320, 50 queries,
ResNet-18 widths; ``full``: 2 x 2 images of 800 x 1216, 100 queries, ResNet-50 widths. ``--matched``: matched
queries per image (the mini canvases have about 4 things and up to 3 stuff segments). The variants alternate
over the rounds; reports each one's median step time, the ratio and its range, and the peak memory on a GPU.
"""
from __future__ import annotations

import argparse
import os.path as osp
import statistics
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
VARIANTS = ('every_query', 'matched_only')
SCALES = dict(mini=dict(images=32, queries=50, height=320, width=320, fpn_dims=(256, 128, 64)),
              full=dict(images=4, queries=100, height=800, width=1216, fpn_dims=(1024, 512, 256)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--scale', choices=sorted(SCALES), default='mini')
    p.add_argument('--device', default='cuda')
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--steps', type=int, default=10, help='timed steps per variant and round')
    p.add_argument('--matched', type=int, default=7, help='matched queries per image')
    p.add_argument('--out', default=None, help='CSV (default results/measured/mask_head_<scale>.csv)')
    p.add_argument('--summary', default=None, help='markdown (default results/tables/mask_head_<scale>.md)')
    args = p.parse_args(argv)
    if min(args.rounds, args.steps, args.matched) < 1:
        p.error('--rounds, --steps and --matched must be at least 1')
    if args.matched > SCALES[args.scale]['queries']:
        p.error(f"--matched {args.matched}: more than the {SCALES[args.scale]['queries']} queries per image")
    if args.device.startswith('cuda'):
        import torch
        if not torch.cuda.is_available():
            p.error('--device cuda: no GPU here; give --device cpu')
    args.out = args.out or osp.join(REPO, 'results', 'measured', f'mask_head_{args.scale}.csv')
    args.summary = args.summary or osp.join(REPO, 'results', 'tables', f'mask_head_{args.scale}.md')
    return args


def inputs(shape: dict, matched: int, device):
    """Random head inputs at ``shape``: context, attention (B, Q, M, h, w) with grad, C4..C2, the matched queries
    (image, query) and their {0, 1} targets at the padded size."""
    import torch
    b, q, m = shape['images'], shape['queries'], 8
    h, w = shape['height'] // 32, shape['width'] // 32
    c4, c3, c2 = shape['fpn_dims']
    context = torch.randn(b, 256, h, w, device=device)
    attention = torch.rand(b, q, m, h, w, device=device).requires_grad_()
    fpn = [torch.randn(b, c4, 2 * h, 2 * w, device=device), torch.randn(b, c3, 4 * h, 4 * w, device=device),
           torch.randn(b, c2, 8 * h, 8 * w, device=device)]
    image_idx = torch.arange(b, device=device).repeat_interleave(matched)
    query_idx = torch.cat([torch.randperm(q, device=device)[:matched] for _ in range(b)])
    target = (torch.rand(len(image_idx), shape['height'], shape['width'], device=device) > 0.7).float()
    return context, attention, fpn, image_idx, query_idx, target


def step(head, variant: str, data) -> float:
    """One forward and backward of the mask losses; returns the loss."""
    import torch.nn.functional as F
    from mmdet_plugins.panoptic.mask_head import mask_dice_loss, mask_focal_loss
    context, attention, fpn, image_idx, query_idx, target = data
    if variant == 'every_query':
        logits = head(context, attention, fpn)[image_idx, query_idx]                      # (N, H/4, W/4)
    else:
        logits = head(context, attention[image_idx, query_idx], fpn, image_index=image_idx)
    pred = F.interpolate(logits[None], size=target.shape[-2:], mode='bilinear', align_corners=False)[0]
    pred, flat = pred.flatten(1).float(), target.flatten(1)
    n = float(len(image_idx))
    loss = mask_focal_loss(pred, flat, n) + mask_dice_loss(pred, flat, n)
    loss.backward()
    return loss.item()


def main(argv=None):
    args = parse_args(argv)
    import pandas as pd
    import torch
    from mmdet_plugins.panoptic.mask_head import SmallConvMaskHead
    from reproduce.bench.benchmark_overhead import sync
    from mmdet_plugins.utils.provenance import atomic_write_text, git_commit, hardware, today
    device = torch.device(args.device)
    shape = SCALES[args.scale]
    torch.manual_seed(0)
    head = SmallConvMaskHead(256, 8, shape['fpn_dims']).to(device)
    data = inputs(shape, args.matched, device)
    with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == 'cuda'):
        losses = {v: step(head, v, data) for v in VARIANTS}  # warm-up, and the check
    if abs(losses['every_query'] - losses['matched_only']) > 1e-3 * max(1.0, abs(losses['every_query'])):
        raise SystemExit(f'error: the variants disagree: loss {losses["every_query"]} against '
                         f'{losses["matched_only"]}')
    rows = []
    for r in range(args.rounds):
        for variant in (VARIANTS if r % 2 == 0 else VARIANTS[::-1]):
            if device.type == 'cuda':
                torch.cuda.reset_peak_memory_stats(device)
            sync(device)
            start = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == 'cuda'):
                for _ in range(args.steps):
                    head.zero_grad(set_to_none=True)
                    data[1].grad = None
                    step(head, variant, data)
            sync(device)
            seconds = (time.perf_counter() - start) / args.steps
            peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == 'cuda' else float('nan')
            rows.append(dict(round=r, variant=variant, step_s=seconds, peak_gib=peak))
            print(f'[mask_head] round {r} {variant}: {1000 * seconds:.1f} ms/step', flush=True)
    df = pd.DataFrame(rows).assign(scale=args.scale, images=shape['images'], queries=shape['queries'],
                                   matched_per_image=args.matched, hardware=hardware(str(device)),
                                   torch=torch.__version__, commit=git_commit(), date=today())
    atomic_write_text(args.out, df.to_csv(index=False))
    text = render(df)
    atomic_write_text(args.summary, text)
    print(text)
    return 0


def render(df) -> str:
    med = df.groupby('variant')['step_s'].median()
    peak = df.groupby('variant')['peak_gib'].max()
    ratios = [g.set_index('variant')['step_s'] for _, g in df.groupby('round')]
    ratios = [r['every_query'] / r['matched_only'] for r in ratios]
    p = df.iloc[0]
    mem = lambda v: 'not measured (CPU)' if peak[v] != peak[v] else f'{peak[v]:.2f}'  # noqa: E731 (NaN off the GPU)
    return '\n'.join([
        f'Panoptic mask head, one training step of its losses (reproduce/bench/benchmark_mask_head.py, {p.scale}: '
        f'{p.images} images x {p.queries} queries, {p.matched_per_image} matched per image; {p.hardware}, torch '
        f'{p.torch}, commit {p.commit}, {p.date}; {df["round"].nunique()} interleaved rounds)',
        '',
        '| variant | step, ms (median) | peak memory, GiB |',
        '|---|---|---|',
        *(f'| {v} | {1000 * med[v]:.1f} | {mem(v)} |' for v in VARIANTS),
        '',
        f'every query / matched only: {statistics.median(ratios):.1f}x (range {min(ratios):.1f}-{max(ratios):.1f}); '
        'both gave the same loss.',
        '',
    ])


if __name__ == '__main__':
    sys.exit(main())
