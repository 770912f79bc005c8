"""DETR's mask head on the CPU: shapes, the attention against a direct computation, which inputs each mask
depends on, and the losses against hand-computed values."""
import math

import pytest
import torch

from mmdet_plugins.panoptic.mask_head import (QueryMemoryAttention, SmallConvMaskHead, mask_dice_loss,
                                              mask_focal_loss)


def test_attention_matches_a_direct_computation_and_ignores_padding():
    torch.manual_seed(0)
    b, q, c, m, h, w = 2, 3, 16, 4, 5, 6
    att = QueryMemoryAttention(c, c, m).eval()
    query, memory = torch.randn(b, q, c), torch.randn(b, c, h, w)
    pad = torch.zeros(b, h, w, dtype=torch.bool)
    pad[1, :, 4:] = True  # image 1 is padded on the right
    out = att(query, memory, pad)
    assert out.shape == (b, q, m, h, w)
    d = c // m
    for i in range(b):
        for j in range(q):
            qv = att.q_proj(query[i, j]).view(m, d)
            keys = (att.k_proj.weight @ memory[i].flatten(1) + att.k_proj.bias[:, None]).view(m, d, h * w)
            logits = torch.einsum('md,mdp->mp', qv, keys) / math.sqrt(d)
            logits[:, pad[i].flatten()] = float('-inf')
            expected = logits.flatten().softmax(0).view(m, h, w)
            torch.testing.assert_close(out[i, j], expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.flatten(2).sum(-1), torch.ones(b, q))
    assert out[1, :, :, :, 4:].abs().max() == 0


def test_attention_rejects_heads_that_do_not_divide():
    with pytest.raises(ValueError, match='not divisible'):
        QueryMemoryAttention(16, 18, 4)


def r18_head():
    return SmallConvMaskHead(context_dims=128, num_heads=8, fpn_dims=(256, 128, 64)).eval()


def inputs(b=2, q=3, h=4, w=5):
    torch.manual_seed(1)
    return (torch.randn(b, 128, h, w), torch.rand(b, q, 8, h, w),
            [torch.randn(b, 256, 2 * h, 2 * w), torch.randn(b, 128, 4 * h, 4 * w), torch.randn(b, 64, 8 * h, 8 * w)])


def test_mask_head_gives_one_stride_4_map_per_query():
    context, attention, feats = inputs()
    out = r18_head()(context, attention, feats)
    assert out.shape == (2, 3, 32, 40)
    assert torch.isfinite(out).all()


def test_each_mask_depends_on_its_own_image_and_query_only():
    head = r18_head()
    context, attention, feats = inputs()
    out = head(context, attention, feats)
    feats2 = [f.clone() for f in feats]
    feats2[2][1] += 5.0  # image 1's C2 changes
    out2 = head(context, attention, feats2)
    torch.testing.assert_close(out2[0], out[0])
    assert (out2[1] - out[1]).abs().max() > 1e-3
    attention3 = attention.clone()
    attention3[0, 2] = torch.rand_like(attention3[0, 2])  # query 2 of image 0 changes
    out3 = head(context, attention3, feats)
    torch.testing.assert_close(out3[:, :2], out[:, :2])
    torch.testing.assert_close(out3[1], out[1])
    assert (out3[0, 2] - out[0, 2]).abs().max() > 1e-3


def test_query_sets_and_chosen_maps_read_the_images_named():
    head = r18_head()
    context, attention, feats = inputs()
    out = head(context, attention, feats)
    # two query sets per image (a two-stream pass): each set of image b reads image b's features
    twice = head(context, torch.cat([attention, attention]), feats, image_index=torch.tensor([0, 1, 0, 1]))
    assert torch.equal(twice, torch.cat([out, out]))
    chosen = head(context, attention[[1, 0], [2, 0]], feats, image_index=torch.tensor([1, 0]))  # (N, M, h, w)
    torch.testing.assert_close(chosen, out[[1, 0], [2, 0]])
    with pytest.raises(ValueError, match='need the image_index'):
        head(context, attention[0], feats)


def test_mask_head_checks_its_sizes():
    with pytest.raises(ValueError, match='3 levels'):
        SmallConvMaskHead(128, 8, (256, 128))
    with pytest.raises(ValueError, match='multiple of 128'):
        SmallConvMaskHead(96, 8, (256, 128, 64))


def test_focal_loss_is_detrs_mean_over_pixels_sum_over_masks():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 1.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    p = torch.sigmoid(logits)
    expected = 0.0
    for i in range(2):
        per_pixel = []
        for j in range(2):
            t, pj = targets[i, j].item(), p[i, j].item()
            p_t = pj if t else 1 - pj
            a = 0.25 if t else 0.75
            per_pixel.append(-a * (1 - p_t) ** 2 * math.log(p_t))
        expected += sum(per_pixel) / 2
    got = mask_focal_loss(logits, targets, num_masks=4.0)
    assert got.item() == pytest.approx(expected / 4.0, rel=1e-5)


def test_dice_loss_by_hand_and_near_zero_for_a_perfect_mask():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0]])  # p = 0.5 everywhere
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    # 1 - (2 * 1 + 1) / (2 + 2 + 1) = 0.4
    assert mask_dice_loss(logits, targets, num_masks=2.0).item() == pytest.approx(0.2)
    perfect = torch.tensor([[30.0, 30.0, -30.0, -30.0]])
    assert mask_dice_loss(perfect, targets, num_masks=1.0).item() == pytest.approx(0.0, abs=1e-6)
