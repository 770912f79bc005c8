"""Multi-scale deformable attention that ``torch.compile`` can trace through.

mmcv's ``MultiScaleDeformableAttention`` calls its CUDA kernel through an ``autograd.Function`` that enters a
pybind extension, which Dynamo cannot trace: a compiled Deformable DETR layer is cut into pieces around each
deformable attention (graph breaks), and every call also checks ``sum(h * w) == num_value`` with a device tensor,
which makes the host wait for the GPU once per layer.

Here the same mmcv kernels are registered as PyTorch custom operators (``bfv2::ms_deform_attn`` and its backward,
with shape functions for tracing and an autograd formula), so a compiled layer is one graph with the kernel as an
opaque call. On the CPU the operators compute mmcv's pure-PyTorch reference implementation (its gradients by
``torch.func.vjp``), so the CPU tests exercise the same operator registration.

:class:`TraceableMultiScaleDeformableAttention` is mmcv's module with the forward rewritten around the operator:
the same parameters, state dict and arithmetic (the operator is called on the same inputs with the same dtypes as
mmcv's ``Function`` is; tests/mmdet_plugins/fast_training/test_deform_attn.py checks outputs and gradients are bitwise equal), and no
device-side shape check. :func:`make_deform_attn_traceable` switches the modules of a model in place.

Backward precision (``backward_dtype``): under fp16 AMP mmcv runs both kernels in fp16. Its backward kernel adds
every sample's contribution to the value gradient with fp16 atomics and reduces the sampling-location gradients
in fp16, which at the mini Deformable DETR encoder's shapes is both slow and inexact: 5.6 ms per layer on an H200,
and the location gradients off by up to 134% of their largest magnitude against a float64 run of the same kernel
(``reproduce/bench/benchmark_msda.py``, results/measured/msda_backward.csv). With ``backward_dtype=torch.float32`` the
forward stays mmcv's fp16 kernel (bitwise the same outputs, so the same matchings and losses) and the backward
runs the same kernel on the inputs cast up to fp32, its gradients cast back to the inputs' dtype: 1.75 ms per
layer and errors of about 3e-4, which is the fp16 rounding of the result (the precision detrex and DINO get by
running the whole operator in fp32 under AMP). The gradients then differ from stock mmdet's (fp32 gradients
rounded to fp16 once, instead of accumulated in fp16), so a run with it is a different run: a mini run's AP
judges it.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from mmcv.ops.multi_scale_deform_attn import ext_module as mmcv_ext
from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttention, multi_scale_deformable_attn_pytorch
from torch import Tensor, nn

__all__ = ['ms_deform_attn', 'TraceableMultiScaleDeformableAttention', 'make_deform_attn_traceable']


@torch.library.custom_op('bfv2::ms_deform_attn', mutates_args=())
def ms_deform_attn(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, sampling_locations: Tensor,
                   attention_weights: Tensor, im2col_step: int,
                   backward_dtype: Optional[torch.dtype] = None) -> Tensor:
    """Sample ``value`` at the sampling locations of every level and sum with the attention weights.

    Args:
        value: ``(bs, num_keys, num_heads, head_dims)``, the levels' flattened maps one after the other.
        spatial_shapes: ``(num_levels, 2)`` int64, each level's ``(h, w)``; ``sum(h * w) == num_keys``.
        level_start_index: ``(num_levels,)`` int64, where each level starts along ``num_keys``.
        sampling_locations: ``(bs, num_queries, num_heads, num_levels, num_points, 2)``, ``(x, y)`` in [0, 1];
            the same dtype as ``value``.
        attention_weights: ``(bs, num_queries, num_heads, num_levels, num_points)``, same dtype as ``value``.
        im2col_step: the CUDA kernel's batch chunk.
        backward_dtype: compute the backward in this dtype when it is more precise than ``value``'s (the
            gradients are cast back); ``None``: in ``value``'s dtype, as mmcv does.

    Returns:
        ``(bs, num_queries, num_heads * head_dims)``, dtype of ``value``.
    """
    if value.is_cuda:
        return mmcv_ext.ms_deform_attn_forward(value, spatial_shapes, level_start_index, sampling_locations,
                                               attention_weights, im2col_step=im2col_step)
    return multi_scale_deformable_attn_pytorch(value, spatial_shapes, sampling_locations, attention_weights)


@ms_deform_attn.register_fake
def _(value, spatial_shapes, level_start_index, sampling_locations, attention_weights, im2col_step,
      backward_dtype=None):
    bs, _, num_heads, head_dims = value.shape
    return value.new_empty(bs, sampling_locations.shape[1], num_heads * head_dims)


@torch.library.custom_op('bfv2::ms_deform_attn_backward', mutates_args=())
def ms_deform_attn_backward(grad_output: Tensor, value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
                            sampling_locations: Tensor, attention_weights: Tensor,
                            im2col_step: int) -> Tuple[Tensor, Tensor, Tensor]:
    """The gradients of :func:`ms_deform_attn`'s output w.r.t. ``value``, ``sampling_locations`` and
    ``attention_weights`` (shapes and dtypes of those), given ``grad_output`` of the output's shape."""
    if value.is_cuda:
        grad_value = torch.zeros_like(value)
        grad_locations = torch.zeros_like(sampling_locations)
        grad_weights = torch.zeros_like(attention_weights)
        mmcv_ext.ms_deform_attn_backward(value, spatial_shapes, level_start_index, sampling_locations,
                                         attention_weights, grad_output.contiguous(), grad_value,
                                         grad_locations, grad_weights, im2col_step=im2col_step)
        return grad_value, grad_locations, grad_weights
    # the reference implementation's vector-Jacobian product (autograd itself is off inside an operator)
    _, vjp = torch.func.vjp(
        lambda v, loc, w: multi_scale_deformable_attn_pytorch(v, spatial_shapes, loc, w),
        value, sampling_locations, attention_weights)
    # in the layout the fake kernel promises (empty_like of the inputs), which compiled graphs rely on
    return tuple(torch.empty_like(t).copy_(g)
                 for t, g in zip((value, sampling_locations, attention_weights), vjp(grad_output)))


@ms_deform_attn_backward.register_fake
def _(grad_output, value, spatial_shapes, level_start_index, sampling_locations, attention_weights, im2col_step):
    return torch.empty_like(value), torch.empty_like(sampling_locations), torch.empty_like(attention_weights)


def _setup_context(ctx, inputs, output):
    value, spatial_shapes, level_start_index, sampling_locations, attention_weights, im2col_step, dtype = inputs
    ctx.save_for_backward(value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
    ctx.im2col_step = im2col_step
    ctx.backward_dtype = dtype


def more_precise(dtype: Optional[torch.dtype], than: torch.dtype) -> bool:
    """Whether ``dtype`` (``None``: no choice made) has more mantissa bits than ``than``."""
    return dtype is not None and torch.finfo(dtype).eps < torch.finfo(than).eps


def _backward(ctx, grad_output):
    value, spatial_shapes, level_start_index, sampling_locations, attention_weights = ctx.saved_tensors
    inputs = (grad_output, value, sampling_locations, attention_weights)
    if more_precise(ctx.backward_dtype, value.dtype):
        inputs = tuple(t.to(ctx.backward_dtype) for t in inputs)
    grad_output_, value_, locations_, weights_ = inputs
    grads = ms_deform_attn_backward(grad_output_, value_, spatial_shapes, level_start_index, locations_, weights_,
                                    ctx.im2col_step)
    grads = [g.to(t.dtype) for g, t in zip(grads, (value, sampling_locations, attention_weights))]
    return grads[0], None, None, grads[1], grads[2], None, None


ms_deform_attn.register_autograd(_backward, setup_context=_setup_context)


class TraceableMultiScaleDeformableAttention(MultiScaleDeformableAttention):
    """mmcv's ``MultiScaleDeformableAttention`` whose forward calls :func:`ms_deform_attn` (traceable by
    ``torch.compile``) and reads nothing back from the device. Same arguments, parameters and results; see
    ``MultiScaleDeformableAttention.forward`` for the inputs (``query`` ``(num_query, bs, embed_dims)``, or
    batch first when ``batch_first``; ``reference_points`` ``(bs, num_query, num_levels, 2 or 4)``).

    ``backward_dtype`` (attribute; ``None`` by default, mmcv's behaviour): the dtype the backward is computed in
    when the inputs are less precise (module docstring)."""
    backward_dtype: Optional[torch.dtype] = None

    def forward(self, query: Tensor, key: Tensor = None, value: Tensor = None, identity: Tensor = None,
                query_pos: Tensor = None, key_padding_mask: Tensor = None, reference_points: Tensor = None,
                spatial_shapes: Tensor = None, level_start_index: Tensor = None, **kwargs) -> Tensor:
        value = query if value is None else value
        identity = query if identity is None else identity
        if query_pos is not None:
            query = query + query_pos
        if not self.batch_first:
            query, value = query.permute(1, 0, 2), value.permute(1, 0, 2)
        bs, num_query, _ = query.shape
        num_value = value.shape[1]

        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        value = value.view(bs, num_value, self.num_heads, -1)
        offsets = self.sampling_offsets(query).view(bs, num_query, self.num_heads, self.num_levels,
                                                    self.num_points, 2)
        weights = self.attention_weights(query).view(bs, num_query, self.num_heads,
                                                     self.num_levels * self.num_points).softmax(-1)
        weights = weights.view(bs, num_query, self.num_heads, self.num_levels, self.num_points)
        if reference_points.shape[-1] == 2:  # points: offsets in units of each level's (w, h)
            level_wh = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)
            locations = reference_points[:, :, None, :, None, :] + offsets / level_wh[None, None, None, :, None, :]
        elif reference_points.shape[-1] == 4:  # boxes: offsets in units of half the box per point
            locations = (reference_points[:, :, None, :, None, :2]
                         + offsets / self.num_points * reference_points[:, :, None, :, None, 2:] * 0.5)
        else:
            raise ValueError(f'reference_points must end in 2 (points) or 4 (boxes), not '
                             f'{reference_points.shape[-1]}')
        # the dtypes mmcv's Function gives its kernel: the sampling inputs in value's (fp16 under AMP)
        output = ms_deform_attn(value, spatial_shapes, level_start_index, locations.type_as(value),
                                weights.type_as(value), self.im2col_step, self.backward_dtype)
        output = self.output_proj(output)
        if not self.batch_first:
            output = output.permute(1, 0, 2)
        return self.dropout(output) + identity


def make_deform_attn_traceable(model: nn.Module, backward_dtype: Optional[torch.dtype] = None) -> List[str]:
    """Give every mmcv ``MultiScaleDeformableAttention`` in ``model`` the class
    :class:`TraceableMultiScaleDeformableAttention` (in place: parameters and state dict unchanged). A given
    ``backward_dtype`` is set on every traceable module, also those switched before; ``None`` leaves theirs
    (mmcv's, the inputs' dtype, for newly switched ones). Returns the names of the modules switched now."""
    switched = []
    for name, module in model.named_modules():
        if type(module) is MultiScaleDeformableAttention:
            module.__class__ = TraceableMultiScaleDeformableAttention
            switched.append(name)
        if backward_dtype is not None and isinstance(module, TraceableMultiScaleDeformableAttention):
            module.backward_dtype = backward_dtype
    return switched
