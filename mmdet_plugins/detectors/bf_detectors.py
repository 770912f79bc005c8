"""The five BatchFormerV2 detectors: each is its mmdet 3.3.0 base detector plus :class:`BatchFormerMixin`.

Each takes the base detector's arguments and one more, ``batchformer=dict(insert_idx=[0], mode='two_stream',
shared=True, ...)``; see :class:`~mmdet_plugins.detectors.batchformer_mixin.BatchFormerMixin`.
"""
from mmdet.models.detectors import DABDETR, DETR, DINO, ConditionalDETR, DeformableDETR
from mmdet.registry import MODELS

from .batchformer_mixin import BatchFormerMixin


@MODELS.register_module()
class BFDETR(BatchFormerMixin, DETR):
    """DETR (Carion et al., 2020) with BatchFormerV2."""


@MODELS.register_module()
class BFDeformableDETR(BatchFormerMixin, DeformableDETR):
    """Deformable DETR (Zhu et al., 2021) with BatchFormerV2."""


@MODELS.register_module()
class BFConditionalDETR(BatchFormerMixin, ConditionalDETR):
    """Conditional DETR (Meng et al., 2021) with BatchFormerV2."""


@MODELS.register_module()
class BFDABDETR(BatchFormerMixin, DABDETR):
    """DAB-DETR (Liu et al., 2022) with BatchFormerV2."""


@MODELS.register_module()
class BFDINO(BatchFormerMixin, DINO):
    """DINO (Zhang et al., 2023) with BatchFormerV2; denoising queries are built from the repeated samples."""
