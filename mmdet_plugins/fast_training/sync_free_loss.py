"""DETRHead's per-layer loss without host-device synchronisations: same values, no stalls.

``DETRHead.loss_by_feat_single`` (mmdet 3.3.0) is called once per decoder layer (and stream, in two-stream
BatchFormerV2 training) and makes the host wait for the GPU several times each call:

- the box scale factors: one ``new_tensor([w, h, w, h])`` per image, each a copy from pageable host memory
  (a sync);
- ``max(cls_avg_factor, 1)`` on a tensor (with ``sync_cls_avg_factor``), ``new_tensor([num_total_pos])`` and
  its ``.item()``;
- ``L1Loss`` and ``GIoULoss`` each test ``torch.any(weight > 0)`` on the device;
- ``CrossEntropyLoss`` copies its ``class_weight`` (a host tensor in ``DETRHead``) to the device.

:class:`SyncFreeLossMixin` computes the same quantities from what the host already knows: ``get_targets``
returns the numbers of positive and negative queries as ints, so the averaging factors are known on the host, and
whether any query is positive is ``num_total_pos > 0``. The factors of all images are copied once per call, from
pinned memory without blocking. The loss terms are the same functions with the same arguments, so the losses are
equal to the stock ones (``tests/mmdet_plugins/fast_training/test_sync_free_loss.py``). Distributed training keeps the stock
reductions (``reduce_mean`` across GPUs needs device tensors); only the factor copies and the loss tests change,
and the class-loss factor is clamped on the device (a ``(1,)`` tensor 1.0 where stock's ``max(., 1)`` gives the
int 1: same value, a ``(1,)`` instead of a 0-d loss in that corner).
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from mmdet.models.losses import GIoULoss, L1Loss, QualityFocalLoss
from mmdet.models.losses.iou_loss import giou_loss
from mmdet.models.losses.smooth_l1_loss import l1_loss
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmdet.utils import reduce_mean
from torch import Tensor

__all__ = ['SyncFreeLossMixin', 'image_scale_factors']


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def image_scale_factors(batch_img_metas: List[dict], num_queries: int, like: Tensor) -> Tensor:
    """``(B * num_queries, 4)`` rows ``(w, h, w, h)`` of each image's ``img_shape``, repeated per query, in
    ``like``'s dtype and device (``DETRHead.loss_by_feat_single``'s ``factors``), with one host-to-device copy
    that does not block the host."""
    wh = torch.tensor([[m['img_shape'][1], m['img_shape'][0]] * 2 for m in batch_img_metas], dtype=like.dtype,
                      pin_memory=like.is_cuda)
    factors = wh.to(like.device, non_blocking=True)
    return factors.repeat_interleave(num_queries, dim=0)


def box_loss(loss: torch.nn.Module, pred: Tensor, target: Tensor, weight: Tensor, avg_factor,
             any_positive: bool) -> Tensor:
    """``loss(pred, target, weight, avg_factor=avg_factor)`` for an ``L1Loss`` or ``GIoULoss`` without its
    device-side ``torch.any(weight > 0)`` test (``any_positive`` answers it); other losses are called as they
    are."""
    if any_positive and type(loss) is L1Loss:
        return loss.loss_weight * l1_loss(pred, target, weight, reduction=loss.reduction, avg_factor=avg_factor)
    if any_positive and type(loss) is GIoULoss:
        if weight is not None and weight.dim() > 1:
            assert weight.shape == pred.shape
            weight = weight.mean(-1)
        return loss.loss_weight * giou_loss(pred, target, weight, eps=loss.eps, reduction=loss.reduction,
                                            avg_factor=avg_factor)
    return loss(pred, target, weight, avg_factor=avg_factor)


class SyncFreeLossMixin:
    """Mixin for a DETR-family head (before the mmdet head in the bases): ``loss_by_feat_single`` with no
    host-device synchronisation (module docstring). Heads with a ``QualityFocalLoss`` use the stock method."""

    def loss_by_feat_single(self, cls_scores: Tensor, bbox_preds: Tensor, batch_gt_instances,
                            batch_img_metas: List[dict]) -> Tuple[Tensor, Tensor, Tensor]:
        """One decoder layer's ``(loss_cls, loss_bbox, loss_iou)``, equal to ``DETRHead``'s.

        Args:
            cls_scores: ``(B, Q, C)`` logits.
            bbox_preds: ``(B, Q, 4)`` boxes, cxcywh normalised by the image size.
            batch_gt_instances: B ``InstanceData`` (``labels``, ``bboxes`` xyxy in pixels).
            batch_img_metas: B dicts with ``img_shape``.
        """
        if isinstance(self.loss_cls, QualityFocalLoss):
            return super().loss_by_feat_single(cls_scores, bbox_preds, batch_gt_instances, batch_img_metas)
        B, Q = cls_scores.shape[:2]
        (labels_list, label_weights_list, bbox_targets_list, bbox_weights_list, num_total_pos,
         num_total_neg) = self.get_targets([cls_scores[i] for i in range(B)], [bbox_preds[i] for i in range(B)],
                                           batch_gt_instances, batch_img_metas)
        labels = torch.cat(labels_list, 0)
        label_weights = torch.cat(label_weights_list, 0)
        bbox_targets = torch.cat(bbox_targets_list, 0)
        bbox_weights = torch.cat(bbox_weights_list, 0)

        cls_scores = cls_scores.reshape(-1, self.cls_out_channels)
        cls_avg_factor = num_total_pos * 1.0 + num_total_neg * self.bg_cls_weight
        if self.sync_cls_avg_factor:
            # stock: reduce_mean(new_tensor([x])) then max(., 1): the (1,) tensor, or the int 1 when x < 1
            # (decided here on the host; x rounded to the scores' dtype could reach 1 only for x within half a
            # unit of the last place below 1, where both give the value 1)
            factor = torch.full((1, ), cls_avg_factor, dtype=cls_scores.dtype, device=cls_scores.device)
            if _distributed():
                cls_avg_factor = reduce_mean(factor).clamp(min=1)
            else:
                cls_avg_factor = factor if cls_avg_factor >= 1 else 1
        else:
            cls_avg_factor = max(cls_avg_factor, 1)
        class_weight = getattr(self.loss_cls, 'class_weight', None)
        if isinstance(class_weight, Tensor) and class_weight.device != cls_scores.device:
            self.loss_cls.class_weight = class_weight.to(cls_scores.device)  # once, not one copy per call
        loss_cls = self.loss_cls(cls_scores, labels, label_weights, avg_factor=cls_avg_factor)

        if _distributed():  # the stock mean over GPUs (a sync)
            avg_factor = torch.clamp(reduce_mean(loss_cls.new_tensor([num_total_pos])), min=1).item()
        else:  # stock: new_tensor([n]).item() in loss_cls's dtype (fp32: the fp32 label weights promote it), >= 1
            avg_factor = max(float(num_total_pos), 1.0)

        factors = image_scale_factors(batch_img_metas, Q, bbox_preds)
        bbox_preds = bbox_preds.reshape(-1, 4)
        bboxes = bbox_cxcywh_to_xyxy(bbox_preds) * factors
        bboxes_gt = bbox_cxcywh_to_xyxy(bbox_targets) * factors
        any_positive = num_total_pos > 0
        loss_iou = box_loss(self.loss_iou, bboxes, bboxes_gt, bbox_weights, avg_factor, any_positive)
        loss_bbox = box_loss(self.loss_bbox, bbox_preds, bbox_targets, bbox_weights, avg_factor, any_positive)
        return loss_cls, loss_bbox, loss_iou
