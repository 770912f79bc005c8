"""The plain-torch BatchFormerV2 layer (mmdet_plugins/batchformer/layer.py)."""
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from helpers import REPO
from mmdet_plugins.batchformer.layer import BatchFormerV2Layer, batch_attention_mask, check_insert_idx, repeat_batch


def reference_layer_from(layer: BatchFormerV2Layer) -> nn.TransformerEncoderLayer:
    """torch's own TransformerEncoderLayer with the same weights (what the official code uses)."""
    ref = nn.TransformerEncoderLayer(layer.embed_dims, layer.num_heads, layer.feedforward_channels,
                                     dropout=layer.dropout)
    ref.self_attn.in_proj_weight.data.copy_(layer.in_proj.weight)
    ref.self_attn.in_proj_bias.data.copy_(layer.in_proj.bias)
    ref.self_attn.out_proj.weight.data.copy_(layer.out_proj.weight)
    ref.self_attn.out_proj.bias.data.copy_(layer.out_proj.bias)
    ref.linear1.load_state_dict(layer.ffn[0].state_dict())
    ref.linear2.load_state_dict(layer.ffn[3].state_dict())
    ref.norm1.load_state_dict(layer.norm1.state_dict())
    ref.norm2.load_state_dict(layer.norm2.state_dict())
    return ref


def test_defaults_match_official():
    layer = BatchFormerV2Layer()
    assert (layer.embed_dims, layer.num_heads, layer.feedforward_channels, layer.dropout) == (256, 4, 256, 0.5)


def test_matches_torch_encoder_layer_over_batch_axis():
    torch.manual_seed(0)
    layer = BatchFormerV2Layer(embed_dims=32, num_heads=4, feedforward_channels=48, dropout=0.5).eval()
    ref = reference_layer_from(layer).eval()
    x = torch.randn(5, 7, 32)  # (B, N, C)
    # official form: sequence axis = batch, "batch" axis = token positions, (B, N, C) with batch_first=False
    expected = ref(x)
    assert torch.allclose(layer(x), expected, atol=1e-5)


def test_attention_runs_across_batch_not_positions():
    torch.manual_seed(0)
    layer = BatchFormerV2Layer(embed_dims=16, num_heads=2, feedforward_channels=16, dropout=0.0).eval()
    x = torch.randn(3, 6, 16)
    y = layer(x)
    x2 = x.clone()
    x2[2, 4] += 1.0  # image 2, position 4
    y2 = layer(x2)
    changed = (y2 - y).abs().sum(-1) > 1e-6  # (B, N)
    assert changed[:, 4].all(), 'every image at the changed position must see the change'
    changed[:, 4] = False
    assert not changed.any(), 'other positions must not see it'


def test_padding_mask_isolates_padded_tokens():
    torch.manual_seed(0)
    layer = BatchFormerV2Layer(embed_dims=16, num_heads=2, feedforward_channels=16, dropout=0.0).eval()
    x = torch.randn(3, 5, 16)
    pad = torch.zeros(3, 5, dtype=torch.bool)
    pad[1, 3:] = True  # image 1 is padded at positions 3, 4
    y = layer(x, pad)
    assert torch.equal(y[1, 3:], x[1, 3:]), 'a padded token passes through unchanged'
    x2 = x.clone()
    x2[1, 3:] = torch.randn(2, 16) * 100
    y2 = layer(x2, pad)
    assert torch.allclose(y2[[0, 2]], y[[0, 2]]), 'padded tokens of image 1 must not reach other images'
    x3 = x.clone()
    x3[1, 0] += 1.0  # a real token of image 1
    assert not torch.allclose(layer(x3, pad)[0, 0], y[0, 0]), 'real tokens must reach other images'
    # without the mask the official behaviour leaks the padded tokens
    assert not torch.allclose(layer(x2)[0, 3:], layer(x)[0, 3:])


def test_fully_padded_position_gives_no_nan():
    layer = BatchFormerV2Layer(embed_dims=8, num_heads=2, feedforward_channels=8).train()
    x = torch.randn(2, 4, 8, requires_grad=True)
    pad = torch.zeros(2, 4, dtype=torch.bool)
    pad[:, 2] = True  # every image padded at position 2 (pad_size_divisor can do this)
    y = layer(x, pad)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()


def test_batch_attention_mask():
    pad = torch.tensor([[False, True], [False, False], [True, True]])  # (B=3, N=2)
    m = batch_attention_mask(pad)
    assert m.shape == (2, 1, 3, 3)
    assert m[0, 0].tolist() == [[True, True, False], [True, True, False], [False, False, True]]
    assert m[1, 0].tolist() == [[True, False, False], [False, True, False], [False, False, True]]


def test_gradients_flow_and_dropout_is_random_in_training():
    layer = BatchFormerV2Layer(embed_dims=16, num_heads=4, feedforward_channels=16, dropout=0.5).train()
    x = torch.randn(4, 3, 16, requires_grad=True)
    a, b = layer(x), layer(x)
    assert not torch.allclose(a, b)
    a.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in layer.parameters())


@pytest.mark.parametrize('kwargs, message', [
    (dict(embed_dims=30, num_heads=4), 'divisible'),
    (dict(dropout=1.0), 'dropout'),
])
def test_bad_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BatchFormerV2Layer(**kwargs)


def test_bad_input_shapes():
    layer = BatchFormerV2Layer(embed_dims=8, num_heads=2, feedforward_channels=8)
    with pytest.raises(ValueError, match=r'\(B, N, 8\)'):
        layer(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match='padding_mask'):
        layer(torch.randn(2, 3, 8), torch.zeros(3, 2, dtype=torch.bool))


def test_check_insert_idx():
    assert check_insert_idx([3, 0], 6) == [0, 3]
    with pytest.raises(ValueError, match=r'valid indices are 0\.\.5'):
        check_insert_idx([6], 6)
    with pytest.raises(ValueError, match='out of range'):
        check_insert_idx([-1], 6)
    with pytest.raises(ValueError, match='repeats'):
        check_insert_idx([1, 1], 6)
    with pytest.raises(ValueError, match='empty'):
        check_insert_idx([], 6)


def test_repeat_batch():
    t = torch.arange(4).view(2, 2)
    assert repeat_batch(t).tolist() == [[0, 1], [2, 3], [0, 1], [2, 3]]
    assert repeat_batch(None) is None
    assert repeat_batch([1, 2]) == [1, 2, 1, 2]
    with pytest.raises(TypeError):
        repeat_batch(3)


def test_core_does_not_import_mmdet():
    """The core files (layer.py and global_batch.py) load with mmdet, mmcv and mmengine made unimportable."""
    folder = os.path.join(REPO, 'mmdet_plugins', 'batchformer')
    code = ('import sys, types\n'
            'for m in ("mmdet", "mmcv", "mmengine"): sys.modules[m] = None\n'
            f'pkg = types.ModuleType("bfcore"); pkg.__path__ = [r"{folder}"]; sys.modules["bfcore"] = pkg\n'
            'import bfcore.layer as mod\n'
            'import torch; print(mod.BatchFormerV2Layer(global_batch=True)(torch.randn(2, 3, 256)).shape)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'torch.Size([2, 3, 256])' in out.stdout


def test_non_finite_padded_tokens_do_not_leak():
    layer = BatchFormerV2Layer(embed_dims=8, num_heads=2, feedforward_channels=8, dropout=0.0).eval()
    x = torch.randn(2, 3, 8)
    pad = torch.zeros(2, 3, dtype=torch.bool)
    pad[1, 0] = True
    x[1, 0] = float('nan')
    y = layer(x, pad)
    assert torch.isfinite(y[0]).all() and torch.isfinite(y[1, 1:]).all()
