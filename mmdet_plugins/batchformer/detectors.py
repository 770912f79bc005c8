"""The BatchFormerV2 detectors: each is its base detector (mmdet 3.3.0's, or this package's ``SMCADETR`` and
``DETRPanoptic``) plus :class:`BatchFormerMixin`.

Each takes the base detector's arguments and one more, ``batchformer=dict(insert_idx=[0], mode='two_stream',
shared=True, ...)``; see :class:`~mmdet_plugins.batchformer.mixin.BatchFormerMixin`.
"""
from mmdet.models.detectors import DABDETR, DETR, DINO, ConditionalDETR, DeformableDETR
from mmdet.registry import MODELS
from torch import nn

from .layer import repeat_batch
from .mixin import BatchFormerMixin
from ..panoptic.detector import DETRPanoptic
from ..smca_detr.detector import SMCADETR


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
class BFSMCADETR(BatchFormerMixin, SMCADETR):
    """Single-scale SMCA-DETR (Gao et al., 2021) with BatchFormerV2."""


@MODELS.register_module()
class BFDETRPanoptic(BatchFormerMixin, DETRPanoptic):
    """DETR panoptic with BatchFormerV2. In a two-stream pass the mask head runs on both streams (2B), the second
    reusing the plain stream's backbone features, and the mask loss averages both. With ``freeze_detector`` (stage
    2) the module is frozen too: the freeze is applied again once the mixin has built it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.apply_freeze()


class PairedDenoisingQueries(nn.Module):
    """Stands in for DINO's ``CdnQueryGenerator`` during a two-stream pass: it draws the denoising queries
    for the B images once and repeats them, so both streams denoise the same noised boxes.

    Input: the 2B repeated data samples. Output as the generator's: label queries ``(2B, num_dn, C)``, box
    queries ``(2B, num_dn, 4)``, the attention mask (not batched) and ``dn_meta``.
    """

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, 'generator', generator)  # not a submodule: no parameters are duplicated

    def forward(self, batch_data_samples):
        half = len(batch_data_samples) // 2
        label_query, bbox_query, attn_mask, dn_meta = self.generator(batch_data_samples[:half])
        return repeat_batch(label_query), repeat_batch(bbox_query), attn_mask, dn_meta


@MODELS.register_module()
class BFDINO(BatchFormerMixin, DINO):
    """DINO (Zhang et al., 2023) with BatchFormerV2; in two-stream training both streams get the same
    denoising queries (drawn once for the B images, then repeated)."""

    def pre_decoder(self, *args, **kwargs):
        if not self.bf_two_stream_active:
            return super().pre_decoder(*args, **kwargs)
        generator = self._modules['dn_query_generator']
        self._modules['dn_query_generator'] = PairedDenoisingQueries(generator)
        try:
            return super().pre_decoder(*args, **kwargs)
        finally:
            self._modules['dn_query_generator'] = generator
