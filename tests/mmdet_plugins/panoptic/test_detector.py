"""DETRPanoptic and BFDETRPanoptic (CPU, small models built from the mini stage-2 configs): mask-head shapes, the
mask losses, the stage-2 freeze, the two-stream mask head, eval parity, the fused output, bad configurations."""
from contextlib import nullcontext
from copy import deepcopy

import pytest
import torch

from helpers import load_config, no_dropout, quiet_init_weights, shrink_model_cfg

STAGE2 = 'configs/mini/panoptic/detr-panoptic-stage2_r18_1xb16-mini.py'
BF_STAGE2 = 'configs/mini/panoptic/bf-detr-panoptic-stage2_r18_1xb16-mini.py'
NUM_CLASSES, NUM_THINGS = 13, 10


def model_cfg(path, **changes):
    m = shrink_model_cfg(load_config(path).model, num_classes=NUM_CLASSES)
    m.neck.in_channels = [512]  # (the neck sees C5 only)
    m.update(changes)
    return m


def build(path, **changes):
    import mmdet_plugins  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    model = MODELS.build(model_cfg(path, **changes))
    quiet_init_weights(model)
    return model


def panoptic_batch(seed=0):
    """Two differently sized images, each with two thing boxes and one stuff region, their masks at the padded
    input's size (as the data preprocessor pads them)."""
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    from mmdet_plugins.utils.synthetic import synthetic_batch
    inputs, samples = synthetic_batch(((64, 96), (48, 64)), (2, 2), num_classes=NUM_THINGS, seed=seed)
    hp, wp = inputs.shape[-2:]
    for sample in samples:
        things = sample.gt_instances
        h, w = sample.metainfo['img_shape']
        gt = InstanceData(bboxes=torch.cat([things.bboxes, torch.tensor([[0.0, h * 0.75, float(w), float(h)]])]),
                          labels=torch.cat([things.labels, torch.tensor([NUM_THINGS + 1])]))
        masks = torch.zeros(len(gt), hp, wp, dtype=torch.uint8)
        for k, (x1, y1, x2, y2) in enumerate(gt.bboxes.round().long().tolist()):
            masks[k, y1:y2, x1:x2] = 1
        gt.masks = BitmapMasks(masks.numpy(), hp, wp)
        sample.gt_instances = gt
    return inputs, samples


def mask_logits_of(model, inputs, samples, two_stream=False):
    """(B', Q, H/4, W/4) mask logits of the last decoder layer, in a two-stream pass when asked."""
    feats = model.extract_feat(inputs)
    if two_stream:
        with model.batchformer_pass():
            head, mask_in = model.forward_panoptic(feats, list(samples) * 2)
            return model.predict_masks(head['hidden_states'][-1], mask_in['memory'], mask_in['padding_mask'], feats)
    head, mask_in = model.forward_panoptic(feats, samples)
    return model.predict_masks(head['hidden_states'][-1], mask_in['memory'], mask_in['padding_mask'], feats)


def test_mask_logits_at_stride_4_and_losses_reach_the_mask_head_only_in_stage_2():
    torch.manual_seed(0)
    model = build(STAGE2)
    inputs, samples = panoptic_batch()
    logits = mask_logits_of(model, inputs, samples)
    assert logits.shape == (2, model.num_queries, inputs.shape[-2] // 4, inputs.shape[-1] // 4)
    losses = model.loss(inputs, samples)
    assert {'loss_cls', 'loss_bbox', 'loss_iou', 'loss_mask_focal', 'loss_mask_dice'} <= set(losses)
    assert 0 < losses['loss_mask_focal'].item() < 1 and 0 < losses['loss_mask_dice'].item() <= 1
    sum(v for k, v in losses.items() if 'loss' in k and v.requires_grad).backward()
    trained = {n.split('.')[0] for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert trained == {'mask_attention', 'mask_head'}
    assert all(not p.requires_grad for n, p in model.named_parameters() if n.split('.')[0] not in trained)


def test_the_mask_loss_is_detrs_on_the_matched_queries():
    """Against a direct computation: upsample each matched query's logits to the padded input, focal and dice
    as facebookresearch/detr, divided by the number of ground-truth masks."""
    import torch.nn.functional as F
    torch.manual_seed(0)
    model = build(STAGE2, freeze_detector=False).eval()  # (eval: no dropout, the same forward twice)
    inputs, samples = panoptic_batch()
    losses = model.loss(inputs, samples)
    feats = model.extract_feat(inputs)
    head, mask_in = model.forward_panoptic(feats, samples)
    query = head['hidden_states'][-1]
    cls, box = model.bbox_head(query[None])
    logits = model.predict_masks(query, mask_in['memory'], mask_in['padding_mask'], feats)
    focal = dice = 0.0
    n = sum(len(s.gt_instances) for s in samples)
    for i, s in enumerate(samples):
        q_idx, g_idx = model._assign(cls[0, i], box[0, i], s.gt_instances, s.metainfo)
        assert len(q_idx) == len(s.gt_instances)  # every ground truth matched once
        p = F.interpolate(logits[i, q_idx][None], size=inputs.shape[-2:], mode='bilinear')[0].flatten(1).sigmoid()
        t = torch.as_tensor(s.gt_instances.masks.masks[g_idx.numpy()]).float().flatten(1)
        ce = F.binary_cross_entropy(p, t, reduction='none')
        p_t = p * t + (1 - p) * (1 - t)
        focal += ((0.25 * t + 0.75 * (1 - t)) * ce * (1 - p_t) ** 2).mean(1).sum()
        dice += (1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)).sum()
    torch.testing.assert_close(losses['loss_mask_focal'], focal / n, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(losses['loss_mask_dice'], dice / n, rtol=1e-4, atol=1e-6)


def every_query_logits(model, query, memory, padding_mask, feats):
    """(B', Q, H/4, W/4) logits of every query, written out as DETR's head computes them (context expanded per
    query, laterals repeated per query, the plain stream's features concatenated for a second stream)."""
    import torch.nn.functional as F
    b, q = query.shape[:2]
    feats = list(feats) if b == feats[-1].size(0) else [torch.cat([f, f]) for f in feats]
    head = model.mask_head
    x = torch.cat([feats[-1].unsqueeze(1).expand(-1, q, -1, -1, -1),
                   model.mask_attention(query, memory, padding_mask)], 2).flatten(0, 1)
    x = head.stem(x)
    for adapter, block, feat in zip(head.adapters, head.blocks, feats[2::-1]):
        lateral = adapter(feat).repeat_interleave(q, dim=0)
        x = block(lateral + F.interpolate(x, size=lateral.shape[-2:], mode='nearest'))
    return head.out(x).view(b, q, *x.shape[-2:])


@pytest.mark.parametrize('freeze', [True, False], ids=['stage-2', 'unfrozen'])
@pytest.mark.parametrize('config', [STAGE2, BF_STAGE2], ids=['detr', 'bf-two-stream'])
@pytest.mark.parametrize('empty_image', [False, True], ids=['all-with-gt', 'one-without'])
def test_mask_head_on_the_matched_queries_gives_the_gradients_of_running_it_on_all(config, freeze, empty_image):
    """The training loss runs the mask head on the matched queries only; the losses and every trainable
    parameter's gradient are those of running DETR's head on every query and taking the matched ones' masks."""
    import torch.nn.functional as F
    from mmdet_plugins.panoptic.mask_head import mask_dice_loss, mask_focal_loss
    torch.manual_seed(0)
    model = no_dropout(build(config, freeze_detector=freeze)).train()
    inputs, samples = panoptic_batch()
    if empty_image:
        samples[1].gt_instances = samples[1].gt_instances[:0]
    params = [p for p in model.parameters() if p.requires_grad]
    losses = model.loss(inputs, samples)
    fast = torch.autograd.grad(losses['loss_mask_focal'] + losses['loss_mask_dice'], params, allow_unused=True)

    streams = list(samples) * 2 if config == BF_STAGE2 else samples
    feats = model.extract_feat(inputs)
    with model.batchformer_pass() if config == BF_STAGE2 else nullcontext():
        head, mask_in = model.forward_panoptic(feats, streams)
    query = head['hidden_states'][-1]
    cls, box = model.bbox_head(query[None])
    every = every_query_logits(model, query, mask_in['memory'], mask_in['padding_mask'], feats)  # (B', Q, h, w)
    preds, targets = [], []
    for i, s in enumerate(streams):
        if len(s.gt_instances):
            q_idx, g_idx = model._assign(cls[0, i], box[0, i], s.gt_instances, s.metainfo)
            preds.append(F.interpolate(every[i, q_idx][None], size=inputs.shape[-2:], mode='bilinear')[0])
            targets.append(torch.as_tensor(s.gt_instances.masks.masks[g_idx.numpy()]).float())
    pred, target = torch.cat(preds).flatten(1), torch.cat(targets).flatten(1)
    n = float(len(pred))
    focal, dice = mask_focal_loss(pred, target, n), mask_dice_loss(pred, target, n)
    torch.testing.assert_close(losses['loss_mask_focal'], focal, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(losses['loss_mask_dice'], dice, rtol=1e-5, atol=1e-7)
    slow = torch.autograd.grad(focal + dice, params, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in slow)
    for a, b in zip(fast, slow):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize('config', [STAGE2, BF_STAGE2], ids=['detr', 'bf-two-stream'])
def test_a_batch_without_ground_truth_gives_zero_mask_losses_and_keeps_the_graph(config):
    torch.manual_seed(0)
    model = build(config)
    inputs, samples = panoptic_batch()
    for s in samples:
        s.gt_instances = s.gt_instances[:0]
    losses = model.loss(inputs, samples)
    assert losses['loss_mask_focal'].item() == 0 and losses['loss_mask_dice'].item() == 0
    (losses['loss_mask_focal'] + losses['loss_mask_dice']).backward()
    mask_params = list(model.mask_head.parameters()) + list(model.mask_attention.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() == 0 for p in mask_params)


def test_masks_are_matched_in_one_batch_as_image_by_image():
    """With the mini configs' BatchedHungarianAssigner, match_masks matches all images at once; the matches are
    those of the stock per-image assignment."""
    torch.manual_seed(0)
    model = build(STAGE2).eval()
    assert model.bbox_head.assigner.batched
    inputs, samples = panoptic_batch()
    samples[1].gt_instances = samples[1].gt_instances[:0]
    calls, batch = [], model.bbox_head.assigner.assign_batch
    model.bbox_head.assigner.assign_batch = lambda *a: calls.append(len(a[2])) or batch(*a)
    with torch.no_grad():
        feats = model.extract_feat(inputs)
        head, _ = model.forward_panoptic(feats, samples)
        cls, box = model.bbox_head(head['hidden_states'][-1][None])
        image_idx, query_idx, target = model.match_masks(cls[0], box[0], samples)
    assert calls == [2]  # one batched matching of both images
    expected = [model._assign(cls[0, 0], box[0, 0], samples[0].gt_instances, samples[0].metainfo)]
    assert image_idx.tolist() == [0] * len(samples[0].gt_instances)
    assert query_idx.tolist() == expected[0][0].tolist()
    masks = torch.as_tensor(samples[0].gt_instances.masks.masks[expected[0][1].numpy()]).float()
    assert torch.equal(target, masks)


def test_stage_2_freezes_the_batchformer_module_too():
    model = build(BF_STAGE2)
    trainable = {n.split('.')[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {'mask_attention', 'mask_head'}
    assert sum(p.numel() for p in model.batchformer.parameters()) > 0
    unfrozen = build(BF_STAGE2, freeze_detector=False)
    assert all(p.requires_grad for p in unfrozen.parameters())


def test_two_stream_mask_head_sees_2b_and_the_plain_stream_ignores_the_other_images():
    torch.manual_seed(0)
    model = no_dropout(build(BF_STAGE2)).train()
    inputs, samples = panoptic_batch()
    logits = mask_logits_of(model, inputs, samples, two_stream=True)
    assert logits.shape[0] == 4
    changed = inputs.clone()
    changed[1] = torch.randn_like(changed[1])
    logits2 = mask_logits_of(model, changed, samples, two_stream=True)
    torch.testing.assert_close(logits2[0], logits[0], rtol=0, atol=1e-5)   # plain stream of image 0
    assert (logits2[2] - logits[2]).abs().max() > 1e-4                       # its BatchFormerV2 stream

    seen, maps = [], []
    original, head = model.match_masks, model.mask_head.forward
    model.match_masks = lambda *a: seen.append(len(a[2])) or original(*a)
    model.mask_head.forward = lambda *a, **k: maps.append((a[1].shape, k['image_index'])) or head(*a, **k)
    losses = model.loss(inputs, samples)
    assert seen == [4] and torch.isfinite(losses['loss_mask_dice'])
    # the mask head ran on the matched queries only: every ground truth of both streams, on its image's features
    (shape, image_index), = maps
    gts = [len(s.gt_instances) for s in samples] * 2
    assert shape[0] == sum(gts) < 4 * model.num_queries
    assert image_index.tolist() == [i % 2 for i, n in enumerate(gts) for _ in range(n)]


def test_eval_equals_detr_panoptic_with_the_same_weights():
    torch.manual_seed(0)
    bf = build(BF_STAGE2).eval()
    plain = build(STAGE2).eval()
    state = {k: v for k, v in bf.state_dict().items() if not k.startswith('batchformer.')}
    plain.load_state_dict(state, strict=True)
    inputs, samples = panoptic_batch()
    with torch.no_grad():
        assert torch.equal(mask_logits_of(bf, inputs, samples), mask_logits_of(plain, inputs, samples))
        a = bf.predict(inputs, deepcopy(samples))
        b = plain.predict(inputs, deepcopy(samples))
    for x, y in zip(a, b):
        assert torch.equal(x.pred_panoptic_seg.sem_seg, y.pred_panoptic_seg.sem_seg)
        assert torch.equal(x.pred_instances.bboxes, y.pred_instances.bboxes)


def test_prediction_is_a_panoptic_map_at_the_original_size():
    torch.manual_seed(0)
    model = build(STAGE2, fusion=dict(threshold=0.0, min_area=0)).eval()  # keep every query of the random model
    inputs, samples = panoptic_batch()
    for s, (h0, w0) in zip(samples, ((128, 192), (96, 128))):
        s.set_metainfo(dict(ori_shape=(h0, w0)))
    with torch.no_grad():
        out = model.predict(inputs, samples)
    for s in out:
        seg = s.pred_panoptic_seg.sem_seg
        assert seg.shape == (1, *s.metainfo['ori_shape']) and seg.dtype == torch.long
        labels = seg % 1000
        assert (labels <= NUM_CLASSES).all()
        assert ((seg < 1000) == (labels >= NUM_THINGS)).all()  # things carry an instance index, stuff and void not
        assert len(s.pred_instances.bboxes) > 0


def test_bad_configurations_say_what_is_wrong():
    with pytest.raises(ValueError, match='num_things_classes must be in 1..13'):
        build(STAGE2, num_things_classes=14)
    cfg_backbone = deepcopy(model_cfg(STAGE2).backbone)
    cfg_backbone.out_indices = (3, )
    model = build(STAGE2, backbone=cfg_backbone)
    inputs, samples = panoptic_batch()
    with pytest.raises(ValueError, match=r'four levels C2..C5 \(out_indices=\(0, 1, 2, 3\)\), got 1'):
        model.loss(inputs, samples)
