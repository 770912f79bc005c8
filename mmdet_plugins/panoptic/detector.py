"""``DETRPanoptic``: mmdet's ``DETR`` with DETR's mask head, for panoptic segmentation (DETR's ``DETRsegm``).

The box model is mmdet's DETR, unchanged, trained on things and stuff alike (stage 1). This class adds, on the last
decoder layer's queries:

- :class:`~.mask_head.QueryMemoryAttention`: the attention maps of each query over the encoder memory;
- :class:`~.mask_head.SmallConvMaskHead`: a small FPN over ``cat(neck(C5), maps)`` and the backbone's C4, C3, C2,
  giving one mask logit map per query at stride 4 of the padded input;
- the mask losses (sigmoid focal and dice with DETR's normalisation) on the queries that the head's Hungarian
  assigner matches to the ground truth; training runs the mask head on those queries alone (DETR runs it on all
  and takes theirs: the same losses and gradients; the head's step is 6.3x faster at the mini shapes on the CPU);
- DETR's panoptic fusion (:func:`~.fusion.detr_panoptic_fusion`) into ``pred_panoptic_seg`` at the original size,
  which mmdet's ``CocoPanopticMetric`` and ``DetLocalVisualizer`` read as they read MaskFormer's.

Stage 2 (``freeze_detector=True``): everything but the two mask modules is frozen at construction, before the model
is wrapped for data-parallel training; the model stays in train mode, so the detector's dropout stays on, as in
DETR's stage 2.

The backbone must return C2..C5 (``out_indices=(0, 1, 2, 3)``); the neck sees C5 only, so the transformer's input
is DETR's. With BatchFormerV2 (``BFDETRPanoptic``), a two-stream training pass gives the decoder and the memory 2B
images while the backbone ran on B: the mask head then reuses the plain stream's C2-C4 and projected C5 for the
second stream, as the official BatchFormerV2 code does.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.detectors import DETR
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmdet.utils import reduce_mean
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

from .fusion import detr_panoptic_fusion
from .mask_head import QueryMemoryAttention, SmallConvMaskHead, mask_dice_loss, mask_focal_loss

__all__ = ['DETRPanoptic']

MASK_MODULES = ('mask_attention', 'mask_head')


@MODELS.register_module()
class DETRPanoptic(DETR):
    """DETR with DETR's panoptic mask head (module docstring).

    Args:
        num_things_classes (int): T; the head's classes are the T thing classes, then the stuff classes.
        mask_head (dict): ``num_heads`` (M, DETR: 8) and ``fpn_dims`` (channels of C4, C3, C2; ResNet-50:
            ``(1024, 512, 256)``).
        loss_mask_focal (float): weight of the focal mask loss (DETR: 1).
        loss_mask_dice (float): weight of the dice mask loss (DETR: 1).
        fusion (dict): keyword arguments of :func:`~.fusion.detr_panoptic_fusion` (``threshold`` 0.85,
            ``min_area`` 4).
        freeze_detector (bool): train the mask modules only (stage 2).
        *args, **kwargs: mmdet's ``DETR``.
    """

    def __init__(self, *args, num_things_classes: int, mask_head: dict = None, loss_mask_focal: float = 1.0,
                 loss_mask_dice: float = 1.0, fusion: dict = None, freeze_detector: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        num_classes = self.bbox_head.num_classes
        if not 0 < num_things_classes <= num_classes:
            raise ValueError(f'DETRPanoptic: num_things_classes must be in 1..{num_classes} (the head\'s '
                             f'num_classes, things then stuff), got {num_things_classes}')
        self.num_things_classes = num_things_classes
        cfg = dict(num_heads=8, fpn_dims=(1024, 512, 256))
        cfg.update(mask_head or {})
        dims = self.embed_dims
        self.mask_attention = QueryMemoryAttention(dims, dims, cfg['num_heads'])
        self.mask_head = SmallConvMaskHead(dims, cfg['num_heads'], cfg['fpn_dims'])
        self.loss_mask_focal = loss_mask_focal
        self.loss_mask_dice = loss_mask_dice
        self.fusion_cfg = dict(fusion or {})
        self.freeze_detector = freeze_detector
        self.apply_freeze()

    def apply_freeze(self) -> None:
        """With ``freeze_detector``, stop gradients to every parameter outside the mask modules (a subclass that
        builds modules after this constructor, as the BatchFormerV2 mixin does, calls it again)."""
        if not self.freeze_detector:
            return
        for name, param in self.named_parameters():
            param.requires_grad_(name.split('.', 1)[0] in MASK_MODULES)

    # ------------------------------------------------------------------------------------------------ features
    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        """(C2, C3, C4, neck(C5)): the backbone's four levels, C5 projected by the neck (DETR's ``input_proj``).
        ``pre_transformer`` reads the last entry only."""
        feats = self.backbone(batch_inputs)
        if len(feats) != 4:
            raise ValueError(f'DETRPanoptic needs the backbone\'s four levels C2..C5 (out_indices=(0, 1, 2, 3)), '
                             f'got {len(feats)}')
        projected = self.neck(feats[-1:])[0] if self.with_neck else feats[-1]
        return (*feats[:3], projected)

    def forward_panoptic(self, img_feats: Sequence[Tensor], batch_data_samples) -> Tuple[Dict, Dict]:
        """The transformer as ``forward_transformer`` (the same hooks), also returning what the mask head reads.

        Returns:
            ``head_inputs`` for the box head (``hidden_states`` (L, B', Q, C)) and ``mask_inputs``: ``memory``
            (B', C, h, w), ``padding_mask`` (B', h, w) or None. B' = B, or 2B in a two-stream pass.
        """
        encoder_inputs, decoder_inputs = self.pre_transformer(img_feats, batch_data_samples)
        encoder_outputs = self.forward_encoder(**encoder_inputs)
        decoder_extra, head_inputs = self.pre_decoder(**encoder_outputs)
        decoder_inputs.update(decoder_extra)
        head_inputs.update(self.forward_decoder(**decoder_inputs))
        memory = encoder_outputs['memory']                                   # (B', hw, C)
        b, _, c = memory.shape
        h, w = img_feats[-1].shape[-2:]
        mask = decoder_inputs.get('memory_mask')
        mask_inputs = dict(memory=memory.transpose(1, 2).reshape(b, c, h, w),
                           padding_mask=None if mask is None else mask.view(b, h, w).bool())
        return head_inputs, mask_inputs

    def predict_masks(self, query: Tensor, memory: Tensor, padding_mask, img_feats: Sequence[Tensor]) -> Tensor:
        """Mask logits (B', Q, H/4, W/4) of the queries ``query`` (B', Q, C); ``memory`` (B', C, h, w),
        ``padding_mask`` (B', h, w) or None, ``img_feats`` (C2, C3, C4, neck(C5)) at B. When B' = 2B (two-stream)
        the second stream's queries read the plain stream's image features (``feature_image``)."""
        b = query.size(0)
        image_idx = self.feature_image(torch.arange(b, device=query.device), b, img_feats[-1].size(0))
        attention = self.mask_attention(query, memory, padding_mask)        # (B', Q, M, h, w)
        return self.mask_head(img_feats[-1], attention, img_feats[2::-1], image_index=image_idx)  # C4, C3, C2

    # ------------------------------------------------------------------------------------------------ training
    def loss(self, batch_inputs: Tensor, batch_data_samples) -> Dict[str, Tensor]:
        """The box head's losses and the mask losses of the last decoder layer's matched queries. The mask head runs
        on those queries alone: the others' masks get no loss, and each query's mask depends on its own attention
        maps and its image only (the losses and gradients are those of running it on every query)."""
        img_feats = self.extract_feat(batch_inputs)
        head_inputs, mask_inputs = self.forward_panoptic(img_feats, batch_data_samples)
        losses = self.bbox_head.loss(**head_inputs, batch_data_samples=batch_data_samples)
        query = head_inputs['hidden_states'][-1]                             # (B', Q, C)
        cls_scores, bbox_preds = self.bbox_head(query[None])                 # (1, B', Q, K+1), (1, B', Q, 4)
        image_idx, query_idx, target = self.match_masks(cls_scores[0], bbox_preds[0], batch_data_samples)
        num_masks = reduce_mean(query.new_tensor(float(len(image_idx)))).clamp(min=1).item()
        keep = query.new_ones(()) if len(image_idx) else query.new_zeros(())
        if not len(image_idx):  # no ground truth in the batch: one query's mask, weighted 0 (keeps the graph)
            image_idx = query_idx = torch.zeros(1, dtype=torch.long, device=query.device)
            target = query.new_zeros((1, *batch_data_samples[0].metainfo['batch_input_shape']))
        attention = self.mask_attention(query, mask_inputs['memory'], mask_inputs['padding_mask'])  # (B', Q, M, h, w)
        logits = self.mask_head(img_feats[-1], attention[image_idx, query_idx], img_feats[2::-1],
                                image_index=self.feature_image(image_idx, query.size(0), img_feats[-1].size(0)))
        pred = F.interpolate(logits[None], size=target.shape[-2:], mode='bilinear', align_corners=False)[0]
        pred, target = pred.flatten(1).float(), target.flatten(1).float()
        losses['loss_mask_focal'] = keep * self.loss_mask_focal * mask_focal_loss(pred, target, num_masks)
        losses['loss_mask_dice'] = keep * self.loss_mask_dice * mask_dice_loss(pred, target, num_masks)
        return losses

    @staticmethod
    def feature_image(image_idx: Tensor, num_streams_images: int, num_images: int) -> Tensor:
        """The backbone image of each of the B' decoder images ``image_idx``: itself, or in a two-stream pass
        (B' = 2B) the plain stream's image, whose features the second stream reuses."""
        if num_streams_images not in (num_images, 2 * num_images):
            raise ValueError(f'DETRPanoptic: {num_streams_images} query sets for {num_images} images')
        return image_idx % num_images

    @torch.no_grad()
    def _assign(self, cls_score: Tensor, bbox_pred: Tensor, gt_instances: InstanceData, img_meta: dict):
        """(query indices, gt indices) of the head's Hungarian matching for one image (as ``DETRHead``)."""
        img_h, img_w = img_meta['img_shape']
        factor = bbox_pred.new_tensor([img_w, img_h, img_w, img_h])
        pred = InstanceData(scores=cls_score, bboxes=bbox_cxcywh_to_xyxy(bbox_pred) * factor)
        result = self.bbox_head.assigner.assign(pred_instances=pred, gt_instances=gt_instances, img_meta=img_meta)
        query_idx = torch.nonzero(result.gt_inds > 0, as_tuple=False).squeeze(-1)
        return query_idx, result.gt_inds[query_idx] - 1

    @torch.no_grad()
    def _assign_batch(self, cls_scores: Tensor, bbox_preds: Tensor, batch_data_samples):
        """The matches of every image at once, (query indices, gt indices) per image, when the head's assigner
        matches batches (``BatchedHungarianAssigner``: the stock matching, one host copy); else None."""
        assigner = self.bbox_head.assigner
        if not getattr(assigner, 'batched', False):
            return None
        shapes = [s.metainfo['img_shape'] for s in batch_data_samples]
        factors = cls_scores.new_tensor([[w, h, w, h] for h, w in shapes], dtype=torch.float32)
        boxes = bbox_cxcywh_to_xyxy(bbox_preds.float()) * factors[:, None]       # (B', Q, 4) xyxy in pixels
        return assigner.assign_batch(cls_scores.float(), boxes, [s.gt_instances for s in batch_data_samples],
                                     [s.metainfo for s in batch_data_samples])

    def match_masks(self, cls_scores: Tensor, bbox_preds: Tensor, batch_data_samples) -> Tuple[Tensor, Tensor, Tensor]:
        """The matched queries and their target masks, over the batch.

        cls_scores (B', Q, K+1), bbox_preds (B', Q, 4) normalised cxcywh; B' data samples.
        Returns image indices (N,), query indices (N,) and the {0, 1} targets (N, Hp, Wp) at the padded input size.
        """
        images, queries, targets = [], [], []
        matches = self._assign_batch(cls_scores, bbox_preds, batch_data_samples)
        for i, sample in enumerate(batch_data_samples):
            gt = sample.gt_instances
            if len(gt) == 0:
                continue
            hp, wp = sample.metainfo['batch_input_shape']
            if matches is not None:
                query_idx, gt_idx = (torch.as_tensor(m, device=cls_scores.device) for m in matches[i])
            else:
                query_idx, gt_idx = self._assign(cls_scores[i].float(), bbox_preds[i].float(), gt, sample.metainfo)
            masks = gt.masks.to_tensor(dtype=cls_scores.dtype, device=cls_scores.device)[gt_idx]
            targets.append(F.pad(masks, (0, wp - masks.shape[-1], 0, hp - masks.shape[-2])))  # (no-op when padded)
            queries.append(query_idx)
            images.append(torch.full_like(query_idx, i))
        if not targets:
            empty = torch.zeros(0, dtype=torch.long, device=cls_scores.device)
            return empty, empty, cls_scores.new_zeros((0, 1, 1))
        return torch.cat(images), torch.cat(queries), torch.cat(targets)

    # ------------------------------------------------------------------------------------------------ inference
    def predict(self, batch_inputs: Tensor, batch_data_samples, rescale: bool = True) -> List:
        """Boxes (``pred_instances``, the box head's) and the fused panoptic map (``pred_panoptic_seg``:
        ``sem_seg`` (1, H0, W0) in mmdet's encoding at the original size, or at the resized image's size without
        ``rescale``)."""
        img_feats = self.extract_feat(batch_inputs)
        head_inputs, mask_inputs = self.forward_panoptic(img_feats, batch_data_samples)
        results = self.bbox_head.predict(**head_inputs, rescale=rescale, batch_data_samples=batch_data_samples)
        batch_data_samples = self.add_pred_to_datasample(batch_data_samples, results)
        query = head_inputs['hidden_states'][-1]
        cls_scores = self.bbox_head(query[None])[0][0]                                 # (B, Q, K+1)
        mask_logits = self.predict_masks(query, mask_inputs['memory'], mask_inputs['padding_mask'], img_feats)
        for i, sample in enumerate(batch_data_samples):
            meta = sample.metainfo
            out_shape = meta['ori_shape'] if rescale else meta['img_shape']
            panoptic = detr_panoptic_fusion(cls_scores[i].float(), mask_logits[i].float(), self.num_things_classes,
                                            meta['batch_input_shape'], meta['img_shape'], out_shape,
                                            **self.fusion_cfg)
            sample.pred_panoptic_seg = PixelData(sem_seg=panoptic[None])
        return batch_data_samples
