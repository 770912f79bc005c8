"""The mmdet DETR-family heads with batched matching and the sync-free loss, and the config switch to them.

``BatchedDETRHead``, ``BatchedDeformableDETRHead``, ``BatchedConditionalDETRHead``, ``BatchedDABDETRHead`` and
``BatchedDINOHead`` (``MODELS``) are mmdet 3.3.0's heads with :class:`~.batched_targets.BatchedTargetsMixin`
(batched matching) and :class:`~.sync_free_loss.SyncFreeLossMixin` (the per-layer loss without host-device
syncs): same matches, targets and loss values as the stock heads. Select them with
``model.bbox_head.type='Batched...Head'`` and ``model.train_cfg.assigner.type='BatchedHungarianAssigner'``, or
rewrite a model config with :func:`with_matching`.
"""
from __future__ import annotations

import copy
from typing import Dict, List, Tuple

import torch
from mmdet.models.dense_heads import ConditionalDETRHead, DABDETRHead, DeformableDETRHead, DETRHead, DINOHead
from mmdet.registry import MODELS
from torch import Tensor

from .batched_targets import BatchedTargetsMixin
from .sync_free_loss import SyncFreeLossMixin

__all__ = ['BATCHED_HEADS', 'STOCK_HEADS', 'with_matching', 'BatchedDETRHead', 'BatchedDeformableDETRHead',
           'BatchedConditionalDETRHead', 'BatchedDABDETRHead', 'BatchedDINOHead']


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
