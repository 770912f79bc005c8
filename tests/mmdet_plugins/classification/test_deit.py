"""BatchFormerV2 on DeiT (mmdet_plugins/classification/deit.py): two-stream shapes, which stream depends on which
images, eval parity with mmpretrain's VisionTransformer, the released mode, the classifier's repeated targets, and
clear errors."""
import pytest
import torch

pytest.importorskip('mmpretrain')
from mmpretrain.models.backbones import VisionTransformer  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402

import mmdet_plugins.classification  # noqa: E402,F401
from mmdet_plugins.classification.deit import BFVisionTransformer  # noqa: E402

VIT = dict(arch='deit-tiny', img_size=28, patch_size=4, in_channels=1)


def backbone(mode='two_stream', insert_idx=(8, ), dropout=0.0, shared=True):
    torch.manual_seed(0)
    return BFVisionTransformer(**VIT, batchformer=dict(insert_idx=list(insert_idx), mode=mode, dropout=dropout,
                                                       shared=shared))


def trained(m):
    """``m`` in training mode (mmpretrain's backbones' ``train()`` returns None)."""
    m.train()
    return m


def evaluating(m):
    m.eval()
    return m


def images(b=4, seed=1):
    return torch.randn(b, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_two_stream_doubles_the_batch_after_the_insertion_point():
    m = trained(backbone())
    (cls, ) = m(images(4))
    assert cls.shape == (8, 192)
    assert evaluating(m)(images(4))[0].shape == (4, 192)


def test_plain_stream_is_independent_of_the_other_images_and_the_second_stream_is_not():
    m = trained(backbone())
    x = images(4)
    y = x.clone()
    y[1] += 1.0  # change image 1 only
    a, b = m(x)[0], m(y)[0]
    assert torch.equal(a[0], b[0]) and torch.equal(a[2:4], b[2:4])  # plain stream: images 0, 2, 3 unchanged
    assert not torch.allclose(a[4], b[4])  # second stream: image 0 sees image 1 through the module
    assert not torch.allclose(a[1], b[1])


def test_plain_stream_equals_the_baseline_in_training():
    m = trained(backbone())
    plain = trained(VisionTransformer(**VIT))
    missing = plain.load_state_dict(m.state_dict(), strict=False)
    assert not missing.missing_keys and all(k.startswith('batchformer.') for k in missing.unexpected_keys)
    x = images(4)
    assert torch.equal(m(x)[0][:4], plain(x)[0])  # (no dropout in DeiT-T's blocks: deterministic)


def test_eval_is_exactly_the_plain_model():
    m = evaluating(backbone(dropout=0.5))
    plain = evaluating(VisionTransformer(**VIT))
    plain.load_state_dict(m.state_dict(), strict=False)
    x = images(4)
    assert torch.equal(m(x)[0], plain(x)[0])


def test_later_insertions_touch_the_second_stream_only():
    m = trained(backbone(insert_idx=(8, 10), shared=False))
    assert len(m.batchformer) == 2
    x = images(3)
    y = x.clone()
    y[2] -= 1.0
    a, b = m(x)[0], m(y)[0]
    assert a.shape == (6, 192) and torch.equal(a[:2], b[:2]) and not torch.allclose(a[3], b[3])


def test_released_mode_replaces_the_batch():
    m = trained(backbone(mode='released'))
    x = images(4)
    y = x.clone()
    y[1] += 1.0
    a, b = m(x)[0], m(y)[0]
    assert a.shape == (4, 192)
    assert not torch.allclose(a[0], b[0])  # no plain stream: every image sees the others


def test_off_mode_builds_no_module():
    m = backbone(mode='off')
    assert not hasattr(m, 'batchformer') and trained(m)(images(2))[0].shape == (2, 192)


def test_errors_are_clear():
    with pytest.raises(ValueError, match=r'valid indices are 0\.\.11'):
        backbone(insert_idx=(12, ))
    with pytest.raises(ValueError, match='mode'):
        backbone(mode='twostream')
    with pytest.raises(ValueError, match='unknown keys'):
        BFVisionTransformer(**VIT, batchformer=dict(insert_index=[8]))


def classifier(mode='two_stream', mixup=False):
    cfg = dict(type='BFImageClassifier',
               data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=10, mean=[0.0], std=[1.0]),
               backbone=dict(type='BFVisionTransformer', **VIT, batchformer=dict(insert_idx=[8], mode=mode)),
               head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=192,
                         loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))
    if mixup:
        cfg['train_cfg'] = dict(augments=[dict(type='Mixup', alpha=0.8)])
    torch.manual_seed(0)
    return MODELS.build(cfg)


def batch(b=4):
    return dict(inputs=torch.randint(0, 256, (b, 1, 28, 28), dtype=torch.uint8),
                data_samples=[DataSample().set_gt_label(i % 10) for i in range(b)])


@pytest.mark.parametrize('mixup', [False, True])
def test_classifier_repeats_labels_and_soft_targets_for_the_second_stream(mixup, monkeypatch):
    model = trained(classifier(mixup=mixup))
    seen = {}
    real = model.head.loss

    def spy(feats, samples):
        seen['n_feats'], seen['samples'] = feats[-1].size(0), samples
        return real(feats, samples)
    monkeypatch.setattr(model.head, 'loss', spy)
    data = model.data_preprocessor(batch(4), training=True)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss'])
    samples = seen['samples']
    assert seen['n_feats'] == 8 and len(samples) == 8 and all(samples[i] is samples[i + 4] for i in range(4))
    if mixup:  # the soft Mixup targets travel with the repeated samples
        scores = torch.stack([s.gt_score for s in samples])
        assert torch.equal(scores[:4], scores[4:]) and (scores.max(1).values < 1).any()


def test_classifier_loss_is_the_mean_over_both_streams():
    model = trained(classifier())
    data = model.data_preprocessor(batch(4), training=True)
    torch.manual_seed(3)
    loss = model(**data, mode='loss')['loss']
    torch.manual_seed(3)
    feats = model.extract_feat(data['inputs'])
    plain = model.head.loss((feats[-1][:4], ), data['data_samples'])['loss']
    second = model.head.loss((feats[-1][4:], ), data['data_samples'])['loss']
    assert torch.allclose(loss, (plain + second) / 2, atol=1e-6)


def test_released_classifier_keeps_the_batch_and_eval_predicts_b():
    model = trained(classifier(mode='released'))
    data = model.data_preprocessor(batch(4), training=True)
    assert model.extract_feat(data['inputs'])[-1].shape == (4, 192)
    assert torch.isfinite(model(**data, mode='loss')['loss'])
    model.eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(batch(4), training=False), mode='predict')
    assert len(preds) == 4 and preds[0].pred_score.shape == (10, )


def test_classifier_refuses_a_feature_count_it_cannot_pair():
    model = trained(classifier())
    data = model.data_preprocessor(batch(4), training=True)
    with pytest.raises(RuntimeError, match='returned 8 features for 3 samples'):
        model.loss(data['inputs'], data['data_samples'][:3])


def test_init_weights_leaves_the_module_with_its_own_initialisation():
    """The classifier's init_cfg (truncated normal for every Linear) does not reach the BatchFormerV2 layer: it keeps
    nn.MultiheadAttention's init (zero biases, Xavier input projection), as the official module built after DeiT's."""
    cfg = dict(type='BFImageClassifier', init_cfg=[dict(type='TruncNormal', layer='Linear', std=.02)],
               backbone=dict(type='BFVisionTransformer', **VIT, batchformer=dict(insert_idx=[8])),
               head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=192))
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    bf = model.backbone.batchformer
    assert torch.count_nonzero(bf.in_proj.bias) == 0 and torch.count_nonzero(bf.out_proj.bias) == 0
    bound = (6 / (192 + 3 * 192)) ** 0.5  # xavier_uniform_ on the (3C, C) input projection
    assert bf.in_proj.weight.abs().max() <= bound and bf.in_proj.weight.std() > 0.8 * bound / 3 ** 0.5
    assert model.backbone.layers[0].attn.qkv.weight.std() < 0.03  # the ViT's own layers: truncated normal 0.02
