"""The layer's ablation options against a direct computation: attention within groups of the batch equals the
layer run on each group as a batch of its own; the unmasked option equals torch's TransformerEncoderLayer over the
batch axis, padding or not; invalid group sizes fail clearly."""
import pytest
import torch

from mmdet_plugins.batchformer.layer import BatchFormerV2Layer
from test_layer import reference_layer_from


def layers(**options):
    torch.manual_seed(0)
    plain = BatchFormerV2Layer(embed_dims=32, num_heads=4, feedforward_channels=48, dropout=0.5).eval()
    other = BatchFormerV2Layer(embed_dims=32, num_heads=4, feedforward_channels=48, dropout=0.5, **options).eval()
    other.load_state_dict(plain.state_dict())
    return plain, other


@pytest.mark.parametrize('g', [1, 2, 4, 8])
def test_groups_equal_the_layer_on_each_group_alone(g):
    plain, grouped = layers(group_size=g)
    x = torch.randn(8, 6, 32)
    direct = torch.cat([plain(x[i:i + g]) for i in range(0, 8, g)])
    assert torch.allclose(grouped(x), direct, atol=1e-5)
    if g < 8:
        assert not torch.allclose(grouped(x), plain(x), atol=1e-4)


def test_groups_with_padding_equal_each_group_alone():
    plain, grouped = layers(group_size=2)
    x = torch.randn(4, 5, 32)
    mask = torch.zeros(4, 5, dtype=torch.bool)
    mask[1, 3:] = True
    mask[2, 4:] = True
    direct = torch.cat([plain(x[i:i + 2], mask[i:i + 2]) for i in (0, 2)])
    assert torch.allclose(grouped(x, mask), direct, atol=1e-5)


def test_a_group_never_sees_another_group_in_training():
    _, grouped = layers(group_size=2)
    grouped.train()
    x = torch.randn(4, 3, 32)
    y = x.clone()
    y[3] += 1.0
    torch.manual_seed(5)
    a = grouped(x)
    torch.manual_seed(5)
    b = grouped(y)
    assert torch.equal(a[:2], b[:2]) and not torch.allclose(a[2], b[2])


def test_unmasked_option_is_the_official_computation_padding_or_not():
    plain, unmasked = layers(padding_aware=False)
    ref = reference_layer_from(unmasked).eval()
    x = torch.randn(5, 7, 32)
    mask = torch.zeros(5, 7, dtype=torch.bool)
    mask[0, 4:] = True
    assert torch.allclose(unmasked(x, mask), ref(x), atol=1e-5)  # the mask is ignored
    assert not torch.allclose(plain(x, mask), ref(x), atol=1e-4)  # the default masks padded tokens
    assert torch.allclose(plain(x), ref(x), atol=1e-5)  # and equals it without padding


@pytest.mark.parametrize('bad', [0, -2, 1.5, True, '4'])
def test_an_invalid_group_size_fails_at_build(bad):
    with pytest.raises(ValueError, match='group_size must be a whole number >= 1'):
        BatchFormerV2Layer(embed_dims=32, group_size=bad)


def test_a_group_size_that_does_not_divide_the_batch_fails_at_the_first_step():
    layer = BatchFormerV2Layer(embed_dims=32, group_size=3)
    with pytest.raises(ValueError, match='a batch of 8 images cannot be split into groups of group_size=3'):
        layer(torch.randn(8, 2, 32))
    with pytest.raises(ValueError, match='cannot be combined'):
        BatchFormerV2Layer(embed_dims=32, group_size=2, global_batch=True)
