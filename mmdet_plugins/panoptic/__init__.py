"""Panoptic segmentation with DETR (the paper's second table), as MMDetection 3.x plugins.

- :mod:`.transforms`: ``AddStuffInstances``, which turns each stuff class of an image's semantic map into a box
  and a mask target, since DETR detects things and stuff alike (mmdet's ``LoadPanopticAnnotations`` keeps things
  only).
- :mod:`.mask_head`: DETR's mask head (``QueryMemoryAttention``, ``SmallConvMaskHead``) and its focal and dice
  losses.
- :mod:`.fusion`: DETR's panoptic fusion into mmdet's ``pred_panoptic_seg`` encoding.
- :mod:`.detector`: ``DETRPanoptic``, mmdet's DETR with the mask head, its losses and the fusion (the
  BatchFormerV2 version, ``BFDETRPanoptic``, is in :mod:`mmdet_plugins.batchformer.detectors`).

PQ comes from mmdet's ``CocoPanopticMetric``, which needs a ``panopticapi`` module (``setup.sh`` installs
``panopticapi-lite``).
"""
from .detector import DETRPanoptic
from .fusion import detr_panoptic_fusion
from .mask_head import QueryMemoryAttention, SmallConvMaskHead, mask_dice_loss, mask_focal_loss
from .transforms import AddStuffInstances

__all__ = ['AddStuffInstances', 'DETRPanoptic', 'QueryMemoryAttention', 'SmallConvMaskHead', 'detr_panoptic_fusion',
           'mask_dice_loss', 'mask_focal_loss']
