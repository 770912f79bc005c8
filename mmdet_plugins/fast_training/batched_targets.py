"""Batched matching and targets for a DETR-family head: all decoder layers matched in one call.

:class:`BatchedTargetsMixin`: ``loss_by_feat`` matches all decoder layers (for DINO also the encoder proposals)
in one :meth:`~mmdet_plugins.fast_training.assigner.BatchedHungarianAssigner.assign_batch` call before the stock
per-layer losses run, and ``get_targets`` builds each layer's targets from those matches, vectorised over the
batch. Same targets as the stock per-image ``_get_targets_single``.

Shapes: B images, Q queries, G_i ground truths of image i, L decoder layers; boxes are ``(x1, y1, x2, y2)`` in
pixels unless said otherwise.
"""
from __future__ import annotations

import inspect
from typing import Dict, List, Tuple

import numpy as np
import torch
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh, get_box_tensor
from torch import Tensor

from .assigner import Matches, image_wh

__all__ = ['BatchedTargetsMixin']


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
            factors = bbox_preds.new_tensor(image_wh(batch_img_metas)).unsqueeze(1)  # (B, 1, 4)
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
        factors = np.repeat(np.asarray(image_wh(batch_img_metas), dtype=np.float64).reshape(-1, 4), num_gts, axis=0)
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
