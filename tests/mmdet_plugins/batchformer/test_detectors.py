"""The five BatchFormerV2 detectors against their mmdet 3.3.0 bases (CPU, small models)."""
import warnings

import pytest
import torch

from helpers import DETECTORS, build_detector, make_batch, no_dropout, quiet_init_weights


def plain_copy_of(bf_model, name):
    """The plain mmdet detector with the BF model's weights (the BF module's weights are left out)."""
    plain = build_detector(name, bf=False)
    state = {k: v for k, v in bf_model.state_dict().items() if not k.startswith('batchformer.')}
    plain.load_state_dict(state, strict=True)
    return plain


def capture_hidden_states(model):
    """Record the decoder's output ((num_layers, bs, num_queries, C)) at every call."""
    records = []
    model.decoder.register_forward_hook(lambda mod, args, out: records.append(out[0] if isinstance(out, (tuple, list))
                                                                              else out))
    return records


@pytest.mark.parametrize('name', DETECTORS)
def test_eval_mode_equals_plain_detector(name):
    torch.manual_seed(0)
    bf = build_detector(name).eval()
    plain = plain_copy_of(bf, name).eval()
    inputs, samples = make_batch()
    with torch.no_grad():
        out_bf = bf.predict(inputs, [s.clone() for s in samples])
        out_plain = plain.predict(inputs, [s.clone() for s in samples])
    for a, b in zip(out_bf, out_plain):
        assert torch.equal(a.pred_instances.bboxes, b.pred_instances.bboxes)
        assert torch.equal(a.pred_instances.scores, b.pred_instances.scores)
        assert torch.equal(a.pred_instances.labels, b.pred_instances.labels)


@pytest.mark.parametrize('name', DETECTORS)
def test_two_stream_training_streams(name):
    torch.manual_seed(0)
    model = no_dropout(build_detector(name)).train()
    records = capture_hidden_states(model)
    inputs, samples = make_batch()
    B = inputs.size(0)

    torch.manual_seed(1)
    losses = model.loss(inputs, samples)
    assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k)
    h = records[-1]
    assert h.size(1) == 2 * B, f'decoder saw {h.size(1)} samples, expected 2B = {2 * B}'

    inputs2 = inputs.clone()
    h1, w1 = samples[1].img_shape
    inputs2[1, :, :h1, :w1] = torch.randn(3, h1, w1)  # new content for image 1
    torch.manual_seed(1)
    model.loss(inputs2, samples)
    h2 = records[-1]
    assert torch.allclose(h[:, 0], h2[:, 0], atol=1e-5), 'plain stream of image 0 must not see image 1'
    assert not torch.allclose(h[:, B], h2[:, B], atol=1e-4), 'BF stream of image 0 must see image 1'


@pytest.mark.parametrize('name', DETECTORS)
def test_padded_tokens_do_not_reach_other_images(name):
    """Token level: change image 1's encoder input tokens only where its padding mask is set."""
    torch.manual_seed(0)
    model = no_dropout(build_detector(name)).train()
    inputs, samples = make_batch(sizes=((64, 96), (32, 48)))
    with torch.no_grad():
        feats = model.extract_feat(inputs)
        samples2 = list(samples) * 2
        with model.batchformer_pass():
            enc_in, _ = model.pre_transformer(feats, samples2)
            mask = enc_in['feat_mask']
            assert mask is not None and mask[1].any() and not mask[0].any()
            memory = model.forward_encoder(**enc_in)['memory']
            changed = dict(enc_in)
            feat = enc_in['feat'].clone()
            feat[1][mask[1]] = torch.randn(int(mask[1].sum()), feat.size(-1)) * 10
            changed['feat'] = feat
            memory2 = model.forward_encoder(**changed)['memory']
    B = inputs.size(0)
    assert memory.size(0) == 2 * B
    assert torch.allclose(memory[0], memory2[0], atol=1e-5)
    assert torch.allclose(memory[B], memory2[B], atol=1e-5), 'BF stream of image 0 must ignore padded tokens'


@pytest.mark.parametrize('name', DETECTORS)
def test_loss_matches_both_streams_targets(name):
    torch.manual_seed(0)
    model = build_detector(name).train()
    seen = []
    original = model.bbox_head._get_targets_single

    def counting(cls_score, bbox_pred, gt_instances, img_meta, *args, **kwargs):
        seen.append(len(gt_instances))
        return original(cls_score, bbox_pred, gt_instances, img_meta, *args, **kwargs)

    model.bbox_head._get_targets_single = counting
    inputs, samples = make_batch(num_boxes=(2, 1))
    model.loss(inputs, samples)
    num_layers = model.decoder.num_layers
    per_pass = 2 * (2 + 1)  # both streams' targets, every decoder layer
    extra = 1 if getattr(model, 'as_two_stage', False) else 0  # DINO also matches its encoder proposals
    assert sum(seen) == per_pass * (num_layers + extra), seen
    assert len(seen) == 2 * inputs.size(0) * (num_layers + extra)


@pytest.mark.parametrize('name', DETECTORS)
def test_two_stream_loss_is_the_average_of_both_streams(name):
    """With the module replaced by the identity both streams are copies of the plain stream, so the
    two-stream loss (normalised by both streams' boxes) must equal the plain detector's loss."""
    torch.manual_seed(0)
    bf = no_dropout(build_detector(name)).train()
    plain = no_dropout(plain_copy_of(bf, name)).train()
    bf.batchformer[0].forward = lambda x, padding_mask=None: x
    inputs, samples = make_batch()
    torch.manual_seed(1)
    loss_bf = bf.loss(inputs, samples)
    torch.manual_seed(1)
    loss_plain = plain.loss(inputs, samples)
    assert set(loss_bf) == set(loss_plain)
    for key, value in loss_plain.items():
        assert torch.allclose(loss_bf[key], value, rtol=1e-4, atol=1e-5), key


def test_dino_streams_share_denoising_queries():
    torch.manual_seed(0)
    model = no_dropout(build_detector('DINO')).train()
    inputs, samples = make_batch()
    B = inputs.size(0)
    captured = {}
    model.decoder.register_forward_pre_hook(
        lambda mod, args, kwargs: captured.update(query=kwargs['query'], ref=kwargs['reference_points']),
        with_kwargs=True)
    model.loss(inputs, samples)
    query, ref = captured['query'], captured['ref']
    assert query.size(0) == 2 * B
    num_dn = query.size(1) - model.num_queries
    assert num_dn > 0
    assert torch.equal(query[:B, :num_dn], query[B:, :num_dn]), 'both streams denoise the same noised labels'
    assert torch.equal(ref[:B, :num_dn], ref[B:, :num_dn]), 'and the same noised boxes'
    assert model._modules['dn_query_generator'].__class__.__name__ == 'CdnQueryGenerator'


@pytest.mark.parametrize('name', ['DETR', 'DeformableDETR', 'SMCADETR'])  # (the ablation's one-stream arms)
def test_one_stream_and_off_modes(name):
    torch.manual_seed(0)
    one = no_dropout(build_detector(name)).train()
    one.bf_mode = 'one_stream'
    records = capture_hidden_states(one)
    inputs, samples = make_batch()
    one.loss(inputs, samples)
    assert records[-1].size(1) == inputs.size(0)
    plain = no_dropout(plain_copy_of(one, name)).train()
    plain_records = capture_hidden_states(plain)
    plain.loss(inputs, samples)
    assert not torch.allclose(records[-1], plain_records[-1]), 'one-stream training must apply the module'

    from mmdet.registry import MODELS
    from helpers import DETECTOR_CONFIGS, load_config, shrink_model_cfg
    cfg = shrink_model_cfg(load_config(DETECTOR_CONFIGS[name][1]).model)
    cfg.batchformer.mode = 'off'
    off = MODELS.build(cfg)
    assert off.batchformer is None
    assert set(off.state_dict()) == set(plain.state_dict())


def test_later_insertion_points_touch_the_second_stream_only():
    torch.manual_seed(0)
    from mmdet.registry import MODELS
    from helpers import DETECTOR_CONFIGS, load_config, shrink_model_cfg
    cfg = shrink_model_cfg(load_config(DETECTOR_CONFIGS['DETR'][1]).model)
    cfg.encoder.num_layers = 3
    cfg.batchformer.update(insert_idx=[0, 2], shared=False)
    model = MODELS.build(cfg)
    quiet_init_weights(model)
    model = no_dropout(model).train()
    assert len(model.batchformer) == 2
    calls = []
    for i, m in enumerate(model.batchformer):
        m.register_forward_hook(lambda mod, args, out, i=i: calls.append((i, args[0].size(0))))
    inputs, samples = make_batch()
    model.loss(inputs, samples)
    assert calls == [(0, 2), (1, 2)], 'module 0 on the B plain images, module 1 on the B second-stream images'
    # plain stream equals the plain detector's encoder output
    feats = model.extract_feat(inputs)
    with model.batchformer_pass():
        enc_in, _ = model.pre_transformer(feats, list(samples) * 2)
        memory = model.forward_encoder(**enc_in)['memory']
    from mmdet.models.detectors import DETR
    plain_memory = DETR.forward_encoder(model, **enc_in)['memory']
    assert torch.allclose(memory[:2], plain_memory, atol=1e-5)


@pytest.mark.parametrize('bad', [[6], [-1], [2, 2]])
def test_insert_idx_out_of_range_fails_at_build(bad):
    from mmdet.registry import MODELS
    from helpers import DETECTOR_CONFIGS, load_config
    import mmdet_plugins  # noqa: F401
    cfg = load_config(DETECTOR_CONFIGS['DETR'][1]).model
    cfg.backbone.init_cfg = None
    cfg.batchformer.insert_idx = bad
    with pytest.raises(ValueError, match='insert_idx'):
        MODELS.build(cfg)


def test_unknown_batchformer_key_and_mode():
    from mmdet.registry import MODELS
    from helpers import DETECTOR_CONFIGS, load_config, shrink_model_cfg
    cfg = shrink_model_cfg(load_config(DETECTOR_CONFIGS['DETR'][1]).model)
    cfg.batchformer.update(heads=4)
    with pytest.raises(ValueError, match='unknown keys'):
        MODELS.build(cfg)
    cfg = shrink_model_cfg(load_config(DETECTOR_CONFIGS['DETR'][1]).model)
    cfg.batchformer.update(mode='three_stream')
    with pytest.raises(ValueError, match='mode'):
        MODELS.build(cfg)


def test_single_image_two_stream_warns_once():
    model = build_detector('DETR').train()
    inputs, samples = make_batch(sizes=((64, 96), ), num_boxes=(2, ))
    with pytest.warns(UserWarning, match='one image per GPU'):
        model.loss(inputs, samples)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model.loss(inputs, samples)
    assert not [w for w in caught if 'one image per GPU' in str(w.message)], 'warn once, not every step'


ABLATION_VARIANTS = {
    'insert after layer 1': dict(insert_idx=[1]),
    'after both layers, one shared module': dict(insert_idx=[0, 1], shared=True),
    'after both layers, one module each': dict(insert_idx=[0, 1], shared=False),
    'unmasked attention': dict(padding_aware=False),
    'groups of 2 images': dict(group_size=2),
}


@pytest.mark.parametrize('variant', list(ABLATION_VARIANTS))
def test_plain_stream_is_independent_of_the_other_images_in_every_ablation_variant(variant):
    """The ablation table's two-stream variants (on Deformable DETR, its detector) keep the plain stream of an image
    free of every other image, and let the second stream see them (groups: within the group)."""
    from mmengine.config import ConfigDict
    import mmdet_plugins  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from helpers import DETECTOR_CONFIGS, load_config, shrink_model_cfg
    register_all_modules()
    cfg = shrink_model_cfg(load_config(DETECTOR_CONFIGS['DeformableDETR'][1]).model)
    cfg.batchformer = ConfigDict(dict(cfg.batchformer, **ABLATION_VARIANTS[variant]))
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    quiet_init_weights(model)
    model = no_dropout(model).train()
    records = capture_hidden_states(model)
    inputs, samples = make_batch()
    B = inputs.size(0)
    torch.manual_seed(1)
    model.loss(inputs, samples)
    h = records[-1]
    inputs2 = inputs.clone()
    h1, w1 = samples[1].img_shape
    inputs2[1, :, :h1, :w1] = torch.randn(3, h1, w1)
    torch.manual_seed(1)
    model.loss(inputs2, samples)
    h2 = records[-1]
    assert h.size(1) == 2 * B
    assert torch.allclose(h[:, 0], h2[:, 0], atol=1e-5), 'plain stream of image 0 must not see image 1'
    assert not torch.allclose(h[:, B], h2[:, B], atol=1e-4), 'BF stream of image 0 must see image 1'
