"""BatchFormerV2 over the global batch: every rank's keys and values, gathered across ranks with their gradients.

Plain PyTorch (``torch.distributed``). With data-parallel training each rank holds B of the global batch's images;
the per-GPU module attends over those B at each token position. With ``global_batch=True`` a rank's queries attend
over the keys and values of every rank's images, so the module sees the whole global batch, and each rank keeps
the outputs of its own images. Only the keys and values travel (the queries, the feed-forward network and the
outputs stay local), in one gather of ``(N, heads, B, 2 x head_dims)`` per call, with a gradient that flows back to
the rank that made them; the padding masks and batch sizes travel too, without gradients.

All ranks must have the same token layout (N tokens of the same feature-map shapes): the attention pairs tokens
by position. Batch sizes may differ between ranks. Outside a process group of more than one process the option
changes nothing.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.distributed as dist
from torch import Tensor


def world_size() -> int:
    """The number of processes of the default group (1 when torch.distributed is not initialised)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_keys_values(k: Tensor, v: Tensor, padding_mask: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor, int]:
    """Gather every rank's keys, values and padding masks along the batch axis, the keys and values with their
    gradients.

    Args:
        k, v: ``(N, heads, B, head_dims)``: this rank's keys and values of its B images at N positions.
        padding_mask: ``(B, N)`` bool, True at padded tokens, or None.

    Returns:
        ``(k_all, v_all, padding_all, offset)``: ``k_all`` and ``v_all`` are ``(N, heads, B_all, head_dims)`` with
        every rank's images in rank order, ``padding_all`` is ``(B_all, N)`` bool, and ``offset`` is the index of
        this rank's first image in them.

    Raises:
        ValueError: the ranks' token counts, heads or channels differ (the attention pairs tokens by position).
    """
    import torch.distributed.nn.functional as dist_nn
    N, heads, B, d = k.shape
    size = torch.tensor([B, N, heads, d], device=k.device, dtype=torch.long)
    sizes = [torch.empty_like(size) for _ in range(world_size())]
    dist.all_gather(sizes, size)
    sizes = [s.tolist() for s in sizes]  # (one small host copy per call)
    if any(s[1:] != sizes[0][1:] for s in sizes):
        raise ValueError('batchformer.global_batch needs the same tokens on every rank (the attention pairs them by '
                         f'position), got (batch, tokens, heads, head_dims) {sizes}: pad every batch to one fixed '
                         "size, e.g. data_preprocessor.batch_augments=[dict(type='BatchFixedSizePad', size=(H, W))]")
    batches = [s[0] for s in sizes]
    most = max(batches)
    kv = torch.cat([k, v], dim=-1)
    kv = torch.cat([kv, kv.new_zeros(N, heads, most - B, 2 * d)], dim=2)  # equal shapes for the gather
    pad = padding_mask if padding_mask is not None else torch.zeros(B, N, dtype=torch.bool, device=k.device)
    pad = torch.cat([pad, pad.new_ones(most - B, N)]).to(torch.uint8)
    gathered = dist_nn.all_gather(kv)  # with gradients (the backward sends each rank its slices' gradients)
    pads = [torch.empty_like(pad) for _ in batches]
    dist.all_gather(pads, pad)
    kv_all = torch.cat([g[:, :, :b] for g, b in zip(gathered, batches)], dim=2)
    padding_all = torch.cat([p[:b] for p, b in zip(pads, batches)]).bool()
    offset = sum(batches[:dist.get_rank()])
    return kv_all[..., :d], kv_all[..., d:], padding_all, offset
