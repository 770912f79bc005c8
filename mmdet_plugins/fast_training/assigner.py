"""Batched Hungarian matching for the DETR family: one cost computation and one host copy for many items.

Stock mmdet 3.3.0 matches every image of every decoder layer on its own: ``HungarianAssigner.assign`` computes
three small cost matrices, copies their sum to the host (a device sync) and runs scipy's
``linear_sum_assignment``: L decoder layers x B images = L*B syncs per step. :class:`BatchedHungarianAssigner`
(``TASK_UTILS``) computes the costs of N items (images, or layers x images) in one batched computation,
``(N, Q, G_max)`` with the ground truths padded, copies them to the host once and solves each item's
``(Q, G_i)`` block with scipy. The batched costs are the stock match costs' formulas with the same operations in
the same order, so they give the same values and the same matches. Cost types without a batched formula fall back
to the stock per-item :meth:`HungarianAssigner.assign` (with a warning).

Shapes: N items, Q queries, C classification channels, G_i ground truths of item i, G = max_i G_i; boxes are
``(x1, y1, x2, y2)`` in pixels unless said otherwise.
"""
from __future__ import annotations

import math
import warnings
from typing import List, Sequence, Tuple

import numpy as np
import torch
from mmdet.models.task_modules.assigners import (BBoxL1Cost, ClassificationCost, FocalLossCost,
                                                 HungarianAssigner, IoUCost)
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox_overlaps, bbox_xyxy_to_cxcywh, get_box_tensor
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment
from torch import Tensor

__all__ = ['BatchedHungarianAssigner', 'Matches', 'image_wh']

# One item's matching, as scipy returns it: (query indices, gt indices), int64, sorted by query index.
Matches = List[Tuple[np.ndarray, np.ndarray]]


# ---------------------------------------------------------------------------------------------------------------
# Batched match costs. Each takes (and returns) a batch of N items:
#   scores (N, Q, C) logits, pred_bboxes (N, Q, 4), gt_index (N, Q, G) the gt labels expanded over the queries,
#   gt_bboxes (N, G, 4), img_wh (N, 4) rows (w, h, w, h) on the host -> cost (N, Q, G).
# Each repeats the stock __call__ of mmdet/models/task_modules/assigners/match_cost.py operation by operation.

def _classification_cost(cost: ClassificationCost, scores: Tensor, gt_index: Tensor, **_) -> Tensor:
    probs = scores.softmax(-1)
    cls_cost = -probs.gather(-1, gt_index)
    return cls_cost * cost.weight


def _focal_loss_cost(cost: FocalLossCost, scores: Tensor, gt_index: Tensor, **_) -> Tensor:
    cls_pred = scores.sigmoid()
    neg_cost = -(1 - cls_pred + cost.eps).log() * (1 - cost.alpha) * cls_pred.pow(cost.gamma)
    pos_cost = -(cls_pred + cost.eps).log() * cost.alpha * (1 - cls_pred).pow(cost.gamma)
    cls_cost = pos_cost.gather(-1, gt_index) - neg_cost.gather(-1, gt_index)
    return cls_cost * cost.weight


def _bbox_l1_cost(cost: BBoxL1Cost, pred_bboxes: Tensor, gt_bboxes: Tensor, img_wh: Sequence, **_) -> Tensor:
    if cost.box_format == 'xywh':
        gt_bboxes = bbox_xyxy_to_cxcywh(gt_bboxes)
        pred_bboxes = bbox_xyxy_to_cxcywh(pred_bboxes)
    factor = gt_bboxes.new_tensor(img_wh).unsqueeze(1)  # (N, 1, 4), per-item image size
    bbox_cost = torch.cdist(pred_bboxes / factor, gt_bboxes / factor, p=1)
    return bbox_cost * cost.weight


def _iou_cost(cost: IoUCost, pred_bboxes: Tensor, gt_bboxes: Tensor, **_) -> Tensor:
    fp16 = pred_bboxes.dtype == torch.float16
    if fp16:  # as the stock cost: avoid fp16 overflow
        pred_bboxes = pred_bboxes.to(torch.float32)
    overlaps = bbox_overlaps(pred_bboxes, gt_bboxes, mode=cost.iou_mode, is_aligned=False)
    if fp16:
        overlaps = overlaps.to(torch.float16)
    return -overlaps * cost.weight


def _batched_cost_fn(match_cost):
    """The batched formula of a stock match cost, or None. Exact types only: a subclass may compute another
    cost (e.g. ``BinaryFocalLossCost`` is a ``FocalLossCost``)."""
    kind = type(match_cost)
    if kind is ClassificationCost:
        return _classification_cost
    if kind is FocalLossCost and not match_cost.binary_input:
        return _focal_loss_cost
    if kind is BBoxL1Cost:
        return _bbox_l1_cost
    if kind is IoUCost:
        return _iou_cost
    return None


def _empty_match() -> Tuple[np.ndarray, np.ndarray]:
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)


def image_wh(batch_img_metas: Sequence[dict]) -> List[List[int]]:
    """Per image ``[w, h, w, h]`` from ``img_shape`` ``(h, w)``."""
    return [[m['img_shape'][1], m['img_shape'][0]] * 2 for m in batch_img_metas]


@TASK_UTILS.register_module()
class BatchedHungarianAssigner(HungarianAssigner):
    """:class:`HungarianAssigner` that can also match many items at once (:meth:`assign_batch`).

    ``assign`` is the inherited stock per-item method, so this is a drop-in replacement anywhere. Batched
    formulas exist for ``ClassificationCost``, ``FocalLossCost`` (``binary_input=False``), ``BBoxL1Cost``
    (``xyxy`` and ``xywh``) and ``IoUCost`` (any ``bbox_overlaps`` mode); with any other cost type in
    ``match_costs`` :meth:`assign_batch` warns once and runs the stock ``assign`` item by item.

    Args:
        match_costs (dict or list[dict]): match cost configs, as :class:`HungarianAssigner`.
    """

    def __init__(self, match_costs) -> None:
        super().__init__(match_costs)
        self.unsupported_costs = [type(c).__name__ for c in self.match_costs if _batched_cost_fn(c) is None]
        self._warned_fallback = False

    @property
    def batched(self) -> bool:
        """True when every match cost has a batched formula (else :meth:`assign_batch` runs per item)."""
        return not self.unsupported_costs

    @staticmethod
    def pad_gts(batch_gt_instances: Sequence[InstanceData]) -> Tuple[Tensor, Tensor]:
        """The ground truths of B images padded to G = max G_i.

        Returns:
            ``labels`` ``(B, G)`` long (0 at padding) and ``bboxes`` ``(B, G, 4)`` (box ``(0, 0, 1, 1)`` at
            padding, so that padded columns stay finite; they are never read).
        """
        num_gts = [len(g) for g in batch_gt_instances]
        B, G = len(num_gts), max(num_gts, default=0)
        labels = torch.cat([g.labels for g in batch_gt_instances]).long()
        bboxes = torch.cat([get_box_tensor(g.bboxes) for g in batch_gt_instances])
        if all(n == G for n in num_gts):
            return labels.view(B, G), bboxes.view(B, G, 4)
        slots = np.concatenate([b * G + np.arange(n, dtype=np.int64) for b, n in enumerate(num_gts)])
        slots = torch.from_numpy(slots).to(labels.device)
        padded_labels = labels.new_zeros(B * G)
        padded_labels[slots] = labels
        padded_bboxes = bboxes.new_zeros(B * G, 4)
        padded_bboxes[:, 2:] = 1
        padded_bboxes[slots] = bboxes
        return padded_labels.view(B, G), padded_bboxes.view(B, G, 4)

    def batch_cost(self, cls_scores: Tensor, bbox_preds: Tensor, gt_labels: Tensor, gt_bboxes: Tensor,
                   img_shapes: Sequence[Tuple[int, int]]) -> Tensor:
        """Weighted total match cost of N items in one batched computation (no host copy).

        Args:
            cls_scores: ``(N, Q, C)`` classification logits.
            bbox_preds: ``(N, Q, 4)`` predicted boxes, xyxy in pixels (as ``_get_targets_single`` makes them).
            gt_labels: ``(N, G)`` long, padded (see :meth:`pad_gts`).
            gt_bboxes: ``(N, G, 4)`` xyxy in pixels, padded.
            img_shapes: N ``(h, w)``, per item.

        Returns:
            ``(N, Q, G)``: ``[n, :, :G_n]`` is the cost matrix the stock ``assign`` builds for item n; the
            padded columns are meaningless.
        """
        if not self.batched:
            raise NotImplementedError(f'{type(self).__name__}: no batched formula for {self.unsupported_costs}')
        N, Q = cls_scores.shape[:2]
        G = gt_labels.size(1)
        gt_index = gt_labels.unsqueeze(1).expand(N, Q, G)
        img_wh = [[w, h, w, h] for h, w in img_shapes]
        cost_list = [
            _batched_cost_fn(c)(c, scores=cls_scores, gt_index=gt_index, pred_bboxes=bbox_preds,
                                gt_bboxes=gt_bboxes, img_wh=img_wh) for c in self.match_costs
        ]
        return torch.stack(cost_list).sum(dim=0)

    def assign_batch(self, cls_scores: Tensor, bbox_preds: Tensor, batch_gt_instances: Sequence[InstanceData],
                     batch_img_metas: Sequence[dict]) -> Matches:
        """Hungarian matching of many items with one cost computation and one device-to-host copy.

        Args:
            cls_scores: ``(*, B, Q, C)`` classification logits; the leading dims (e.g. L decoder layers) share
                the B images' ground truths.
            bbox_preds: ``(*, B, Q, 4)`` predicted boxes, xyxy in pixels.
            batch_gt_instances: B ``InstanceData`` with ``labels`` ``(G_i,)`` and ``bboxes`` ``(G_i, 4)``.
            batch_img_metas: B dicts with ``img_shape`` ``(h, w)``.

        Returns:
            One ``(query_inds, gt_inds)`` pair of int64 arrays per item, items in the order of
            ``cls_scores.flatten(0, -3)`` (item ``n`` is image ``n % B``): the stock ``assign``'s matching
            (``assigned_gt_inds[query_inds] == gt_inds + 1``, every other query background). An item with no
            ground truth or no query has no match.
        """
        B = len(batch_gt_instances)
        Q, C = cls_scores.shape[-2:]
        N = math.prod(cls_scores.shape[:-2])
        assert cls_scores.size(-3) == B and bbox_preds.shape[:-1] == cls_scores.shape[:-1], \
            f'cls_scores {tuple(cls_scores.shape)}, bbox_preds {tuple(bbox_preds.shape)}, {B} images'
        cls_scores = cls_scores.reshape(N, Q, C)
        bbox_preds = bbox_preds.reshape(N, Q, 4)
        if not self.batched:
            return self._assign_per_item(cls_scores, bbox_preds, batch_gt_instances, batch_img_metas)

        num_gts = [len(g) for g in batch_gt_instances]
        if Q == 0 or max(num_gts, default=0) == 0:
            return [_empty_match() for _ in range(N)]
        gt_labels, gt_bboxes = self.pad_gts(batch_gt_instances)
        repeats = N // B
        img_shapes = [m['img_shape'] for m in batch_img_metas] * repeats
        with torch.no_grad():
            cost = self.batch_cost(cls_scores, bbox_preds, gt_labels.repeat(repeats, 1),
                                   gt_bboxes.repeat(repeats, 1, 1), img_shapes)
        cost = cost.cpu()  # the one host copy (a device sync)
        if cost.dtype in (torch.float16, torch.bfloat16):
            cost = cost.float()  # exact; numpy has no bfloat16, and scipy solves in float64 anyway
        cost = cost.numpy()
        matches = []
        for n in range(N):
            g = num_gts[n % B]
            if g == 0:
                matches.append(_empty_match())
                continue
            rows, cols = linear_sum_assignment(cost[n, :, :g])
            matches.append((rows.astype(np.int64), cols.astype(np.int64)))
        return matches

    def _assign_per_item(self, cls_scores: Tensor, bbox_preds: Tensor, batch_gt_instances, batch_img_metas
                         ) -> Matches:
        """Fallback: the stock ``assign`` per item (one host copy each), for costs without batched formula."""
        if not self._warned_fallback:
            warnings.warn(f'{type(self).__name__}: no batched formula for {self.unsupported_costs}; matching '
                          'item by item with the stock HungarianAssigner.assign (correct, slower).')
            self._warned_fallback = True
        B = len(batch_gt_instances)
        matches = []
        for n in range(cls_scores.size(0)):
            pred_instances = InstanceData(scores=cls_scores[n], bboxes=bbox_preds[n])
            result = self.assign(pred_instances, batch_gt_instances[n % B], img_meta=batch_img_metas[n % B])
            gt_inds = result.gt_inds.cpu().numpy()
            rows = np.flatnonzero(gt_inds > 0).astype(np.int64)
            matches.append((rows, (gt_inds[rows] - 1).astype(np.int64)))
        return matches
