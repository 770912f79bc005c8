"""SMCA's spatially modulated co-attention (mmdet_plugins/smca_detr/decoder.py): the prior does what it claims on
the real cross-attention weights, and the decoder's shapes, centres and padding."""
import math

import pytest
import torch

from mmdet_plugins.smca_detr.decoder import (SMCATransformerDecoder, attention_bias, cell_grid,
                                               spatial_log_weights, valid_extent)

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
    log_w = attention_bias(spatial_log_weights(centers, inv_scales, cell_grid(H, W), decoder.beta))
    B, Q = query.shape[:2]
    _, weights = attn(query.transpose(0, 1), key.transpose(0, 1), key.transpose(0, 1),
                      attn_mask=log_w.reshape(B * HEADS, Q, -1), need_weights=True, average_attn_weights=False)
    return weights


def _random_inputs(seed, B=2, Q=5):
    """Queries ``(B, Q, C)``, memory ``(B, HW, C)`` and per-head centres ``(B, Q, heads, 2)`` on the map."""
    torch.manual_seed(seed)
    query, key = torch.randn(B, Q, DIMS), torch.randn(B, H * W, DIMS)
    return query, key, torch.rand(B, Q, HEADS, 2) * torch.tensor([W, H])


def _cell_distances(centers):
    """``(B, heads, Q, HW)`` distance of every cell centre to each head's centre ``(B, Q, heads, 2)``."""
    return (cell_grid(H, W)[None, None] - centers.unsqueeze(3)).norm(dim=-1).permute(0, 2, 1, 3)


def _mass_near(weights, centers, radius):
    """Share of each (image, head, query)'s attention on cells within ``radius`` cells of its centre."""
    return (weights * (_cell_distances(centers) <= radius).float()).sum(-1)


def test_small_scale_concentrates_attention_at_the_centre():
    decoder = _decoder()
    query, key, centers = _random_inputs(seed=1)
    B, Q = query.shape[:2]
    with torch.no_grad():
        small = _cross_attention_weights(decoder, query, key, centers, torch.full((B, Q, HEADS, 2), 1 / 0.1))
        unmodulated = _cross_attention_weights(decoder, query, key, centers, torch.zeros(B, Q, HEADS, 2))
    near_small = _mass_near(small, centers, radius=1.5)
    assert near_small.min() > 0.99, 'a scale of 0.1 cell must put (nearly) all the mass within 1.5 cells'
    assert _mass_near(unmodulated, centers, radius=1.5).max() < 0.5, 'control: without the prior it does not'
    # the most attended cell is the one nearest each head's centre
    assert torch.equal(small.argmax(-1), _cell_distances(centers).argmin(-1))


def test_very_large_scale_matches_unmodulated_attention():
    decoder = _decoder()
    query, key, centers = _random_inputs(seed=2)
    B, Q = query.shape[:2]
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
    with pytest.raises(ValueError, match='beta'):
        spatial_log_weights(centers, inv_scales, grid, beta=0)


def test_attention_bias_shifts_rows_clamps_and_masks_padding():
    grid = cell_grid(3, 4)
    # a centre 100 cells off the map: every entry below the floor, but the prior's shape is intact after the shift
    far = spatial_log_weights(torch.tensor([[[[-100.0, 1.5]]]]), torch.full((1, 1, 1, 2), 3.0), grid, beta=8.0)
    assert far.max() < -1e4
    bias = attention_bias(far)
    assert bias.max() == 0 and torch.allclose(bias, far - far.max()), 'a softmax-invariant shift, nothing clamped'
    # a very narrow one: all but the best cells hit the floor, which stays finite (fp16 rows never all -inf)
    narrow = attention_bias(spatial_log_weights(torch.tensor([[[[0.5, 0.5]]]]), torch.full((1, 1, 1, 2), 100.0),
                                                grid, beta=8.0))
    assert narrow.max() == 0 and narrow.min() == -1e4 and torch.isfinite(narrow).all()
    pad = torch.zeros(1, 12, dtype=torch.bool)
    pad[0, 8:] = True  # the last row of the map is padding
    masked = attention_bias(far, pad)
    assert torch.isinf(masked[..., 8:]).all() and torch.isfinite(masked[..., :8]).all()
    assert masked[..., :8].max() == 0, 'shifted by the best valid cell, not by a padded one'


def test_decoder_passes_the_prior_of_each_head_to_each_layer():
    """Record the mask each layer's cross-attention receives, with heads that differ (random offset and scale
    layers), a non-square map and padding that differs per image, and compare with the formula."""
    decoder = _decoder(num_layers=2)
    torch.manual_seed(4)
    for fc in list(decoder.offset_fcs) + list(decoder.inv_scale_fcs):
        torch.nn.init.normal_(fc.weight, std=0.3)
        torch.nn.init.normal_(fc.bias, std=0.5)
    B, Q = 2, 3
    query_pos = torch.randn(B, Q, DIMS)
    key, key_pos = torch.randn(B, H * W, DIMS), torch.randn(B, H * W, DIMS)
    mask = torch.zeros(B, H, W, dtype=torch.bool)
    mask[1, 5:, :] = True  # image 1: 5 rows
    mask[1, :, 7:] = True  # and 7 columns
    recorded = []
    for layer in decoder.layers:
        attn = layer.cross_attn.attn
        original = attn.forward

        def record(*args, _original=original, **kwargs):
            recorded.append((kwargs['attn_mask'].clone(), kwargs.get('key_padding_mask')))
            return _original(*args, **kwargs)
        attn.forward = record
    query = torch.zeros(B, Q, DIMS)
    with torch.no_grad():
        decoder(query, key, key, query_pos, key_pos, mask.view(B, -1), (H, W))
        refs = decoder.center_mlp(decoder.spatial_norms[0](query_pos)).sigmoid()
        extent = torch.tensor([[W, H], [7.0, 5.0]])
        assert len(recorded) == 2
        for n, (attn_mask, key_padding_mask) in enumerate(list(recorded)):  # (replaying a layer records again)
            assert key_padding_mask is None, 'padding travels in the float mask'
            spatial_in = decoder.spatial_norms[n](query + query_pos)
            centers = (refs * extent[:, None]).unsqueeze(2) + decoder.offset_fcs[n](spatial_in).view(B, Q, HEADS, 2)
            inv = decoder.inv_scale_fcs[n](spatial_in).view(B, Q, HEADS, 2)
            grid = cell_grid(H, W)
            for b in range(B):
                for h in range(HEADS):
                    d = grid[None] - centers[b, :, h, None]  # (Q, HW, 2)
                    expected = -(d.square() * inv[b, :, h, None].square()).sum(-1) / 8.0
                    expected = expected.masked_fill(mask[b].view(-1), float('-inf'))
                    expected = (expected - expected.amax(-1, keepdim=True)).clamp(min=-1e4)
                    expected = expected.masked_fill(mask[b].view(-1), float('-inf'))
                    got = attn_mask[b * HEADS + h]  # torch's (batch * heads) order
                    assert torch.equal(torch.isinf(got), torch.isinf(expected))
                    assert torch.allclose(got[~torch.isinf(got)], expected[~torch.isinf(expected)], atol=1e-4)
            query = decoder.layers[n](query, key=key, value=key, query_pos=query_pos, key_pos=key_pos,
                                      cross_attn_mask=attn_mask)


def test_detector_init_keeps_the_spatial_parameters():
    """DETR.init_weights puts xavier on every matrix of the decoder; SMCADETR (and BFSMCADETR) reset offsets
    and scales after it."""
    import sys
    sys.path.insert(0, 'tests')
    from helpers import DETECTOR_CONFIGS, load_config, shrink_model_cfg
    from mmdet.registry import MODELS
    from mmdet_plugins.utils.model_utils import quiet_init_weights
    for config in DETECTOR_CONFIGS['SMCADETR']:
        model = MODELS.build(shrink_model_cfg(load_config(config).model))
        for fc in model.decoder.inv_scale_fcs:
            torch.nn.init.normal_(fc.weight)
        quiet_init_weights(model)
        for fc in model.decoder.offset_fcs:
            assert fc.weight.abs().sum() == 0 and fc.bias.abs().sum() == 0
        for fc in model.decoder.inv_scale_fcs:
            assert fc.weight.abs().sum() == 0 and torch.equal(fc.bias, torch.ones_like(fc.bias))


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
