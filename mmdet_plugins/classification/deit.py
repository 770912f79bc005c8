"""BatchFormerV2 on DeiT (mmpretrain's ``VisionTransformer``): the two-stream backbone and its classifier.

``BFVisionTransformer`` runs the ViT's blocks as mmpretrain does and, in training, a BatchFormerV2 layer after
block ``insert_idx[0]`` (default 8, 0-based, as the official ``--insert_idx 8``). Shapes: tokens ``(B, L, C)``,
L = 1 + patches (the cls token included: every token position attends across the batch). Modes:

- ``two_stream`` (the paper): ``x -> cat([x, BF(x)])``, plain stream first; the later blocks, the final norm and
  the head run on 2B; a later entry of ``insert_idx`` applies the module to the second stream only.
- ``released`` (the official DeiT code as released, ``../shared/reference/classification.md``): the first insertion
  *replaces* the batch by the module's output, ``x -> BF(x)`` (no plain stream, the batch stays B); a later
  insertion applies the module to the second half of the batch (B/2 images) and keeps the size B.
- ``off``: no module (the baseline; the state dict equals ``VisionTransformer``'s).

In eval mode, and in any forward outside training, the module is skipped: the backbone computes exactly what
``VisionTransformer`` computes with the same weights.

``BFImageClassifier`` is mmpretrain's ``ImageClassifier`` whose loss repeats the data samples (labels, and the
soft targets Mixup/CutMix wrote into them) when the backbone returned 2B features, so the shared head's loss is
the mean over both streams, as the official ``engine.py`` duplicates its targets.
"""
from __future__ import annotations

from typing import List

import torch
from torch import nn
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS

from ..batchformer.layer import BatchFormerV2Layer, check_insert_idx

__all__ = ['BFVisionTransformer', 'BFImageClassifier', 'VIT_MODES']

VIT_MODES = ('two_stream', 'released', 'off')
DEFAULT_VIT_BATCHFORMER = dict(insert_idx=[8], mode='two_stream', shared=True, num_heads=4,
                               feedforward_channels=None, dropout=0.5)


@MODELS.register_module()
class BFVisionTransformer(VisionTransformer):
    """mmpretrain's ``VisionTransformer`` with BatchFormerV2 in training (module docstring).

    Args:
        batchformer (dict, optional): ``insert_idx`` (list[int], blocks after which the module runs; default
            ``[8]``), ``mode`` (``'two_stream'``, ``'released'`` or ``'off'``), ``shared`` (one module for all
            insertion points, default, or one each), ``num_heads`` (4), ``feedforward_channels`` (default: the
            embedding width, as the official ``TransformerEncoderLayer(dim, heads, dim, 0.5)``), ``dropout`` (0.5).
        *args, **kwargs: ``VisionTransformer``'s arguments (``arch``, ``img_size``, ``patch_size``, ...).
    """

    def __init__(self, *args, batchformer: dict = None, **kwargs):
        super().__init__(*args, **kwargs)
        unknown = set(batchformer or {}) - set(DEFAULT_VIT_BATCHFORMER)
        if unknown:
            raise ValueError(f'batchformer: unknown keys {sorted(unknown)}; known: {sorted(DEFAULT_VIT_BATCHFORMER)}')
        cfg = {**DEFAULT_VIT_BATCHFORMER, **(batchformer or {})}
        if cfg['mode'] not in VIT_MODES:
            raise ValueError(f'batchformer.mode {cfg["mode"]!r} unknown: one of {VIT_MODES}')
        self.bf_mode = cfg['mode']
        self.bf_insert_idx: List[int] = check_insert_idx(cfg['insert_idx'], len(self.layers))
        self.bf_shared = bool(cfg['shared'])
        if self.bf_mode == 'off':
            return
        layer_args = dict(embed_dims=self.embed_dims, num_heads=cfg['num_heads'],
                          feedforward_channels=cfg['feedforward_channels'] or self.embed_dims, dropout=cfg['dropout'])
        if self.bf_shared:
            self.batchformer = BatchFormerV2Layer(**layer_args)
        else:
            self.batchformer = nn.ModuleList([BatchFormerV2Layer(**layer_args) for _ in self.bf_insert_idx])

    def init_weights(self):
        """The ViT's initialisation (mmpretrain's), then PyTorch's default one for the BatchFormerV2 layers: the
        official module is built after DeiT initialised its weights, so the ViT's truncated-normal init (which the
        classifier's ``init_cfg`` applies to every ``Linear``) does not reach it."""
        super().init_weights()
        if self.bf_mode == 'off':
            return
        for m in self.batchformer.modules():  # every Linear and LayerNorm first, then the layers' own init on top
            if isinstance(m, (nn.Linear, nn.LayerNorm)):
                m.reset_parameters()
        for m in self.batchformer.modules():
            if isinstance(m, BatchFormerV2Layer):
                m.reset_parameters()

    def _bf_module(self, position: int) -> BatchFormerV2Layer:
        return self.batchformer if self.bf_shared else self.batchformer[position]

    def embed(self, x: torch.Tensor):
        """Images ``(B, C_in, H, W)`` -> tokens ``(B, L, C)`` before the first block, and the patch grid size
        (what ``VisionTransformer.forward`` does before its blocks)."""
        B = x.shape[0]
        x, patch_resolution = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        x = x + resize_pos_embed(self.pos_embed, self.patch_resolution, patch_resolution,
                                 mode=self.interpolate_mode, num_extra_tokens=self.num_extra_tokens)
        x = self.drop_after_pos(x)
        return self.pre_norm(x), patch_resolution

    def apply_batchformer(self, x: torch.Tensor, position: int, batch: int) -> torch.Tensor:
        """The module at the ``position``-th insertion point, on tokens ``x`` of a batch of ``batch`` images.

        Returns ``(2B, L, C)`` at the first two-stream insertion, else the shape of ``x``."""
        bf = self._bf_module(position)
        if self.bf_mode == 'two_stream':
            if position == 0:
                return torch.cat([x, bf(x)], dim=0)
            return torch.cat([x[:batch], bf(x[batch:])], dim=0)
        # released: replace the batch at the first insertion, the second half at later ones
        if position == 0:
            return bf(x)
        half = x.size(0) // 2
        return torch.cat([x[:half], bf(x[half:])], dim=0)

    def forward(self, x: torch.Tensor):
        """Args: ``x`` ``(B, C_in, H, W)``. Returns the tuple of ``VisionTransformer.forward`` (per out index,
        e.g. the cls token ``(B', C)``), with B' = 2B in two-stream training and B otherwise."""
        if not self.training or self.bf_mode == 'off':
            return super().forward(x)
        batch = x.shape[0]
        x, patch_resolution = self.embed(x)
        outs, last = [], len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.bf_insert_idx:
                x = self.apply_batchformer(x, self.bf_insert_idx.index(i), batch)
            if i == last and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, patch_resolution))
        return tuple(outs)


@MODELS.register_module()
class BFImageClassifier(ImageClassifier):
    """``ImageClassifier`` whose loss handles the two-stream batch (module docstring)."""

    @property
    def bf_mode(self) -> str:
        return getattr(self.backbone, 'bf_mode', 'off')

    def loss(self, inputs: torch.Tensor, data_samples) -> dict:
        """Args: ``inputs`` ``(B, C_in, H, W)``, ``data_samples`` B ``DataSample``. The head sees the backbone's
        2B (or B) features and the samples repeated to match: ``samples + samples``, plain stream first."""
        feats = self.extract_feat(inputs)
        last = feats[-1] if isinstance(feats, (tuple, list)) else feats
        n = (last[0] if isinstance(last, (tuple, list)) else last).size(0)
        if n == 2 * len(data_samples):
            data_samples = list(data_samples) + list(data_samples)
        elif n != len(data_samples):
            raise RuntimeError(f'BFImageClassifier: the backbone returned {n} features for {len(data_samples)} '
                               f'samples (expected {len(data_samples)} or {2 * len(data_samples)})')
        return self.head.loss(feats, data_samples)
