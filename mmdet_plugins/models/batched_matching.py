"""Batched Hungarian matching for the DETR family: one cost computation and one host copy per training step.

Stock mmdet 3.3.0 matches every image of every decoder layer on its own: ``DETRHead.get_targets`` ->
``_get_targets_single`` -> ``HungarianAssigner.assign`` computes three small cost matrices, copies their sum to
the host (a device sync) and runs scipy's ``linear_sum_assignment``, then builds the targets with more small
kernels: L decoder layers x B images = L*B syncs per step. Here:

- :class:`BatchedHungarianAssigner` (``TASK_UTILS``) computes the costs of N items (images, or layers x images)
  in one batched computation, ``(N, Q, G_max)`` with the ground truths padded, copies them to the host once and
  solves each item's ``(Q, G_i)`` block with scipy. The batched costs are the stock match costs' formulas with
  the same operations in the same order, so they give the same values and the same matches. Cost types without
  a batched formula fall back to the stock per-item :meth:`HungarianAssigner.assign` (with a warning).
- :class:`BatchedTargetsMixin` for the heads: ``loss_by_feat`` matches all decoder layers (for DINO also the
  encoder proposals) in one :meth:`~BatchedHungarianAssigner.assign_batch` call before the stock per-layer
  losses run, and ``get_targets`` builds each layer's targets from those matches, vectorised over the batch.
- ``BatchedDETRHead``, ``BatchedDeformableDETRHead``, ``BatchedConditionalDETRHead``, ``BatchedDABDETRHead`` and
  ``BatchedDINOHead`` (``MODELS``): the mmdet heads with the mixin, and with the per-layer loss of
  :class:`~mmdet_plugins.models.sync_free_loss.SyncFreeLossMixin` (same values, no host-device syncs). Select them with
  ``model.bbox_head.type='Batched...Head'`` and ``model.train_cfg.assigner.type='BatchedHungarianAssigner'``.

Shapes: B images, Q queries, C classification channels, G_i ground truths of image i, G = max_i G_i,
L decoder layers; boxes are ``(x1, y1, x2, y2)`` in pixels unless said otherwise.
"""
from __future__ import annotations

import copy
import inspect
import math
import warnings
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from mmdet.models.dense_heads import ConditionalDETRHead, DABDETRHead, DeformableDETRHead, DETRHead, DINOHead
from mmdet.models.task_modules.assigners import (BBoxL1Cost, ClassificationCost, FocalLossCost,
                                                 HungarianAssigner, IoUCost)
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps, bbox_xyxy_to_cxcywh, get_box_tensor
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from .sync_free_loss import SyncFreeLossMixin

__all__ = ['BATCHED_HEADS', 'STOCK_HEADS', 'with_matching', 'BatchedHungarianAssigner', 'BatchedTargetsMixin', 'BatchedDETRHead', 'BatchedDeformableDETRHead',
           'BatchedConditionalDETRHead', 'BatchedDABDETRHead', 'BatchedDINOHead']

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


def _img_wh(batch_img_metas: Sequence[dict]) -> List[List[int]]:
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


# ---------------------------------------------------------------------------------------------------------------
class BatchedTargetsMixin:
    """Mixin for a DETR-family head (put it first in the bases): batched matching and targets.

    Used when the head's assigner has ``assign_batch`` (:class:`BatchedHungarianAssigner`); with any other
    assigner every method defers to the head's own.

    - ``loss_by_feat``: before the head's own ``loss_by_feat`` runs, matches the outputs of all decoder layers
      (``(L, B, Q, *)``, see :meth:`_matching_outputs`) in one ``assign_batch`` call, copies the matched
      indices to the device once, and stashes them per layer. A layer's stash key is the storage address,
      shape and strides of its first and last image's outputs, the number of images and the identity of the
      ground-truth list: exactly what ``loss_by_feat_single`` later hands to ``get_targets`` (its
      ``cls_scores[i]`` are views of ``all_layers_cls_scores[l]``). The stash holds references to the
      outputs (so no address is reused while it lives) and is cleared when ``loss_by_feat`` returns or raises.
    - ``get_targets``: the stock outputs (per-image lists of labels, label weights, bbox targets, bbox weights;
      ``num_total_pos``, ``num_total_neg`` as ints), built from the stashed matches with a few batched
      indexing kernels; outputs with no stash entry (e.g. Deformable DETR's encoder proposals, which are
      matched to relabelled ground truths) get one fresh ``assign_batch`` call.
    """

    def _batched_assigner(self) -> bool:
        return hasattr(getattr(self, 'assigner', None), 'assign_batch')

    def loss_by_feat(self, *args, **kwargs) -> Dict[str, Tensor]:
        """The head's own ``loss_by_feat`` (same arguments), with all decoder layers matched at once."""
        if not self._batched_assigner():
            return super().loss_by_feat(*args, **kwargs)
        bound = inspect.signature(super().loss_by_feat).bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = bound.arguments
        try:
            self._stash_matches(self._matching_outputs(arguments), arguments['batch_gt_instances'],
                                arguments['batch_img_metas'])
            return super().loss_by_feat(*args, **kwargs)
        finally:
            self._match_stash = None

    def _matching_outputs(self, arguments: Dict) -> List[Tuple[Tensor, Tensor]]:
        """The ``(cls_scores (L, B, Q, C), bbox_preds (L, B, Q, 4))`` pairs, cxcywh normalised, whose per-layer
        targets ``loss_by_feat`` will ask for with ``batch_gt_instances``. ``arguments``: ``loss_by_feat``'s
        arguments by name. Default: the decoder layers' outputs."""
        return [(arguments['all_layers_cls_scores'], arguments['all_layers_bbox_preds'])]

    @staticmethod
    def _stash_key(cls_scores: Sequence[Tensor], bbox_preds: Sequence[Tensor], batch_gt_instances) -> tuple:
        """Key of one layer's outputs: ``cls_scores`` / ``bbox_preds`` are B per-image tensors (a list, or the
        layer's ``(B, Q, *)`` tensor)."""

        def where(t: Tensor) -> tuple:
            return t.data_ptr(), tuple(t.shape), t.stride(), t.dtype

        return (where(cls_scores[0]), where(cls_scores[-1]), where(bbox_preds[0]), where(bbox_preds[-1]),
                len(cls_scores), id(batch_gt_instances))

    def _stash_matches(self, outputs: List[Tuple[Tensor, Tensor]], batch_gt_instances, batch_img_metas) -> None:
        """Match all ``outputs`` (one ``assign_batch`` call per distinct output shape) and stash per layer."""
        self._match_stash = {}
        groups: Dict[tuple, List[Tuple[Tensor, Tensor]]] = {}
        for cls_scores, bbox_preds in outputs:
            if cls_scores is None or cls_scores.dim() != 4:
                continue
            key = (cls_scores.shape[1:], bbox_preds.shape[1:], cls_scores.dtype, bbox_preds.dtype)
            groups.setdefault(key, []).append((cls_scores, bbox_preds))
        for group in groups.values():
            cls_scores = torch.cat([c for c, _ in group]) if len(group) > 1 else group[0][0]
            bbox_preds = torch.cat([b for _, b in group]) if len(group) > 1 else group[0][1]
            inds, bounds = self._match_layers(cls_scores, bbox_preds, batch_gt_instances, batch_img_metas)
            layer = 0
            for cls_all, bbox_all in group:
                for cls_layer, bbox_layer in zip(cls_all, bbox_all):
                    key = self._stash_key(cls_layer, bbox_layer, batch_gt_instances)
                    start, stop = bounds[layer], bounds[layer + 1]
                    self._match_stash[key] = (inds[:, start:stop], stop - start, cls_layer, bbox_layer)
                    layer += 1

    def _match_layers(self, cls_scores: Tensor, bbox_preds: Tensor, batch_gt_instances,
                      batch_img_metas) -> Tuple[Tensor, List[int]]:
        """Match L layers' outputs in one ``assign_batch`` call.

        Args:
            cls_scores: ``(L, B, Q, C)`` logits.
            bbox_preds: ``(L, B, Q, 4)`` cxcywh, normalised by the image size.

        Returns:
            ``inds`` ``(2, M)`` long on the device: row 0 the matched query's flat index ``b * Q + q`` within
            its layer, row 1 the matched gt's index into the images' concatenated ground truths; and
            ``bounds`` (L + 1 ints): layer l's matches are ``inds[:, bounds[l]:bounds[l + 1]]``.
        """
        L, B, Q = cls_scores.shape[:3]
        with torch.no_grad():
            factors = bbox_preds.new_tensor(_img_wh(batch_img_metas)).unsqueeze(1)  # (B, 1, 4)
            pixel_bboxes = bbox_cxcywh_to_xyxy(bbox_preds) * factors
        matches = self.assigner.assign_batch(cls_scores, pixel_bboxes, batch_gt_instances, batch_img_metas)
        num_gts = [len(g) for g in batch_gt_instances]
        offsets = np.cumsum([0] + num_gts[:-1])
        query_inds = [(n % B) * Q + rows for n, (rows, _) in enumerate(matches)]
        gt_inds = [offsets[n % B] + cols for n, (_, cols) in enumerate(matches)]
        inds = np.stack([np.concatenate(query_inds), np.concatenate(gt_inds)]).astype(np.int64)
        counts = np.array([len(rows) for rows, _ in matches]).reshape(L, B).sum(1)
        bounds = [0] + np.cumsum(counts).tolist()
        device = cls_scores.device
        return torch.from_numpy(inds).to(device), bounds  # the one host-to-device copy of the matches

    def _gt_targets(self, batch_gt_instances, batch_img_metas, factor_dtype: torch.dtype
                    ) -> Tuple[Tensor, Tensor, Tensor]:
        """The B images' ground truths concatenated: labels ``(sum G_i,)``, boxes ``(sum G_i, 4)`` and their
        regression targets ``(sum G_i, 4)`` (cxcywh, divided by the image's ``(w, h, w, h)`` in
        ``factor_dtype``, the predictions' dtype, as ``_get_targets_single``). Inside ``loss_by_feat`` they are
        computed once for all layers."""
        stash = getattr(self, '_match_stash', None)
        key = ('gt', id(batch_gt_instances), factor_dtype)
        if stash is not None and key in stash:
            return stash[key][1:]
        gt_labels = torch.cat([g.labels for g in batch_gt_instances])
        gt_bboxes = torch.cat([get_box_tensor(g.bboxes) for g in batch_gt_instances])
        num_gts = [len(g) for g in batch_gt_instances]
        factors = np.repeat(np.asarray(_img_wh(batch_img_metas), dtype=np.float64).reshape(-1, 4), num_gts, axis=0)
        factors = gt_bboxes.new_tensor(factors, dtype=factor_dtype)
        gt_targets = bbox_xyxy_to_cxcywh(gt_bboxes / factors)
        if stash is not None:
            stash[key] = (batch_gt_instances, gt_labels, gt_bboxes, gt_targets)
        return gt_labels, gt_bboxes, gt_targets

    def get_targets(self, cls_scores_list: List[Tensor], bbox_preds_list: List[Tensor], batch_gt_instances,
                    batch_img_metas: List[dict]) -> tuple:
        """As ``DETRHead.get_targets`` (same arguments, same outputs), from batched matching.

        Args:
            cls_scores_list: B ``(Q, C)`` logits of one decoder layer.
            bbox_preds_list: B ``(Q, 4)`` boxes, cxcywh normalised by the image size.
            batch_gt_instances: B ``InstanceData`` with ``labels`` and ``bboxes`` (xyxy, pixels).
            batch_img_metas: B dicts with ``img_shape``.

        Returns:
            ``(labels_list, label_weights_list, bbox_targets_list, bbox_weights_list, num_total_pos,
            num_total_neg)``: B tensors each of ``(Q,)`` long (``num_classes`` for background), ``(Q,)``,
            ``(Q, 4)`` cxcywh normalised (zero for background), ``(Q, 4)`` (one on matched rows), the last
            three in the ground truths' dtype; and two ints.
        """
        if not self._batched_assigner():
            return super().get_targets(cls_scores_list, bbox_preds_list, batch_gt_instances, batch_img_metas)
        B, Q = len(cls_scores_list), cls_scores_list[0].size(0)
        stash = getattr(self, '_match_stash', None)
        entry = None if stash is None else stash.get(
            self._stash_key(cls_scores_list, bbox_preds_list, batch_gt_instances))
        if entry is not None:
            inds, num_pos = entry[:2]
        else:
            inds, bounds = self._match_layers(torch.stack(cls_scores_list)[None], torch.stack(bbox_preds_list)[None],
                                              batch_gt_instances, batch_img_metas)
            num_pos = bounds[1]
        query_inds, gt_inds = inds
        gt_labels, gt_bboxes, gt_targets = self._gt_targets(batch_gt_instances, batch_img_metas,
                                                            bbox_preds_list[0].dtype)

        labels = gt_labels.new_full((B * Q, ), self.num_classes, dtype=torch.long)
        labels[query_inds] = gt_labels[gt_inds].long()
        label_weights = gt_bboxes.new_ones(B * Q)
        bbox_targets = gt_bboxes.new_zeros(B * Q, 4)
        bbox_targets[query_inds] = gt_targets[gt_inds].to(gt_bboxes.dtype)
        bbox_weights = gt_bboxes.new_zeros(B * Q, 4)
        bbox_weights.index_fill_(0, query_inds, 1.0)  # (not ``[query_inds] = 1.0``: a blocking host copy)

        def per_image(t: Tensor) -> List[Tensor]:
            return list(t.view(B, Q, *t.shape[1:]).unbind(0))

        return (per_image(labels), per_image(label_weights), per_image(bbox_targets), per_image(bbox_weights),
                num_pos, B * Q - num_pos)


# ---------------------------------------------------------------------------------------------------------------
# DETRHead's default loss_cls, spelled out: DETRHead.__init__ updates its (mutable) default in place.
_DETR_LOSS_CLS = dict(type='CrossEntropyLoss', bg_cls_weight=0.1, use_sigmoid=False, loss_weight=1.0, class_weight=1.0)


@MODELS.register_module()
class BatchedDETRHead(BatchedTargetsMixin, SyncFreeLossMixin, DETRHead):
    """:class:`DETRHead` with batched matching (:class:`BatchedTargetsMixin`).

    ``DETRHead.__init__`` turns a scalar ``loss_cls.class_weight`` / ``bg_cls_weight`` into the per-class weight
    vector (background last) only when the class is exactly ``DETRHead``; this subclass does the same itself,
    so that its loss equals the stock head's.
    """

    def __init__(self, num_classes: int, *args, loss_cls=_DETR_LOSS_CLS, **kwargs) -> None:
        loss_cls = copy.deepcopy(loss_cls)
        class_weight = loss_cls.get('class_weight', None)
        bg_cls_weight = 0
        if class_weight is not None:
            bg_cls_weight = loss_cls.get('bg_cls_weight', class_weight)
            assert isinstance(class_weight, float) and isinstance(bg_cls_weight, float), \
                f'Expected float class_weight and bg_cls_weight, got {class_weight!r}, {bg_cls_weight!r}.'
            weights = torch.ones(num_classes + 1) * class_weight
            weights[num_classes] = bg_cls_weight  # background class last, as DETRHead
            loss_cls.update(class_weight=weights)
            loss_cls.pop('bg_cls_weight', None)
        super().__init__(num_classes, *args, loss_cls=loss_cls, **kwargs)
        self.bg_cls_weight = bg_cls_weight


@MODELS.register_module()
class BatchedDeformableDETRHead(BatchedTargetsMixin, SyncFreeLossMixin, DeformableDETRHead):
    """:class:`DeformableDETRHead` with batched matching; two-stage encoder proposals (relabelled ground
    truths, another query count) are matched by a separate ``assign_batch`` call."""


@MODELS.register_module()
class BatchedConditionalDETRHead(BatchedTargetsMixin, SyncFreeLossMixin, ConditionalDETRHead):
    """:class:`ConditionalDETRHead` with batched matching."""


@MODELS.register_module()
class BatchedDABDETRHead(BatchedTargetsMixin, SyncFreeLossMixin, DABDETRHead):
    """:class:`DABDETRHead` with batched matching."""


@MODELS.register_module()
class BatchedDINOHead(BatchedTargetsMixin, SyncFreeLossMixin, DINOHead):
    """:class:`DINOHead` with batched matching: the matching queries of all decoder layers and the encoder's
    top-k proposals (same ground truths, same query count) in one ``assign_batch`` call. The denoising targets
    (``get_dn_targets``) are the stock ones."""

    def _matching_outputs(self, arguments: Dict) -> List[Tuple[Tensor, Tensor]]:
        cls_scores, bbox_preds, _, _ = self.split_outputs(arguments['all_layers_cls_scores'],
                                                          arguments['all_layers_bbox_preds'], arguments['dn_meta'])
        outputs = [(cls_scores, bbox_preds)]
        if arguments['enc_cls_scores'] is not None:
            outputs.append((arguments['enc_cls_scores'][None], arguments['enc_bbox_preds'][None]))
        return outputs


# mmdet head type -> the same head with batched matching and the sync-free loss (and back)
BATCHED_HEADS = {'DETRHead': 'BatchedDETRHead', 'DeformableDETRHead': 'BatchedDeformableDETRHead',
                 'ConditionalDETRHead': 'BatchedConditionalDETRHead', 'DABDETRHead': 'BatchedDABDETRHead',
                 'DINOHead': 'BatchedDINOHead'}
STOCK_HEADS = {batched: stock for stock, batched in BATCHED_HEADS.items()}


def with_matching(model_cfg, batched: bool):
    """A copy of a DETR-family model config with mmdet's own head and ``HungarianAssigner`` (``batched=False``)
    or the ``Batched*Head`` and ``BatchedHungarianAssigner`` (``batched=True``), whichever the config names now."""
    cfg = copy.deepcopy(model_cfg)
    head = STOCK_HEADS.get(cfg.bbox_head.type, cfg.bbox_head.type)
    if head not in BATCHED_HEADS:
        raise ValueError(f'no batched head for {cfg.bbox_head.type!r} (known: {sorted(BATCHED_HEADS)})')
    cfg.bbox_head.type = BATCHED_HEADS[head] if batched else head
    cfg.train_cfg.assigner.type = 'BatchedHungarianAssigner' if batched else 'HungarianAssigner'
    return cfg
