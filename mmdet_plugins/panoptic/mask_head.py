"""DETR's panoptic mask head (Carion et al., 2020, section 4.4), written for MMDetection 3.x tensors.

Two modules and two losses:

- :class:`QueryMemoryAttention`: each final-layer decoder query attends to the encoder memory with ``M`` heads;
  the output is the attention weights themselves, one low-resolution map per query and head.
- :class:`SmallConvMaskHead`: a small FPN-style convolutional decoder over ``cat(projected C5, those maps)``,
  upsampled through the backbone's C4, C3 and C2, giving one mask logit map per query at stride 4.
- :func:`mask_focal_loss`, :func:`mask_dice_loss`: DETR's mask losses with DETR's normalisation (a mean over pixels,
  a sum over masks, divided by the number of matched masks), which mmdet's ``FocalLoss`` does not reproduce.

The reference is facebookresearch/detr ``models/segmentation.py`` (``MHAttentionMap``, ``MaskHeadSmallConv``,
``dice_loss``, ``sigmoid_focal_loss``); the code here is this repository's.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ['QueryMemoryAttention', 'SmallConvMaskHead', 'mask_focal_loss', 'mask_dice_loss']


class QueryMemoryAttention(nn.Module):
    """Multi-head attention weights of each query over the memory, softmax taken jointly over heads and positions
    (DETR's ``MHAttentionMap``).

    Args:
        embed_dims (int): C, the channels of the queries and of the memory.
        hidden_dims (int): D, the projection width (split into ``num_heads`` heads of D / M channels).
        num_heads (int): M.
        dropout (float): dropout on the weights (DETR: 0).
    """

    def __init__(self, embed_dims: int, hidden_dims: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if hidden_dims % num_heads:
            raise ValueError(f'QueryMemoryAttention: hidden_dims {hidden_dims} is not divisible by num_heads '
                             f'{num_heads}')
        self.num_heads = num_heads
        self.scale = (hidden_dims / num_heads) ** -0.5
        self.q_proj = nn.Linear(embed_dims, hidden_dims)
        self.k_proj = nn.Linear(embed_dims, hidden_dims)  # applied per position, as a 1x1 convolution
        self.dropout = nn.Dropout(dropout)
        for proj in (self.q_proj, self.k_proj):
            nn.init.xavier_uniform_(proj.weight)
            nn.init.zeros_(proj.bias)

    def forward(self, query: Tensor, memory: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """query (B, Q, C), memory (B, C, h, w), padding_mask (B, h, w) True at padded positions, or None.

        Returns the weights (B, Q, M, h, w); for each query they sum to 1 over (M, h, w), 0 at padding.
        """
        b, q, _ = query.shape
        h, w = memory.shape[-2:]
        m = self.num_heads
        queries = self.q_proj(query).view(b, q, m, -1) * self.scale                      # (B, Q, M, D/M)
        keys = F.conv2d(memory, self.k_proj.weight[:, :, None, None], self.k_proj.bias)  # (B, D, h, w)
        keys = keys.view(b, m, -1, h, w)                                                  # (B, M, D/M, h, w)
        weights = torch.einsum('bqmd,bmdhw->bqmhw', queries, keys)
        if padding_mask is not None:
            weights = weights.masked_fill(padding_mask[:, None, None], float('-inf'))
        weights = weights.flatten(2).softmax(-1).view(b, q, m, h, w)
        return self.dropout(weights)


def _conv_gn_relu(in_channels: int, out_channels: int, groups: int = 8) -> nn.Sequential:
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
    nn.init.kaiming_uniform_(conv.weight, a=1)
    nn.init.zeros_(conv.bias)
    return nn.Sequential(conv, nn.GroupNorm(groups, out_channels), nn.ReLU(inplace=True))


class SmallConvMaskHead(nn.Module):
    """DETR's ``MaskHeadSmallConv``: per query, ``cat(context, its M attention maps)`` through 3x3 conv + GroupNorm
    + ReLU blocks, each of the three upsampling steps adding a 1x1 adapter of one backbone level (coarse to fine),
    then a 3x3 conv to one logit.

    Args:
        context_dims (int): C, channels of the projected C5 (DETR: 256).
        num_heads (int): M, the attention maps per query.
        fpn_dims (sequence of 3 ints): channels of the finer backbone levels, coarse to fine (ResNet-50: C4, C3, C2
            = 1024, 512, 256; ResNet-18: 256, 128, 64).

    Widths as DETR: ``[C + M, C/2, C/4, C/8, C/16]`` (264, 128, 64, 32, 16 for C = 256, M = 8).
    """

    def __init__(self, context_dims: int, num_heads: int, fpn_dims: Sequence[int]):
        super().__init__()
        if len(fpn_dims) != 3:
            raise ValueError(f'SmallConvMaskHead: fpn_dims needs 3 levels (C4, C3, C2), got {list(fpn_dims)}')
        if context_dims % 128:
            raise ValueError(f'SmallConvMaskHead: context_dims must be a multiple of 128 (its widths are C/2 .. '
                             f'C/16 with GroupNorm(8)), got {context_dims}')
        dims = [context_dims + num_heads] + [context_dims // k for k in (2, 4, 8, 16)]
        groups = 8 if dims[0] % 8 == 0 else 1
        self.stem = nn.Sequential(_conv_gn_relu(dims[0], dims[0], groups), _conv_gn_relu(dims[0], dims[1]))
        self.adapters = nn.ModuleList()
        for c_in, c_out in zip(fpn_dims, dims[1:4]):
            adapter = nn.Conv2d(c_in, c_out, 1)
            nn.init.kaiming_uniform_(adapter.weight, a=1)
            nn.init.zeros_(adapter.bias)
            self.adapters.append(adapter)
        self.blocks = nn.ModuleList(_conv_gn_relu(c_in, c_out) for c_in, c_out in zip(dims[1:4], dims[2:5]))
        self.out = nn.Conv2d(dims[4], 1, 3, padding=1)
        nn.init.kaiming_uniform_(self.out.weight, a=1)
        nn.init.zeros_(self.out.bias)

    def forward(self, context: Tensor, attention: Tensor, fpn_feats: Sequence[Tensor], image_index=None) -> Tensor:
        """context (B, C, h, w) the projected C5; fpn_feats [(B, C4, 2h, 2w), (B, C3, 4h, 4w), (B, C2, 8h, 8w)] (any
        sizes: each step upsamples to the next level's); attention either (B', Q, M, h, w), the maps of every query
        of B' query sets, or (N, M, h, w), the maps of N chosen queries. ``image_index``: the image (0..B-1) of each
        query set (B',), or of each map (N,), which the 4-D form needs; default: query set b is image b.

        Returns mask logits at the finest level's size (stride 4 of the padded input): (B', Q, H2, W2), or (N, H2, W2).
        Each query's mask depends on its own maps and its image only, so N chosen queries get the logits they have
        among all (the training loss runs the head on the matched queries alone).
        """
        if attention.dim() == 4:
            if image_index is None:
                raise ValueError('SmallConvMaskHead: (N, M, h, w) maps need the image_index of each')
            return self._masks(context, attention, fpn_feats, image_index)
        b, q = attention.shape[:2]
        if image_index is None:
            image_index = torch.arange(b, device=attention.device)
        logits = self._masks(context, attention.flatten(0, 1), fpn_feats, image_index.repeat_interleave(q))
        return logits.view(b, q, *logits.shape[-2:])  # (query-major per query set)

    def _masks(self, context: Tensor, attention: Tensor, fpn_feats: Sequence[Tensor], image_index: Tensor) -> Tensor:
        """(N, H2, W2) logits of N maps ``attention`` (N, M, h, w) of the images ``image_index`` (N,)."""
        x = torch.cat([context[image_index], attention], 1)                   # (N, C+M, h, w)
        x = self.stem(x)
        for adapter, block, feat in zip(self.adapters, self.blocks, fpn_feats):
            lateral = adapter(feat)[image_index]                                # (N, c, H, W)
            x = block(lateral + F.interpolate(x, size=lateral.shape[-2:], mode='nearest'))
        return self.out(x)[:, 0]


def mask_focal_loss(logits: Tensor, targets: Tensor, num_masks: float, alpha: float = 0.25,
                    gamma: float = 2.0) -> Tensor:
    """Sigmoid focal loss of N predicted masks against their targets, DETR's normalisation.

    logits, targets: (N, P) (P pixels; targets in {0, 1}). Returns a scalar: the per-pixel focal loss averaged
    over the P pixels of each mask, summed over the N masks, divided by ``num_masks``.
    """
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction='none')
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.mean(1).sum() / num_masks


def mask_dice_loss(logits: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """Dice loss ``1 - (2 sum(p t) + 1) / (sum p + sum t + 1)`` per mask, summed, divided by ``num_masks``.

    logits, targets: (N, P). Returns a scalar.
    """
    prob = logits.sigmoid()
    numerator = 2 * (prob * targets).sum(1) + 1
    denominator = prob.sum(1) + targets.sum(1) + 1
    return (1 - numerator / denominator).sum() / num_masks
