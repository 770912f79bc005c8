"""A ResNet-18 backbone pretrained on Fashion-MNIST classification: the mini benchmark's "ImageNet".

The paper's detectors start from an ImageNet-pretrained ResNet-50; the mini benchmark cannot, so DETR-style
detectors, which do not learn from scratch there (README, "Calibration"), start from this instead: mmdet's
``ResNet`` (depth 18, GroupNorm, exactly the mini configs' backbone) trained to classify single Fashion-MNIST items
pasted on textured backgrounds, rendered on the fly on the device:

- an item of Fashion-MNIST's **train** split (balanced classes; the mini benchmark's validation canvases come from
  the test split, which pretraining never sees) is scaled to ``min_item``-``max_item`` pixels and placed at a random
  position of a ``canvas`` x ``canvas`` image, tinted with a random colour;
- the background is one of the mini benchmark's three texture kinds (stripes, checks, speckle) in two random
  colours;
- the image is normalised like the detectors' data preprocessor (RGB, ImageNet mean and std in 0-255 units).

Classifier: the backbone's last stage, global average pooling, one linear layer (dropped when saved). AdamW,
cosine learning rate, bf16 autocast on a GPU. Top-1 accuracy on 10000 rendered test-split items is measured at
the end. The checkpoint holds the backbone's ``state_dict`` (``init_cfg=dict(type='Pretrained', checkpoint=...)``
on the backbone loads it) and ``meta`` with the settings, the accuracy and the provenance. GPU kernels are not
bitwise deterministic, so two runs with one seed give close, not identical, weights.

    python -m mmdet_plugins.pretrain.fashion_mnist_backbone data/pretrained/resnet18_gn_fashion_mnist.pth
"""
from __future__ import annotations

import argparse
import math
import os
import os.path as osp
import time

import torch
import torch.nn.functional as F

DEFAULT_CHECKPOINT = 'data/pretrained/resnet18_gn_fashion_mnist.pth'
# the detectors' DetDataPreprocessor (mmdet configs): RGB, ImageNet statistics in 0-255 units
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def backbone_cfg() -> dict:
    """The mini configs' backbone (configs/mini/_base_/fashion_canvas.py), all four stages, last one out."""
    return dict(type='ResNet', depth=18, num_stages=4, out_indices=(3, ), frozen_stages=-1,
                norm_cfg=dict(type='GN', num_groups=32, requires_grad=True), norm_eval=False, style='pytorch',
                init_cfg=None)


def _textures(batch: int, size: int, gen: torch.Generator, device) -> torch.Tensor:
    """``(batch, 3, size, size)`` backgrounds in [0, 1]: stripes, checks or speckle in two random colours."""
    u = lambda *shape: torch.rand(*shape, generator=gen, device=device)  # noqa: E731
    yy, xx = torch.meshgrid(torch.arange(size, device=device, dtype=torch.float32),
                            torch.arange(size, device=device, dtype=torch.float32), indexing='ij')
    angle, period = u(batch, 1, 1) * math.pi, 6 + 12 * u(batch, 1, 1)
    stripes = (torch.sin((xx * torch.cos(angle) + yy * torch.sin(angle)) * 2 * math.pi / period) > 0).float()
    cell = 8 + 16 * u(batch, 1, 1)
    checks = ((torch.floor(xx / cell) + torch.floor(yy / cell)) % 2).float()
    speckle = (u(batch, size, size) > 0.5).float()
    kind = torch.randint(0, 3, (batch, 1, 1), generator=gen, device=device)
    t = torch.where(kind == 0, stripes, torch.where(kind == 1, checks, speckle))[:, None]
    c1, c2 = 0.05 + 0.55 * u(batch, 3, 1, 1), 0.05 + 0.55 * u(batch, 3, 1, 1)
    return c1 * (1 - t) + c2 * t


def render(items: torch.Tensor, size: int, min_item: int, max_item: int, gen: torch.Generator) -> torch.Tensor:
    """Paste ``items`` (``(B, 28, 28)`` uint8, on the device) on textured canvases.

    Returns:
        ``(B, 3, size, size)`` float32, normalised like the detectors' inputs.
    """
    B, device = items.shape[0], items.device
    u = lambda *shape: torch.rand(*shape, generator=gen, device=device)  # noqa: E731
    scale = (min_item + (max_item - min_item) * u(B)) / size  # item side as a fraction of the canvas
    centre = (2 * u(B, 2) - 1) * (1 - scale[:, None])  # in [-1, 1] canvas coordinates, item fully inside
    theta = torch.zeros(B, 2, 3, device=device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale  # canvas coordinate -> item coordinate
    theta[:, :, 2] = -centre / scale[:, None]
    grid = F.affine_grid(theta, (B, 1, size, size), align_corners=False)
    alpha = F.grid_sample(items[:, None].float() / 255, grid, mode='bilinear', padding_mode='zeros',
                          align_corners=False)
    tint = 0.45 + 0.55 * u(B, 3, 1, 1)
    img = alpha * tint + (1 - alpha) * _textures(B, size, gen, device)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    return (img * 255 - mean) / std


class Classifier(torch.nn.Module):
    """mmdet ResNet-18 (GN) + global average pooling + linear: ``(B, 3, H, W)`` -> ``(B, 10)`` logits."""

    def __init__(self):
        super().__init__()
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
        register_all_modules()
        self.backbone = MODELS.build(backbone_cfg())
        self.fc = torch.nn.Linear(512, 10)

    def forward(self, x):
        return self.fc(self.backbone(x)[-1].mean((2, 3)))


@torch.no_grad()
def accuracy(model, images, labels, args, device, seed: int) -> float:
    gen = torch.Generator(device=device).manual_seed(seed)
    model.eval()
    correct = 0
    for start in range(0, len(images), args.batch_size):
        x = render(images[start:start + args.batch_size], args.canvas, args.min_item, args.max_item, gen)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == 'cuda'):
            correct += (model(x).argmax(1) == labels[start:start + args.batch_size]).sum().item()
    model.train()
    return correct / len(images)


def pretrain(args) -> dict:
    from mmdet_plugins.datasets.fashion_canvas import load_fashion_mnist
    from mmdet_plugins.utils.provenance import git_commit, hardware, today
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    train_x, train_y = (torch.as_tensor(a).to(device) for a in load_fashion_mnist('train', args.fashion_mnist))
    test_x, test_y = (torch.as_tensor(a).to(device) for a in load_fashion_mnist('val', args.fashion_mnist))
    if args.eval_items:
        test_x, test_y = test_x[:args.eval_items], test_y[:args.eval_items]
    model = Classifier().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / args.warmup) * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
    gen = torch.Generator(device=device).manual_seed(args.seed)
    started = time.perf_counter()
    for step in range(args.steps):
        index = torch.randint(0, len(train_x), (args.batch_size, ), generator=gen, device=device)
        x = render(train_x[index], args.canvas, args.min_item, args.max_item, gen)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == 'cuda'):
            loss = F.cross_entropy(model(x).float(), train_y[index].long())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if args.log_every and (step + 1) % args.log_every == 0:
            print(f'[pretrain] step {step + 1}/{args.steps} loss {loss.item():.3f} '
                  f'({time.perf_counter() - started:.0f} s)', flush=True)
    top1 = accuracy(model, test_x, test_y.long(), args, device, seed=args.seed + 1)
    meta = dict(what='mmdet ResNet-18 (GN) pretrained on Fashion-MNIST items on textured canvases',
                test_top1=round(top1, 4), test_items=len(test_x), steps=args.steps, batch_size=args.batch_size,
                canvas=args.canvas, item_px=[args.min_item, args.max_item], lr=args.lr, seed=args.seed,
                seconds=round(time.perf_counter() - started, 1), hardware=hardware(device), commit=git_commit(),
                date=today(), torch=str(torch.__version__))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    tmp = args.out + '.tmp'
    torch.save(dict(state_dict={k: v.cpu() for k, v in model.backbone.state_dict().items()}, meta=meta), tmp)
    os.replace(tmp, args.out)  # never a half-written checkpoint
    print(f'[pretrain] test top-1 {top1:.4f} on {len(test_x)} items; wrote {args.out}', flush=True)
    return meta


def parse_args(argv=None):
    from mmdet_plugins.datasets.fashion_canvas import FASHION_MNIST_DIR
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('out', nargs='?', default=DEFAULT_CHECKPOINT)
    p.add_argument('--steps', type=int, default=3000)
    p.add_argument('--batch-size', type=int, default=256)
    p.add_argument('--canvas', type=int, default=96)
    p.add_argument('--min-item', type=int, default=32)
    p.add_argument('--max-item', type=int, default=88)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--weight-decay', type=float, default=0.05)
    p.add_argument('--warmup', type=int, default=100)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--eval-items', type=int, default=0, help='evaluate on the first N test items (0: all 10000)')
    p.add_argument('--log-every', type=int, default=250)
    p.add_argument('--fashion-mnist', default=FASHION_MNIST_DIR)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--force', action='store_true', help='overwrite an existing checkpoint')
    args = p.parse_args(argv)
    if not 8 <= args.min_item <= args.max_item <= args.canvas:
        p.error(f'need 8 <= --min-item <= --max-item <= --canvas, got {args.min_item}, {args.max_item}, '
                f'{args.canvas}')
    if args.steps < 1 or args.batch_size < 1:
        p.error('--steps and --batch-size must be positive')
    return args


def main(argv=None):
    args = parse_args(argv)
    if osp.isfile(args.out) and not args.force:
        print(f'[pretrain] {args.out} exists; nothing to do (--force to redo)')
        return 0
    pretrain(args)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
