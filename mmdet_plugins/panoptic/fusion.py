"""DETR's panoptic fusion: per-query classes and mask logits of one image to mmdet's panoptic map.

The rules are DETR's ``PostProcessPanoptic`` (facebookresearch/detr ``models/segmentation.py``):

1. keep the queries whose most probable class is an object class with probability above ``threshold`` (0.85);
2. give each pixel to the kept query with the largest mask logit (no score weighting, no sigmoid threshold);
3. merge the kept queries of one stuff class into one segment;
4. resize the segment map to the original image (nearest), and drop segments of at most ``min_area`` pixels there
   (4), recomputing the argmax over the remaining queries until none is that small.

Two choices differ from DETR's code, both on purpose. Stuff queries are merged in every pass of rule 4, and a
merged segment is dropped only when the whole segment is small (DETR merges in the first pass only, and its
merged-away queries, which own no pixel there, count as empty and are dropped, so later passes split the stuff
again). An image with no confident query is all void (DETR writes one dummy segment of class 1). The mask logits are upsampled to the padded batch shape and cropped to the image before
the argmax (DETR upsamples the padded stride-4 logits straight to the image size).

The output is mmdet's encoding, as ``MaskFormerFusionHead`` writes it and ``CocoPanopticMetric`` and
``DetLocalVisualizer`` read it: a thing segment ``label + k * INSTANCE_OFFSET`` (k = 1, 2, ...), a stuff segment
``label``, void ``num_classes``.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['detr_panoptic_fusion']


def detr_panoptic_fusion(cls_logits: Tensor, mask_logits: Tensor, num_things_classes: int,
                         batch_input_shape: Tuple[int, int], img_shape: Tuple[int, int],
                         ori_shape: Tuple[int, int], threshold: float = 0.85,
                         min_area: int = 4, instance_offset: int = 1000) -> Tensor:
    """Fuse one image's predictions into a panoptic map (module docstring).

    Args:
        cls_logits: (Q, K + 1) class logits, the no-object class last (K = things + stuff classes).
        mask_logits: (Q, h, w) mask logits over the padded batch input (any stride; upsampled here).
        batch_input_shape: (Hp, Wp) of the padded batch input the logits cover.
        num_things_classes: T; labels 0..T-1 are things, T..K-1 stuff.
        img_shape: (H, W) of the resized image inside the padded input.
        ori_shape: (H0, W0) of the original image: the output's size.
        threshold: class probability a query needs to be kept.
        min_area: segments of at most this many pixels (at the original size) are dropped.
        instance_offset: mmdet's ``INSTANCE_OFFSET``.

    Returns:
        (H0, W0) int64 map in mmdet's panoptic encoding (void = K).
    """
    num_classes = cls_logits.shape[-1] - 1
    void = torch.full(tuple(ori_shape), num_classes, dtype=torch.long, device=cls_logits.device)
    scores, labels = cls_logits.softmax(-1).max(-1)
    keep = (labels != num_classes) & (scores > threshold)
    if not keep.any():
        return void
    labels = labels[keep]
    masks = _masks_at_image(mask_logits[keep], img_shape, batch_input_shape)
    while True:
        representative = _stuff_representatives(labels, num_things_classes)
        segment = _assign_pixels(masks, representative, ori_shape)  # (H0, W0) index into the kept queries
        area = torch.bincount(segment.flatten(), minlength=len(labels))[representative]  # of each query's segment
        small = area <= min_area
        if not small.any():
            break
        if small.all():
            return void
        masks, labels = masks[~small], labels[~small]
    return _encode(segment, labels, num_things_classes, instance_offset)


def _masks_at_image(mask_logits: Tensor, img_shape: Sequence[int], padded_shape: Sequence[int]) -> Tensor:
    """(N, h, w) logits -> (N, H, W): bilinear to the padded input, then the image's crop."""
    up = F.interpolate(mask_logits[:, None].float(), size=tuple(padded_shape), mode='bilinear', align_corners=False)
    return up[:, 0, :img_shape[0], :img_shape[1]]


def _stuff_representatives(labels: Tensor, num_things_classes: int) -> Tensor:
    """(N,) index of the query whose segment each query joins: itself for a thing, the first kept query of its
    class for a stuff query."""
    representative = torch.arange(len(labels), device=labels.device)
    for label in labels[labels >= num_things_classes].unique():
        same = (labels == label).nonzero()[:, 0]
        representative[same] = same[0]
    return representative


def _assign_pixels(masks: Tensor, representative: Tensor, ori_shape: Sequence[int]) -> Tensor:
    """Argmax over queries, each winner replaced by its representative, resized (nearest) to the original size.
    Returns (H0, W0) indices into the kept queries; merged-away queries own no pixel."""
    winner = representative[masks.argmax(0)]
    return F.interpolate(winner[None, None].float(), size=tuple(ori_shape), mode='nearest')[0, 0].long()


def _encode(segment: Tensor, labels: Tensor, num_things_classes: int, instance_offset: int) -> Tensor:
    """Indices into ``labels`` -> mmdet's encoding (things numbered 1, 2, ... in query order)."""
    codes = labels.clone()
    is_thing = labels < num_things_classes
    codes[is_thing] += instance_offset * torch.arange(1, int(is_thing.sum()) + 1, device=labels.device)
    return codes[segment]
