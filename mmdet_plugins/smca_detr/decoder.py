"""The decoder of single-scale SMCA (Spatially Modulated Co-Attention; Gao et al., ICCV 2021, arXiv 2101.07448).

SMCA keeps DETR's decoder layers and adds, in every layer's cross-attention (the "co-attention"), a spatial prior
around a box centre that each object query predicts. Notation of the paper, Sec. 3.2 (its equation numbers
could not be read from a stored copy of the paper, so they are named by what they compute):

- **Centre** (predicted once, from the object query ``O_q``; here the query's positional embedding, which is
  DETR's learnt object query)::

      c^norm = sigmoid(MLP(LN(O_q)))      two-layer MLP (the paper's; the official code has three layers),
                                          normalised (x, y) in the image

  and in feature-map cells ``c = c^norm * (W_valid, H_valid)``, the image's unpadded extent.
- **Head-specific offsets and scales** (multi-head SMCA, Sec. 3.3): every head h shifts the shared centre by
  its own offset and has its own width and height scales, predicted in every decoder layer from the layer's
  input (content + positional query)::

      c_h = c + FC_offset(LN(q))_h,    (1 / s_w,h, 1 / s_h,h) = FC_scale(LN(q))_h

  ``LN`` is a LayerNorm per decoder layer, as in the official code (``norm4``). A first version without it
  (unnormalised inputs, so the predicted offsets and scales can move far in a few steps) stalled or collapsed
  to the average box on the mini benchmark (``results/logs/calibration_mini/smca_v1/``; the instability that
  remained was the learning rate, see the mini config). The layer predicts the *inverse* scales, so ``log G``
  below is a polynomial in them (no division), as the official code does (its "type3" dynamic scale).
  ``FC_scale`` starts at weight 0, bias 1 (``s = 1`` cell), as the official code's; ``FC_offset`` starts at 0, so
  every head starts at the shared centre (the official code leaves its offset layer at the default init: a
  deviation).
- **Gaussian-like weight map** over the feature cells ``(i, j)`` (cell centres, in cells)::

      G_h(i, j) = exp( -(i - c_w,h)^2 / (beta * s_w,h^2) - (j - c_h,h)^2 / (beta * s_h,h^2) )

  with the bandwidth constant ``beta = 8`` (the official code's default, ``--smooth 8``).
- **Spatially modulated co-attention**::

      C_h = softmax( K_h^T Q_h / sqrt(d) + log G_h ) V_h

  ``log G`` enters as the additive float attention mask of the cross-attention (``cross_attn_mask``), with
  ``-inf`` at padded cells; each row is shifted so that its best valid cell is at 0 (softmax is unchanged) and
  clamped at ``-1e4``, so that no row is all ``-inf`` in fp16 (:func:`attention_bias`).
- **Boxes relative to the centre**: ``box = sigmoid(MLP(D) + [logit(c^norm), 0, 0])``; that is what mmdet's
  ``ConditionalDETRHead`` does with the ``references`` this decoder returns (``c^norm``, ``(B, Q, 2)``).

Not implemented: the multi-scale encoder and scale-selection attention of the fully-fledged SMCA.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from mmdet.models.layers import MLP, DetrTransformerDecoder
from mmdet.registry import MODELS
from torch import Tensor, nn

__all__ = ['SMCATransformerDecoder', 'spatial_log_weights', 'attention_bias', 'cell_grid', 'valid_extent']

LOG_WEIGHT_FLOOR = -1e4


def spatial_log_weights(centers: Tensor, inv_scales: Tensor, grid: Tensor, beta: float = 8.0) -> Tensor:
    """``log G`` of SMCA for every head, query and feature cell.

    Args:
        centers: ``(B, Q, H, 2)`` each head's centre ``(x, y)``, in feature cells.
        inv_scales: ``(B, Q, H, 2)`` each head's inverse scales ``(1 / s_w, 1 / s_h)``, in 1 / cells.
        grid: ``(HW, 2)`` the cells' centres ``(x, y)``, in cells (:func:`cell_grid`).
        beta: the bandwidth constant.

    Returns:
        ``(B, H, Q, HW)``: ``-((x - c_x)^2 / s_w^2 + (y - c_y)^2 / s_h^2) / beta`` (not clamped; see
        :func:`attention_bias`).
    """
    if beta <= 0:
        raise ValueError(f'SMCA: beta must be > 0, got {beta}')
    centers, inv_scales = centers.permute(0, 2, 1, 3), inv_scales.permute(0, 2, 1, 3)  # (B, H, Q, 2)
    dx = grid[:, 0] - centers[..., 0:1]  # (B, H, Q, HW); x and y apart: no (B, H, Q, HW, 2) intermediate
    dy = grid[:, 1] - centers[..., 1:2]
    return -(dx.square() * inv_scales[..., 0:1].square() + dy.square() * inv_scales[..., 1:2].square()) / beta


def attention_bias(log_w: Tensor, key_padding_mask: Optional[Tensor] = None) -> Tensor:
    """The float attention mask from ``log G``: ``-inf`` at padding, each row shifted so that its largest valid
    entry is 0 (softmax does not change), then clamped at ``-1e4`` (finite in fp16, so a row far from its centre
    keeps the prior's shape near its best cells instead of turning into ``-inf``).

    Args:
        log_w: ``(B, H, Q, HW)`` from :func:`spatial_log_weights`.
        key_padding_mask: ``(B, HW)`` True at padding, or None.

    Returns:
        ``(B, H, Q, HW)``.
    """
    pad = None if key_padding_mask is None else key_padding_mask[:, None, None, :]
    if pad is not None:
        log_w = log_w.masked_fill(pad, float('-inf'))
    log_w = (log_w - log_w.amax(-1, keepdim=True).detach()).clamp(min=LOG_WEIGHT_FLOOR)
    return log_w if pad is None else log_w.masked_fill(pad, float('-inf'))


def cell_grid(height: int, width: int, device=None, dtype=torch.float32) -> Tensor:
    """``(height * width, 2)`` the centres ``(x + 0.5, y + 0.5)`` of a feature map's cells, row-major (as the
    flattened memory)."""
    ys, xs = torch.meshgrid(torch.arange(height, device=device, dtype=dtype),
                            torch.arange(width, device=device, dtype=dtype), indexing='ij')
    return torch.stack([xs, ys], dim=-1).reshape(-1, 2) + 0.5


def valid_extent(key_padding_mask: Optional[Tensor], batch_size: int, height: int, width: int,
                 device=None) -> Tensor:
    """``(B, 2)`` each image's unpadded width and height in cells, from the ``(B, height * width)`` padding mask
    (True: padding; images are padded at the right and bottom). Without a mask: the whole map."""
    if key_padding_mask is None:
        return torch.tensor([width, height], device=device, dtype=torch.float32).expand(batch_size, 2)
    valid = ~key_padding_mask.view(batch_size, height, width)
    return torch.stack([valid[:, 0, :].sum(-1), valid[:, :, 0].sum(-1)], dim=-1).float()


@MODELS.register_module()
class SMCATransformerDecoder(DetrTransformerDecoder):
    """DETR's decoder with SMCA's spatially modulated co-attention (module docstring).

    Args:
        beta: the Gaussian's bandwidth constant (default 8).
        *args, **kwargs: as :class:`DetrTransformerDecoder` (``num_layers``, ``layer_cfg``, ``post_norm_cfg``,
            ``return_intermediate``).
    """

    def __init__(self, *args, beta: float = 8.0, **kwargs) -> None:
        if beta <= 0:
            raise ValueError(f'SMCATransformerDecoder: beta must be > 0, got {beta}')
        super().__init__(*args, **kwargs)
        self.beta = float(beta)

    def _init_layers(self) -> None:
        super()._init_layers()
        self.num_heads = self.layers[0].cross_attn.num_heads
        dims = self.embed_dims
        self.center_mlp = MLP(dims, dims, 2, 2)  # c^norm = sigmoid(MLP(LN(O_q)))
        self.spatial_norms = nn.ModuleList(nn.LayerNorm(dims) for _ in range(self.num_layers))
        self.offset_fcs = nn.ModuleList(nn.Linear(dims, 2 * self.num_heads) for _ in range(self.num_layers))
        self.inv_scale_fcs = nn.ModuleList(nn.Linear(dims, 2 * self.num_heads) for _ in range(self.num_layers))
        self.reset_spatial_parameters()

    def reset_spatial_parameters(self) -> None:
        """Offsets 0 and scales 1 cell at the start (the detector calls this after its xavier init)."""
        for fc in self.offset_fcs:
            nn.init.zeros_(fc.weight)
            nn.init.zeros_(fc.bias)
        for fc in self.inv_scale_fcs:
            nn.init.zeros_(fc.weight)
            nn.init.ones_(fc.bias)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, query_pos: Tensor, key_pos: Tensor,
                key_padding_mask: Optional[Tensor], spatial_shape: Tuple[int, int],
                **kwargs) -> Tuple[Tensor, Tensor]:
        """Decode.

        Args:
            query: ``(B, Q, C)`` content queries (zeros at the first layer, as DETR).
            key, value: ``(B, HW, C)`` the encoder's memory.
            query_pos: ``(B, Q, C)`` the learnt object queries ``O_q``.
            key_pos: ``(B, HW, C)`` the memory's positional encoding.
            key_padding_mask: ``(B, HW)`` True at padding, or None.
            spatial_shape: ``(height, width)`` of the feature map the memory was flattened from.

        Returns:
            ``hidden_states``: ``(num_layers, B, Q, C)`` (``(1, B, Q, C)`` without ``return_intermediate``), after
            the post-norm; ``references``: ``(B, Q, 2)`` the normalised centres ``c^norm`` ``(x, y)``.
        """
        batch_size, num_queries = query.shape[:2]
        height, width = spatial_shape
        if height * width != key.size(1):
            raise ValueError(f'SMCATransformerDecoder: spatial_shape {tuple(spatial_shape)} does not match the '
                             f'memory length {key.size(1)}')
        references = self.center_mlp(self.spatial_norms[0](query_pos)).float().sigmoid()  # (B, Q, 2), fp32
        extent = valid_extent(key_padding_mask, batch_size, height, width, device=key.device)
        centers = (references * extent[:, None]).unsqueeze(2)  # (B, Q, 1, 2) in cells
        grid = cell_grid(height, width, device=key.device)

        intermediate = []
        for layer, norm, offset_fc, inv_scale_fc in zip(self.layers, self.spatial_norms, self.offset_fcs,
                                                        self.inv_scale_fcs):
            spatial_in = norm(query + query_pos)
            head_centers = centers + offset_fc(spatial_in).view(batch_size, num_queries, self.num_heads, 2)
            inv_scales = inv_scale_fc(spatial_in).view(batch_size, num_queries, self.num_heads, 2)
            bias = attention_bias(spatial_log_weights(head_centers.float(), inv_scales.float(), grid, self.beta),
                                  key_padding_mask)  # one float mask: the prior, and -inf at padding
            query = layer(query, key=key, value=value, query_pos=query_pos, key_pos=key_pos,
                          cross_attn_mask=bias.reshape(batch_size * self.num_heads, num_queries, -1), **kwargs)
            if self.return_intermediate:
                intermediate.append(self.post_norm(query))
        if self.return_intermediate:
            return torch.stack(intermediate), references
        return self.post_norm(query).unsqueeze(0), references
