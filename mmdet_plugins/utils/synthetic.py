"""Synthetic detection batches (random images, random boxes) for tests and benchmarks."""
from typing import Sequence, Tuple

import torch


def synthetic_batch(sizes: Sequence[Tuple[int, int]] = ((64, 96), (48, 64)),
                    num_boxes: Sequence[int] = (2, 1),
                    num_classes: int = 3,
                    seed: int = 0,
                    pad_size_divisor: int = 32,
                    device='cpu',
                    with_masks: bool = False):
    """Normalised random images of the given ``(h, w)`` sizes, zero-padded into one batch, with
    ``DetDataSample`` metadata as mmdet's data preprocessor would set it and random ground-truth boxes.

    Returns:
        ``(inputs, data_samples)``: inputs ``(B, 3, H, W)`` with H, W the largest size rounded up to
        ``pad_size_divisor``; one ``DetDataSample`` per image with ``gt_instances`` (bboxes ``(n, 4)`` xyxy in
        pixels, labels ``(n,)``; with ``with_masks`` also masks: ``BitmapMasks`` (n, H, W), each box filled).
    """
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    if len(sizes) != len(num_boxes):
        raise ValueError(f'synthetic_batch: {len(sizes)} sizes but {len(num_boxes)} box counts')
    g = torch.Generator().manual_seed(seed)
    H = -(-max(h for h, _ in sizes) // pad_size_divisor) * pad_size_divisor
    W = -(-max(w for _, w in sizes) // pad_size_divisor) * pad_size_divisor
    inputs = torch.zeros(len(sizes), 3, H, W)
    samples = []
    for i, ((h, w), n) in enumerate(zip(sizes, num_boxes)):
        inputs[i, :, :h, :w] = torch.randn(3, h, w, generator=g)
        sample = DetDataSample()
        sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w), batch_input_shape=(H, W),
                                 pad_shape=(H, W), scale_factor=(1.0, 1.0), img_id=i))
        xy = torch.rand(n, 2, generator=g) * torch.tensor([w * 0.5, h * 0.5])
        wh = torch.rand(n, 2, generator=g) * torch.tensor([w * 0.4, h * 0.4]) + 4
        gt = InstanceData()
        gt.bboxes = torch.cat([xy, xy + wh], 1)
        gt.labels = torch.randint(0, num_classes, (n, ), generator=g)
        if with_masks:
            from mmdet.structures.mask import BitmapMasks
            masks = torch.zeros(n, H, W, dtype=torch.uint8)
            for k, (x1, y1, x2, y2) in enumerate(gt.bboxes.round().long().tolist()):
                masks[k, y1:y2, x1:x2] = 1
            gt.masks = BitmapMasks(masks.numpy(), H, W)
        sample.gt_instances = gt
        samples.append(sample.to(device))
    return inputs.to(device), samples
