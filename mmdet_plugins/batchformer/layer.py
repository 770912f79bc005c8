"""BatchFormerV2 core: a transformer encoder layer whose attention runs across the batch.

Plain PyTorch, no MMDetection import: the detector adapter (:mod:`.mixin`) and the registered detectors (:mod:`.detectors`) sit on top.

Shapes used throughout (batch-first, as MMDetection's transformers):

- ``x``: ``(B, N, C)``, B images, N token positions (the flattened feature map(s)), C channels.
- ``padding_mask``: ``(B, N)`` bool, True where the token of that image is padding.

For every token position n the layer attends over the B images at that position: a sequence of length B,
one per position, all positions sharing the same weights, with no positional embedding.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .global_batch import gather_keys_values, world_size

__all__ = ['BatchFormerV2Layer', 'batch_attention_mask', 'check_insert_idx', 'repeat_batch']


def batch_attention_mask(padding_mask: Tensor, key_padding_mask: Optional[Tensor] = None, offset: int = 0) -> Tensor:
    """Which image may attend to which, at each token position.

    Args:
        padding_mask: ``(B, N)`` bool, True at the padded tokens of the B query images.
        key_padding_mask: ``(B_k, N)`` bool for the key images, or None when they are the query images. With the
            global batch they are every rank's images, the query images among them from index ``offset``.
        offset: the index of the first query image among the key images.

    Returns:
        ``(N, 1, B, B_k)`` bool, True where query image i may attend to key image j at position n:
        both tokens are real, or j is i itself (a padded token sees only itself, so no row is empty).
    """
    keys = padding_mask if key_padding_mask is None else key_padding_mask
    valid_q, valid_k = ~padding_mask.t(), ~keys.t()  # (N, B), (N, B_k)
    allowed = valid_q.unsqueeze(2) & valid_k.unsqueeze(1)  # (N, B, B_k)
    itself = torch.zeros(padding_mask.size(0), keys.size(0), dtype=torch.bool, device=padding_mask.device)
    itself[:, offset:offset + padding_mask.size(0)] = torch.eye(padding_mask.size(0), dtype=torch.bool,
                                                                device=padding_mask.device)
    return (allowed | itself).unsqueeze(1)


class BatchFormerV2Layer(nn.Module):
    """A post-norm transformer encoder layer applied across the batch axis.

    Same computation as ``torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout)``
    (ReLU, post-norm, dropout on the attention weights, after attention, inside and after the
    feed-forward network) run on sequences of length B, one per token position, but:

    - padding-aware: a padded token neither attends to nor is attended by other images' tokens at its
      position, and its output is its input, unchanged (the official code passes no mask);
    - one batched ``scaled_dot_product_attention`` call over all positions, no loop over positions;
    - optionally over the global batch (``global_batch=True``): under data-parallel training a rank's images attend
      to every rank's images (:mod:`.global_batch`); each rank keeps its own images' outputs;
    - optionally within groups (``group_size=g``): images ``0..g-1``, ``g..2g-1``, ... of the batch attend only to
      their own group, as if each group were a batch of its own (the paper's runs saw 2-3 images per GPU);
    - optionally unmasked (``padding_aware=False``): the official computation, where padded tokens attend and are
      attended like any other and change like any other.

    Args:
        embed_dims: channels C. Official default 256.
        num_heads: attention heads. Official default 4.
        feedforward_channels: hidden width of the feed-forward network. Official default 256.
        dropout: dropout probability everywhere in the layer. Official default 0.5.
        global_batch: attend over the images of every rank of the default process group, not only this rank's
            (off by default; the same as off without a process group of several processes).
        group_size: attend within groups of this many consecutive images of the batch (None: the whole batch).
            It must divide the batch (checked at each call); not with ``global_batch``.
        padding_aware: mask padded tokens (default). False: no mask, as the official code.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_heads: int = 4,
                 feedforward_channels: int = 256,
                 dropout: float = 0.5,
                 global_batch: bool = False,
                 group_size: Optional[int] = None,
                 padding_aware: bool = True) -> None:
        super().__init__()
        if embed_dims % num_heads != 0:
            raise ValueError(f'BatchFormerV2Layer: embed_dims ({embed_dims}) must be divisible by '
                             f'num_heads ({num_heads}).')
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f'BatchFormerV2Layer: dropout must be in [0, 1), got {dropout}.')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.feedforward_channels = feedforward_channels
        self.dropout = dropout
        self.global_batch = bool(global_batch)
        if group_size is not None:
            if not isinstance(group_size, int) or isinstance(group_size, bool) or group_size < 1:
                raise ValueError(f'BatchFormerV2Layer: group_size must be a whole number >= 1 (images per group), '
                                 f'or None for the whole batch; got {group_size!r}.')
            if self.global_batch:
                raise ValueError('BatchFormerV2Layer: group_size and global_batch cannot be combined (groups are '
                                 'taken within one rank\'s batch); choose one.')
        self.group_size = group_size
        self.padding_aware = bool(padding_aware)
        self.in_proj = nn.Linear(embed_dims, 3 * embed_dims)
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.ffn = nn.Sequential(
            nn.Linear(embed_dims, feedforward_channels),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(feedforward_channels, embed_dims),
        )
        self.dropout_attn_out = nn.Dropout(dropout)
        self.dropout_ffn_out = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise as ``nn.MultiheadAttention`` does: Xavier input projection, zero biases."""
        nn.init.xavier_uniform_(self.in_proj.weight)
        nn.init.zeros_(self.in_proj.bias)
        nn.init.zeros_(self.out_proj.bias)

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, '
                f'feedforward_channels={self.feedforward_channels}, dropout={self.dropout}'
                + (', global_batch=True' if self.global_batch else '')
                + (f', group_size={self.group_size}' if self.group_size is not None else '')
                + ('' if self.padding_aware else ', padding_aware=False'))

    def group_mask(self, batch: int, device) -> Optional[Tensor]:
        """``(1, 1, B, B)`` bool, True where two images are in the same group; None without groups.

        Raises:
            ValueError: the batch is not a whole number of groups.
        """
        g = self.group_size
        if g is None:
            return None
        if batch % g:
            raise ValueError(f'BatchFormerV2Layer: a batch of {batch} images cannot be split into groups of '
                             f'group_size={g}: the group size must divide the images per GPU (a BatchFormerV2 '
                             f'stream has as many images as the batch).')
        group = torch.arange(batch, device=device) // g
        return (group[:, None] == group[None, :])[None, None]

    def batch_attention(self, x: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
        """Multi-head attention across the batch at every token position.

        Args:
            x: ``(B, N, C)``.
            padding_mask: ``(B, N)`` bool or None.

        Returns:
            ``(B, N, C)``: the attention output after the output projection.
        """
        B, N, C = x.shape
        head_dims = C // self.num_heads
        # (B, N, 3C) -> (3, N, heads, B, head_dims): each position is an independent sequence over B.
        qkv = self.in_proj(x).view(B, N, 3, self.num_heads, head_dims).permute(2, 1, 3, 0, 4)
        q, k, v = qkv.unbind(0)
        attn_mask = None
        if padding_mask is not None:
            # zero padded keys and values too: a masked weight times a non-finite padded value is still NaN
            padded = padding_mask.t()[:, None, :, None]  # (N, 1, B, 1)
            k = k.masked_fill(padded, 0.0)
            v = v.masked_fill(padded, 0.0)
        if self.global_batch and world_size() > 1:
            k, v, key_padding, offset = gather_keys_values(k, v, padding_mask)  # (N, heads, B_all, head_dims)
            query_padding = padding_mask if padding_mask is not None else key_padding[offset:offset + B]
            attn_mask = batch_attention_mask(query_padding, key_padding, offset)
        elif padding_mask is not None:
            attn_mask = batch_attention_mask(padding_mask)
        groups = self.group_mask(B, x.device)
        if groups is not None:
            attn_mask = groups if attn_mask is None else attn_mask & groups
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0)
        out = out.permute(2, 0, 1, 3).reshape(B, N, C)  # (N, heads, B, d) -> (B, N, C)
        return self.out_proj(out)

    def forward(self, x: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
        """Args:
            x: ``(B, N, C)`` tokens of B images.
            padding_mask: ``(B, N)`` bool, True at padded tokens, or None when no token is padded.

        Returns:
            ``(B, N, C)``; where ``padding_mask`` is True the output equals ``x``.
        """
        if x.dim() != 3 or x.size(-1) != self.embed_dims:
            raise ValueError(f'BatchFormerV2Layer expects tokens of shape (B, N, {self.embed_dims}), '
                             f'got {tuple(x.shape)}.')
        if padding_mask is not None:
            if padding_mask.shape != x.shape[:2]:
                raise ValueError(f'BatchFormerV2Layer: padding_mask must have shape {tuple(x.shape[:2])} '
                                 f'(B, N), got {tuple(padding_mask.shape)}.')
            padding_mask = padding_mask.bool()  # (no `.any()` shortcut: it would sync with the GPU)
            if not self.padding_aware:  # the official computation: padded tokens are tokens like any other
                padding_mask = None
        y = self.norm1(x + self.dropout_attn_out(self.batch_attention(x, padding_mask)))
        y = self.norm2(y + self.dropout_ffn_out(self.ffn(y)))
        if padding_mask is not None:
            y = torch.where(padding_mask.unsqueeze(-1), x, y)
        return y


def repeat_batch(value, times: int = 2):
    """Repeat a batched value along its first (batch) axis: ``[a, b] -> [a, b, a, b]``.

    Tensors are concatenated along dim 0, lists and tuples are repeated, None stays None.
    """
    if value is None:
        return None
    if isinstance(value, Tensor):
        return torch.cat([value] * times, dim=0)
    if isinstance(value, (list, tuple)):
        return type(value)(list(value) * times)
    raise TypeError(f'repeat_batch: cannot repeat a value of type {type(value).__name__} along the batch.')


def check_insert_idx(insert_idx: Sequence[int], num_layers: int) -> list:
    """Validate encoder insertion indices; returns them sorted.

    Raises:
        ValueError: an index outside ``[0, num_layers - 1]``, a repeated index, or an empty list.
    """
    idx = [int(i) for i in insert_idx]
    if not idx:
        raise ValueError('batchformer.insert_idx is empty: give at least one encoder layer index, '
                         f'in [0, {num_layers - 1}].')
    bad = [i for i in idx if not 0 <= i < num_layers]
    if bad:
        raise ValueError(f'batchformer.insert_idx {bad} out of range: the encoder has {num_layers} layers, '
                         f'so valid indices are 0..{num_layers - 1} (the module runs after that layer).')
    if len(set(idx)) != len(idx):
        raise ValueError(f'batchformer.insert_idx {idx} repeats an index.')
    return sorted(idx)
