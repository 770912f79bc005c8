"""mmdet_plugins/fast_training/deform_attn.py: the traceable deformable attention computes bitwise what mmcv's module
computes (outputs and all gradients), its operator registration passes torch's own checks, and a model switched to
it keeps its parameters. On a machine with a GPU the same tests run the CUDA kernels too (fp32 and fp16 AMP); there
the outputs are bitwise equal, but mmcv's backward kernel adds with atomics, so its gradients change from run to
run: they are held to mmcv's own run-to-run spread. With ``backward_dtype`` the gradients are those of a more
precise run of the same backward, cast back; on the GPU under fp16 they are closer to a float64 run than mmcv's fp16
gradients are."""
import copy

import pytest
import torch
from mmcv.ops import MultiScaleDeformableAttention

from mmdet_plugins.fast_training.deform_attn import (TraceableMultiScaleDeformableAttention, make_deform_attn_traceable,
                                                 ms_deform_attn, ms_deform_attn_backward)

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
SHAPES = torch.tensor([[4, 5], [2, 3]])  # two levels, 20 + 6 keys
STARTS = torch.tensor([0, 20])


def _pair(batch_first=True, device='cpu'):
    torch.manual_seed(0)
    stock = MultiScaleDeformableAttention(embed_dims=32, num_heads=4, num_levels=2, num_points=3,
                                          batch_first=batch_first, dropout=0.0)
    for p in stock.parameters():  # mmcv's init zeroes some weights; random ones exercise every path
        torch.nn.init.normal_(p, std=0.3)
    traceable = copy.deepcopy(stock)
    assert make_deform_attn_traceable(traceable) == ['']
    assert type(traceable) is TraceableMultiScaleDeformableAttention
    return stock.to(device), traceable.to(device)


def _run(module, query, amp, **kwargs):
    module.zero_grad(set_to_none=True)
    query = query.detach().clone().requires_grad_()
    with torch.autocast('cuda', dtype=torch.float16, enabled=amp):
        out = module(query, **kwargs)
    out.float().square().sum().backward()
    return out.detach(), query.grad, {n: p.grad for n, p in module.named_parameters()}


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('amp', [False, True])
@pytest.mark.parametrize('ref_dim', [2, 4])
@pytest.mark.parametrize('batch_first', [True, False])
def test_traceable_module_is_bitwise_mmcv(device, amp, ref_dim, batch_first):
    if amp and device == 'cpu':
        pytest.skip('fp16 AMP is a GPU path')
    stock, traceable = _pair(batch_first, device)
    n = int((SHAPES[:, 0] * SHAPES[:, 1]).sum())
    query = torch.randn(2, n, 32, device=device)
    if not batch_first:
        query = query.transpose(0, 1)
    mask = torch.zeros(2, n, dtype=torch.bool, device=device)
    mask[1, -4:] = True
    kwargs = dict(query_pos=torch.randn_like(query), key_padding_mask=mask,
                  reference_points=torch.rand(2, n, 2, ref_dim, device=device),
                  spatial_shapes=SHAPES.to(device), level_start_index=STARTS.to(device))
    out_s, dq_s, grads_s = _run(stock, query, amp, **kwargs)
    out_t, dq_t, grads_t = _run(traceable, query, amp, **kwargs)
    assert out_t.dtype == out_s.dtype and torch.equal(out_t, out_s)
    assert grads_t.keys() == grads_s.keys()
    if device == 'cpu':
        assert torch.equal(dq_t, dq_s)
        for name in grads_s:
            assert torch.equal(grads_t[name], grads_s[name]), name
    else:  # against mmcv's own spread: a second stock run
        _, dq_s2, grads_s2 = _run(stock, query, amp, **kwargs)
        pairs = [('query', dq_s, dq_s2, dq_t)] + [(n, grads_s[n], grads_s2[n], grads_t[n]) for n in grads_s]
        for name, first, second, ours in pairs:
            spread = (second - first).abs().max()
            assert (ours - first).abs().max() <= 4 * spread + 1e-6 * first.abs().max(), name
    assert grads_s['sampling_offsets.weight'].abs().sum() > 0  # the gradient reaches the sampling locations


@pytest.mark.parametrize('device', DEVICES)
def test_operator_registration_passes_opcheck(device):
    torch.manual_seed(0)
    value = torch.randn(2, 26, 4, 8, device=device, requires_grad=True)
    locations = torch.rand(2, 5, 4, 2, 3, 2, device=device, requires_grad=True)
    weights = torch.rand(2, 5, 4, 2, 3, device=device, requires_grad=True)
    torch.library.opcheck(ms_deform_attn, (value, SHAPES.to(device), STARTS.to(device), locations, weights, 64))
    torch.library.opcheck(ms_deform_attn, (value, SHAPES.to(device), STARTS.to(device), locations, weights, 64,
                                           torch.float64))


def test_cpu_backward_returns_the_layout_its_fake_kernel_promises():
    """Compiled graphs trust the fake kernel's strides (empty_like of each input): a dense but transposed
    ``value`` (as a compiled layer may pass) must get its gradient in that layout, or a later view in the
    compiled backward fails (it did, for Deformable DETR layers compiled with aot_eager on the CPU)."""
    from mmdet_plugins.fast_training.deform_attn import ms_deform_attn_backward
    torch.manual_seed(0)
    value = torch.randn(2, 4, 26, 8).transpose(1, 2)  # (2, 26, 4, 8), not contiguous
    locations = torch.rand(2, 5, 4, 2, 3, 2)
    weights = torch.rand(2, 5, 4, 3, 2).transpose(-1, -2)  # (2, 5, 4, 2, 3), not contiguous
    grad_out = torch.randn(2, 5, 32)
    grads = ms_deform_attn_backward(grad_out, value, SHAPES, STARTS, locations, weights, 64)
    for grad, tensor in zip(grads, (value, locations, weights)):
        assert grad.shape == tensor.shape and grad.stride() == torch.empty_like(tensor).stride()
    # the same values as for contiguous inputs
    expected = ms_deform_attn_backward(grad_out, value.contiguous(), SHAPES, STARTS, locations,
                                       weights.contiguous(), 64)
    for grad, want in zip(grads, expected):
        torch.testing.assert_close(grad, want)


def _operator_inputs(device, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    value = torch.randn(2, 26, 4, 8, generator=g)
    locations = torch.rand(2, 5, 4, 2, 3, 2, generator=g)
    weights = torch.rand(2, 5, 4, 2, 3, generator=g)
    grad_out = torch.randn(2, 5, 32, generator=g)
    return [t.to(device=device, dtype=dtype) for t in (value, locations, weights, grad_out)]


def _operator_grads(value, locations, weights, grad_out, backward_dtype):
    value, locations, weights = (t.detach().requires_grad_() for t in (value, locations, weights))
    out = ms_deform_attn(value, SHAPES.to(value.device), STARTS.to(value.device), locations, weights, 64,
                         backward_dtype)
    out.backward(grad_out)
    return out.detach(), [value.grad, locations.grad, weights.grad]


@pytest.mark.parametrize('device', DEVICES)
def test_backward_dtype_gives_the_precise_gradients_cast_back(device):
    """fp32 inputs with backward_dtype=float64: the same output, and exactly the float64 backward's gradients
    rounded to fp32 (which are not the fp32 backward's)."""
    value, locations, weights, grad_out = _operator_inputs(device, torch.float32)
    out, grads = _operator_grads(value, locations, weights, grad_out, torch.float64)
    out_plain, grads_plain = _operator_grads(value, locations, weights, grad_out, None)
    expected = ms_deform_attn_backward(grad_out.double(), value.double(), SHAPES.to(device), STARTS.to(device),
                                       locations.double(), weights.double(), 64)
    assert torch.equal(out, out_plain)
    for got, want in zip(grads, expected):
        assert got.dtype == torch.float32
        if device == 'cpu':
            assert torch.equal(got, want.float())
        else:  # the GPU's float64 atomics add in a varying order: within fp32 rounding of the float64 result,
            # elementwise (a plain fp32 backward, which accumulates in fp32, is not)
            assert ((got.double() - want).abs() <= 2.0 ** -24 * want.abs() + 1e-12 * want.abs().max()).all()
    if device == 'cpu':  # (the float64 backward did run: its rounded gradients are not the fp32 backward's)
        assert any(not torch.equal(g, p) for g, p in zip(grads, grads_plain))
    # a less precise backward_dtype is no choice at all: the inputs' dtype is kept (on the GPU up to the
    # atomics' order: float32 rounding)
    for a, b in zip(_operator_grads(value, locations, weights, grad_out, torch.float16)[1], grads_plain):
        assert a.dtype == torch.float32
        if device == 'cpu':
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='the fp16 kernels are CUDA kernels')
def test_fp32_backward_of_fp16_inputs_is_closer_to_float64_than_mmcvs_fp16_backward():
    value, locations, weights, grad_out = _operator_inputs('cuda', torch.float16)
    _, ours = _operator_grads(value, locations, weights, grad_out, torch.float32)
    _, mmcv_fp16 = _operator_grads(value, locations, weights, grad_out, None)
    exact = ms_deform_attn_backward(grad_out.double(), value.double(), SHAPES.cuda(), STARTS.cuda(),
                                    locations.double(), weights.double(), 64)
    for name, o, m, e in zip(('value', 'locations', 'weights'), ours, mmcv_fp16, exact):
        assert o.dtype == torch.float16, name
        assert (o.double() - e).abs().max() <= (m.double() - e).abs().max(), name
        # elementwise within fp16 rounding of the exact gradient (plus fp32 accumulation and fp16's subnormal
        # step): what an fp32 backward cast once gives, and fp16 accumulation does not guarantee
        assert ((o.double() - e).abs() <= 2.0 ** -11 * e.abs() + 1e-5 * e.abs().max() + 2.0 ** -24).all(), name


def test_switch_sets_the_backward_dtype_and_keeps_the_outputs():
    stock, _ = _pair()
    precise = copy.deepcopy(stock)
    assert make_deform_attn_traceable(precise, backward_dtype=torch.float64) == ['']
    assert precise.backward_dtype is torch.float64 and TraceableMultiScaleDeformableAttention.backward_dtype is None
    n = int((SHAPES[:, 0] * SHAPES[:, 1]).sum())
    query = torch.randn(2, n, 32)
    kwargs = dict(reference_points=torch.rand(2, n, 2, 2), spatial_shapes=SHAPES, level_start_index=STARTS)
    out_s, _, grads_s = _run(stock, query, False, **kwargs)
    out_p, _, grads_p = _run(precise, query, False, **kwargs)
    assert torch.equal(out_p, out_s)
    for name in grads_s:  # the same gradients up to the rounding of the attention's backward
        assert (grads_p[name] - grads_s[name]).abs().max() <= 1e-4 * grads_s[name].abs().max(), name
    assert any(not torch.equal(grads_p[n], grads_s[n]) for n in grads_s)  # (the float64 backward did run)


def test_a_given_backward_dtype_reaches_modules_switched_before_in_either_order():
    """CompileLayersHook switches (no dtype) and TraceableDeformAttnHook sets float32: whichever runs first, the
    modules end with float32; a later switch without a dtype keeps it."""
    stock, _ = _pair()
    first_plain = torch.nn.Sequential(copy.deepcopy(stock), copy.deepcopy(stock))
    assert make_deform_attn_traceable(first_plain) == ['0', '1']
    assert make_deform_attn_traceable(first_plain, backward_dtype=torch.float32) == []  # none switched now
    assert {m.backward_dtype for m in first_plain} == {torch.float32}
    first_dtype = torch.nn.Sequential(copy.deepcopy(stock), copy.deepcopy(stock))
    make_deform_attn_traceable(first_dtype, backward_dtype=torch.float32)
    make_deform_attn_traceable(first_dtype)
    assert {m.backward_dtype for m in first_dtype} == {torch.float32}


def test_switch_keeps_parameters_and_only_touches_mmcv_modules():
    stock, _ = _pair()
    model = torch.nn.Sequential(copy.deepcopy(stock), torch.nn.Linear(2, 2), copy.deepcopy(stock))
    keys = model.state_dict().keys()
    assert make_deform_attn_traceable(model) == ['0', '2']
    assert make_deform_attn_traceable(model) == []  # switched already
    assert type(model[1]) is torch.nn.Linear and model.state_dict().keys() == keys


def test_wrong_reference_points_say_what_they_must_be():
    _, traceable = _pair()
    query = torch.randn(2, 26, 32)
    with pytest.raises(ValueError, match='must end in 2 .points. or 4 .boxes., not 3'):
        traceable(query, reference_points=torch.rand(2, 26, 2, 3), spatial_shapes=SHAPES, level_start_index=STARTS)


def test_compiles_into_one_graph():
    """Dynamo traces the whole forward, the operator included (fullgraph raises on any graph break)."""
    _, traceable = _pair()
    torch._dynamo.reset()
    compiled = torch.compile(traceable, backend='aot_eager', fullgraph=True)
    query = torch.randn(2, 26, 32)
    kwargs = dict(reference_points=torch.rand(2, 26, 2, 2), spatial_shapes=SHAPES, level_start_index=STARTS)
    assert torch.equal(compiled(query, **kwargs), traceable(query, **kwargs))
