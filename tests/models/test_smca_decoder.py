"""SMCA's spatially modulated co-attention (mmdet_plugins/models/smca_decoder.py): the prior does what it claims on
the real cross-attention weights, and the decoder's shapes, centres and padding."""
import math

import pytest
import torch

from mmdet_plugins.models.smca_decoder import (SMCATransformerDecoder, cell_grid, spatial_log_weights,
                                               valid_extent)

H, W, HEADS, DIMS = 8, 10, 4, 32


def _decoder(num_layers=2, beta=8.0):
    layer = dict(self_attn_cfg=dict(embed_dims=DIMS, num_heads=HEADS, dropout=0.0, batch_first=True),
                 cross_attn_cfg=dict(embed_dims=DIMS, num_heads=HEADS, dropout=0.0, batch_first=True),
                 ffn_cfg=dict(embed_dims=DIMS, feedforward_channels=64, num_fcs=2, ffn_drop=0.0,
                              act_cfg=dict(type='ReLU', inplace=True)))
    torch.manual_seed(0)
    return SMCATransformerDecoder(num_layers=num_layers, layer_cfg=layer, beta=beta).eval()


def _cross_attention_weights(decoder, query, key, centers, inv_scales):
    """The first layer's cross-attention weights ``(B, heads, Q, HW)`` with SMCA's prior for the given centres
    and inverse scales ``(B, Q, heads, 2)`` (in cells), through the layer's own attention module."""
    attn = decoder.layers[0].cross_attn.attn
    log_w = spatial_log_weights(centers, inv_scales, cell_grid(H, W), decoder.beta)
    B, Q = query.shape[:2]
    _, weights = attn(query.transpose(0, 1), key.transpose(0, 1), key.transpose(0, 1),
                      attn_mask=log_w.reshape(B * HEADS, Q, -1), need_weights=True, average_attn_weights=False)
    return weights


def _mass_near(weights, centers, radius):
    """Share of each (image, head, query)'s attention on cells within ``radius`` cells of its centre."""
    grid = cell_grid(H, W)
    dist = (grid[None, None] - centers.unsqueeze(3)).norm(dim=-1)  # (B, Q, heads, HW)
    near = (dist <= radius).permute(0, 2, 1, 3).float()  # (B, heads, Q, HW)
    return (weights * near).sum(-1)


def test_small_scale_concentrates_attention_at_the_centre():
    decoder = _decoder()
    torch.manual_seed(1)
    B, Q = 2, 5
    query, key = torch.randn(B, Q, DIMS), torch.randn(B, H * W, DIMS)
    centers = torch.rand(B, Q, HEADS, 2) * torch.tensor([W, H])
    with torch.no_grad():
        small = _cross_attention_weights(decoder, query, key, centers, torch.full((B, Q, HEADS, 2), 1 / 0.1))
        unmodulated = _cross_attention_weights(decoder, query, key, centers, torch.zeros(B, Q, HEADS, 2))
    near_small = _mass_near(small, centers, radius=1.5)
    assert near_small.min() > 0.99, 'a scale of 0.1 cell must put (nearly) all the mass within 1.5 cells'
    assert _mass_near(unmodulated, centers, radius=1.5).max() < 0.5, 'control: without the prior it does not'
    # the most attended cell is the one nearest each head's centre
    nearest = (cell_grid(H, W)[None, None, None] - centers.unsqueeze(3)).norm(dim=-1).argmin(-1)
    assert torch.equal(small.argmax(-1), nearest.permute(0, 2, 1))


def test_very_large_scale_matches_unmodulated_attention():
    decoder = _decoder()
    torch.manual_seed(2)
    B, Q = 2, 5
    query, key = torch.randn(B, Q, DIMS), torch.randn(B, H * W, DIMS)
    centers = torch.rand(B, Q, HEADS, 2) * torch.tensor([W, H])
    attn = decoder.layers[0].cross_attn.attn
    with torch.no_grad():
        large = _cross_attention_weights(decoder, query, key, centers, torch.full((B, Q, HEADS, 2), 1e-4))
        _, plain = attn(query.transpose(0, 1), key.transpose(0, 1), key.transpose(0, 1), need_weights=True,
                        average_attn_weights=False)
    assert torch.allclose(large, plain, atol=1e-6)


def test_log_weights_are_the_papers_gaussian():
    centers = torch.tensor([[[[2.5, 1.5]]]])  # (1, 1, 1, 2): x, y in cells
    inv_scales = torch.tensor([[[[0.5, 2.0]]]])  # s_w = 2, s_h = 0.5
    grid = cell_grid(3, 4)
    log_w = spatial_log_weights(centers, inv_scales, grid, beta=8.0)[0, 0, 0]
    for k, (x, y) in enumerate(grid.tolist()):
        expected = -((x - 2.5) ** 2 / (8 * 2.0 ** 2) + (y - 1.5) ** 2 / (8 * 0.5 ** 2))
        assert math.isclose(log_w[k].item(), expected, rel_tol=1e-6, abs_tol=1e-7)
    far = spatial_log_weights(torch.full((1, 1, 1, 2), 1e6), torch.ones(1, 1, 1, 2), grid, beta=8.0)
    assert torch.isfinite(far).all() and far.min() == -1e4, 'clamped, so that fp16 rows never become all -inf'
    with pytest.raises(ValueError, match='beta'):
        spatial_log_weights(centers, inv_scales, grid, beta=0)


def test_cell_grid_and_valid_extent():
    grid = cell_grid(2, 3)
    assert grid.tolist() == [[0.5, 0.5], [1.5, 0.5], [2.5, 0.5], [0.5, 1.5], [1.5, 1.5], [2.5, 1.5]]
    mask = torch.ones(2, 2, 3, dtype=torch.bool)
    mask[0, :2, :3] = False  # image 0: whole map
    mask[1, :1, :2] = False  # image 1: 2 cells wide, 1 high
    assert valid_extent(mask.view(2, -1), 2, 2, 3).tolist() == [[3.0, 2.0], [2.0, 1.0]]
    assert valid_extent(None, 2, 2, 3).tolist() == [[3.0, 2.0], [3.0, 2.0]]


def test_decoder_outputs_shapes_centres_and_ignores_padding():
    decoder = _decoder(num_layers=3)
    decoder.reset_spatial_parameters()
    torch.manual_seed(3)
    B, Q = 2, 6
    query_pos = torch.randn(B, Q, DIMS)
    key, key_pos = torch.randn(B, H * W, DIMS), torch.randn(B, H * W, DIMS)
    mask = torch.zeros(B, H, W, dtype=torch.bool)
    mask[1, :, 6:] = True  # image 1 is padded on the right
    with torch.no_grad():
        hidden, refs = decoder(torch.zeros(B, Q, DIMS), key, key, query_pos, key_pos, mask.view(B, -1), (H, W))
        assert hidden.shape == (3, B, Q, DIMS) and refs.shape == (B, Q, 2)
        assert torch.allclose(refs, decoder.center_mlp(decoder.spatial_norms[0](query_pos)).sigmoid())
        # changing the padded memory of image 1 changes nothing
        key2 = key.clone().view(B, H, W, DIMS)
        key2[1, :, 6:] = 100.0
        key2 = key2.view(B, H * W, DIMS)
        hidden2, _ = decoder(torch.zeros(B, Q, DIMS), key2, key2, query_pos, key_pos, mask.view(B, -1), (H, W))
    assert torch.allclose(hidden, hidden2, atol=1e-5)
    with pytest.raises(ValueError, match='spatial_shape'):
        decoder(torch.zeros(B, Q, DIMS), key, key, query_pos, key_pos, None, (H, W + 1))


def test_spatial_parameters_start_at_the_shared_centre_with_unit_scale():
    decoder = _decoder()
    for fc in decoder.offset_fcs:
        assert fc.weight.abs().sum() == 0 and fc.bias.abs().sum() == 0
    for fc in decoder.inv_scale_fcs:
        assert fc.weight.abs().sum() == 0 and torch.equal(fc.bias, torch.ones_like(fc.bias))
    with pytest.raises(ValueError, match='beta'):
        _decoder(beta=-1.0)
