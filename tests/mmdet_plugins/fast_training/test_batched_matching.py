"""Batched Hungarian matching (mmdet_plugins.fast_training.heads) against stock mmdet 3.3.0 (CPU).

Costs, matchings, targets and the five detectors' losses (baseline and BatchFormerV2) must equal the stock ones;
the batched heads must copy costs to the host once per step instead of once per image and decoder layer.
"""
import copy
import warnings

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from helpers import DETECTORS, load_config, make_batch, no_dropout, quiet_init_weights, shrink_model_cfg

import mmdet_plugins  # noqa: F401  (registers the batched heads and assigner)
from mmdet.models.task_modules.assigners import BBoxL1Cost, HungarianAssigner
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.utils import register_all_modules
from mmdet_plugins.fast_training import STOCK_HEADS, BatchedHungarianAssigner
from mmdet_plugins.fast_training.heads import with_matching
from reproduce.tables.detection import config_path

register_all_modules()

COSTS = {
    'detr': [dict(type='ClassificationCost', weight=1.),
             dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
             dict(type='IoUCost', iou_mode='giou', weight=2.0)],
    'deformable_dino': [dict(type='FocalLossCost', weight=2.0),
                        dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                        dict(type='IoUCost', iou_mode='giou', weight=2.0)],
    'dab': [dict(type='FocalLossCost', weight=2., eps=1e-8),
            dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
            dict(type='IoUCost', iou_mode='giou', weight=2.0)],
    'xyxy_iou': [dict(type='ClassificationCost', weight=2.),
                 dict(type='BBoxL1Cost', weight=3.0, box_format='xyxy'),
                 dict(type='IoUCost', iou_mode='iou', weight=1.5)],
    'focal_xyxy_iou': [dict(type='FocalLossCost', weight=1.0, alpha=0.5, gamma=1.5),
                       dict(type='BBoxL1Cost', weight=1.0, box_format='xyxy'),
                       dict(type='IoUCost', iou_mode='iou', weight=1.0)],
}

SHAPES = [(64, 96), (48, 64), (100, 80), (33, 57), (120, 40)]  # (h, w), a different size per image


@TASK_UTILS.register_module(name='_TestSubclassedL1Cost', force=True)
class SubclassedL1Cost(BBoxL1Cost):
    """Computes BBoxL1Cost, but is not one of the types with a batched formula."""


def random_boxes(shape, h, w, generator):
    xy = torch.rand(*shape, 2, generator=generator) * torch.tensor([w, h]) * 0.6
    wh = torch.rand(*shape, 2, generator=generator) * torch.tensor([w, h]) * 0.4 + 1
    return torch.cat([xy, xy + wh], -1)


def random_problem(num_gts, num_queries=7, num_classes=5, num_layers=2, seed=0, dtype=torch.float32):
    """``cls_scores (L, B, Q, C)``, pixel xyxy ``bbox_preds (L, B, Q, 4)``, B gt instances, B image metas."""
    g = torch.Generator().manual_seed(seed)
    shapes = SHAPES[:len(num_gts)]
    B = len(num_gts)
    cls_scores = torch.randn(num_layers, B, num_queries, num_classes, generator=g).to(dtype)
    bbox_preds = torch.stack([random_boxes((num_layers, num_queries), h, w, g) for h, w in shapes], 1).to(dtype)
    gts = [InstanceData(labels=torch.randint(0, num_classes, (n, ), generator=g),
                        bboxes=random_boxes((n, ), h, w, g)) for (h, w), n in zip(shapes, num_gts)]
    metas = [dict(img_shape=s) for s in shapes]
    return cls_scores, bbox_preds, gts, metas


def stock_gt_inds(assigner, scores, bboxes, gt, meta):
    return assigner.assign(InstanceData(scores=scores, bboxes=bboxes), gt, img_meta=meta).gt_inds


def gt_inds_of(match, num_queries):
    """A (query_inds, gt_inds) pair as the stock assigner's ``gt_inds`` (0 background, 1-based gt index)."""
    gt_inds = torch.zeros(num_queries, dtype=torch.long)
    gt_inds[torch.from_numpy(match[0])] = torch.from_numpy(match[1]) + 1
    return gt_inds


# ---------------------------------------------------------------------------------------------------------------
# The assigner

@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
@pytest.mark.parametrize('num_queries', [7, 3])  # 3: fewer queries than some images' gts
@pytest.mark.parametrize('costs', list(COSTS))
def test_batched_costs_and_matchings_equal_stock(costs, num_queries, dtype):
    num_gts = [3, 0, 5, 1, 4]
    stock = HungarianAssigner(COSTS[costs])
    batched = TASK_UTILS.build(dict(type='BatchedHungarianAssigner', match_costs=COSTS[costs]))
    assert batched.batched
    cls_scores, bbox_preds, gts, metas = random_problem(num_gts, num_queries, dtype=dtype)
    L, B, Q, C = cls_scores.shape

    labels, bboxes = batched.pad_gts(gts)
    cost = batched.batch_cost(cls_scores.reshape(-1, Q, C), bbox_preds.reshape(-1, Q, 4), labels.repeat(L, 1),
                              bboxes.repeat(L, 1, 1), [m['img_shape'] for m in metas] * L)
    assert cost.shape == (L * B, Q, max(num_gts))
    matches = batched.assign_batch(cls_scores, bbox_preds, gts, metas)
    assert len(matches) == L * B
    for n, match in enumerate(matches):
        layer, b = divmod(n, B)
        pred = InstanceData(scores=cls_scores[layer, b], bboxes=bbox_preds[layer, b])
        if num_gts[b]:
            expected = torch.stack([c(pred, gts[b], metas[b]) for c in stock.match_costs]).sum(0)
            assert expected.dtype == cost.dtype
            torch.testing.assert_close(cost[n, :, :num_gts[b]], expected, rtol=1e-6, atol=1e-6)
        expected_inds = stock_gt_inds(stock, cls_scores[layer, b], bbox_preds[layer, b], gts[b], metas[b])
        assert torch.equal(gt_inds_of(match, Q), expected_inds), (n, match)
        assert len(match[0]) == min(Q, num_gts[b])


def test_assign_batch_without_layer_dim_and_degenerate_items():
    batched = BatchedHungarianAssigner(COSTS['detr'])
    assert BatchedHungarianAssigner.assign is HungarianAssigner.assign, 'assign stays the stock per-item method'
    cls_scores, bbox_preds, gts, metas = random_problem([2, 0, 1], num_layers=1)
    matches = batched.assign_batch(cls_scores[0], bbox_preds[0], gts, metas)  # (B, Q, *): no layer dim
    assert [len(m[0]) for m in matches] == [2, 0, 1]
    # no gt anywhere: all background, no cost computed
    cls_scores, bbox_preds, gts, metas = random_problem([0, 0], num_layers=3)
    assert all(len(q) == 0 and len(g) == 0 for q, g in batched.assign_batch(cls_scores, bbox_preds, gts, metas))
    # no query
    cls_scores, bbox_preds, gts, metas = random_problem([2, 1], num_queries=0)
    assert all(len(q) == 0 for q, _ in batched.assign_batch(cls_scores, bbox_preds, gts, metas))


def test_unsupported_cost_falls_back_to_stock_and_warns_once():
    costs = [dict(type='FocalLossCost', weight=2.0), dict(type='_TestSubclassedL1Cost', weight=5.0),
             dict(type='IoUCost', iou_mode='giou', weight=2.0)]
    batched = BatchedHungarianAssigner(costs)
    stock = HungarianAssigner(costs)
    assert not batched.batched and batched.unsupported_costs == ['SubclassedL1Cost']
    cls_scores, bbox_preds, gts, metas = random_problem([3, 0, 2])
    with pytest.warns(UserWarning, match='no batched formula'):
        matches = batched.assign_batch(cls_scores, bbox_preds, gts, metas)
    B = len(gts)
    for n, match in enumerate(matches):
        layer, b = divmod(n, B)
        expected = stock_gt_inds(stock, cls_scores[layer, b], bbox_preds[layer, b], gts[b], metas[b])
        assert torch.equal(gt_inds_of(match, cls_scores.size(2)), expected)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        batched.assign_batch(cls_scores, bbox_preds, gts, metas)
    assert not [w for w in caught if 'no batched formula' in str(w.message)], 'warn once'
    with pytest.raises(NotImplementedError):
        batched.batch_cost(cls_scores[0], bbox_preds[0], *batched.pad_gts(gts), [m['img_shape'] for m in metas])


# ---------------------------------------------------------------------------------------------------------------
# Head targets

def build_heads(costs, assigner_type='BatchedHungarianAssigner', num_classes=5, use_sigmoid=False):
    # loss_cls given explicitly: DETRHead's default dict is updated in place by its first build
    loss_cls = (dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0) if use_sigmoid else
                dict(type='CrossEntropyLoss', bg_cls_weight=0.1, use_sigmoid=False, loss_weight=1.0, class_weight=1.0))
    head_cfg = dict(type='DETRHead', num_classes=num_classes, embed_dims=32, loss_cls=loss_cls,
                    train_cfg=dict(assigner=dict(type='HungarianAssigner', match_costs=costs)))
    stock = MODELS.build(copy.deepcopy(head_cfg))
    head_cfg.update(type='BatchedDETRHead')
    head_cfg['train_cfg']['assigner']['type'] = assigner_type
    return stock, MODELS.build(head_cfg)


def normalised_problem(num_gts, num_queries=7, num_classes=5, num_layers=2, seed=0):
    """As random_problem, with the boxes as the head's outputs: cxcywh normalised by the image size."""
    cls_scores, bbox_preds, gts, metas = random_problem(num_gts, num_queries, num_classes, num_layers, seed)
    factors = torch.tensor([[w, h, w, h] for h, w in SHAPES[:len(num_gts)]], dtype=torch.float32)[:, None]
    from mmdet.structures.bbox import bbox_xyxy_to_cxcywh
    return cls_scores, bbox_xyxy_to_cxcywh(bbox_preds / factors), gts, metas


def assert_targets_equal(got, expected):
    assert len(got) == len(expected) == 6
    for got_list, expected_list in zip(got[:4], expected[:4]):
        assert len(got_list) == len(expected_list)
        for a, b in zip(got_list, expected_list):
            assert a.dtype == b.dtype and a.shape == b.shape and a.device == b.device
            assert torch.equal(a, b)
    assert got[4:] == expected[4:] and all(type(v) is int for v in got[4:])


@pytest.mark.parametrize('costs', ['detr', 'deformable_dino', 'xyxy_iou'])
def test_get_targets_equal_stock(costs):
    stock, batched = build_heads(COSTS[costs], use_sigmoid=costs != 'detr')
    assert batched.bg_cls_weight == stock.bg_cls_weight
    cls_scores, bbox_preds, gts, metas = normalised_problem([3, 0, 5, 1, 4], num_classes=stock.cls_out_channels)
    for layer in range(cls_scores.size(0)):
        args = (list(cls_scores[layer]), list(bbox_preds[layer]), gts, metas)
        assert_targets_equal(batched.get_targets(*args), stock.get_targets(*args))


def test_get_targets_with_stock_assigner_or_unsupported_cost():
    stock, batched = build_heads(COSTS['detr'], assigner_type='HungarianAssigner')  # mixin defers to DETRHead
    cls_scores, bbox_preds, gts, metas = normalised_problem([2, 1, 0], num_classes=stock.cls_out_channels)
    args = (list(cls_scores[0]), list(bbox_preds[0]), gts, metas)
    assert_targets_equal(batched.get_targets(*args), stock.get_targets(*args))
    costs = [dict(type='ClassificationCost', weight=1.), dict(type='_TestSubclassedL1Cost', weight=5.0)]
    stock, batched = build_heads(costs)
    with pytest.warns(UserWarning, match='no batched formula'):
        assert_targets_equal(batched.get_targets(*args), stock.get_targets(*args))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])  # float16: the head's outputs under AMP
@pytest.mark.parametrize('costs', ['detr', 'deformable_dino'])
def test_loss_by_feat_matches_all_layers_once_and_clears_the_stash(costs, dtype, monkeypatch):
    stock, batched = build_heads(COSTS[costs], use_sigmoid=costs != 'detr')
    batched.load_state_dict(stock.state_dict())
    cls_scores, bbox_preds, gts, metas = normalised_problem([3, 0, 5, 1], num_classes=stock.cls_out_channels,
                                                            num_layers=3)
    cls_scores, bbox_preds = cls_scores.to(dtype), bbox_preds.to(dtype)
    calls = count_calls(monkeypatch, BatchedHungarianAssigner, 'assign_batch')
    expected = stock.loss_by_feat(cls_scores, bbox_preds, gts, metas)
    got = batched.loss_by_feat(cls_scores, bbox_preds, gts, metas)
    assert calls == [1]
    assert batched._match_stash is None
    assert set(got) == set(expected)
    for key in expected:
        assert torch.equal(got[key], expected[key]), key

    def fail(*args, **kwargs):
        raise RuntimeError('boom')

    monkeypatch.setattr(batched, 'loss_by_feat_single', fail)
    with pytest.raises(RuntimeError, match='boom'):
        batched.loss_by_feat(cls_scores, bbox_preds, gts, metas)
    assert batched._match_stash is None, 'stash cleared on exceptions too'


# ---------------------------------------------------------------------------------------------------------------
# Detectors

def count_calls(monkeypatch, owner, name):
    """Count calls of ``owner.name`` (patched for the test); returns a one-element list holding the count."""
    count = [0]
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        count[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return count


def stock_model_cfg(model_cfg):
    """The model config with mmdet's own head and HungarianAssigner (the mini configs name the batched ones)."""
    return with_matching(model_cfg, batched=False)


def batched_model_cfg(model_cfg):
    return with_matching(model_cfg, batched=True)


def build_pair(name, bf, **overrides):
    """The stock detector from the repository's mini config (shrunk for the CPU, ``overrides`` set on the model
    config) and the same detector with the batched head and assigner, with the same weights, dropout off."""
    torch.manual_seed(0)
    model_cfg = shrink_model_cfg(load_config(config_path(name, bf, 'mini')).model)
    model_cfg.update(overrides)
    stock = MODELS.build(stock_model_cfg(model_cfg))
    quiet_init_weights(stock)
    batched = MODELS.build(batched_model_cfg(model_cfg))
    batched.load_state_dict(stock.state_dict(), strict=True)
    assert type(batched.bbox_head).__name__ == 'Batched' + type(stock.bbox_head).__name__
    return no_dropout(stock).train(), no_dropout(batched).train()


@pytest.mark.parametrize('bf', [False, True], ids=['baseline', 'bf'])
@pytest.mark.parametrize('name', DETECTORS)
def test_detector_loss_equals_stock_with_one_host_copy(name, bf, monkeypatch):
    stock, batched = build_pair(name, bf)
    inputs, samples = make_batch(sizes=((64, 96), (48, 64), (56, 80), (40, 72)), num_boxes=(2, 0, 3, 1))
    assigns = count_calls(monkeypatch, HungarianAssigner, 'assign')
    batch_assigns = count_calls(monkeypatch, BatchedHungarianAssigner, 'assign_batch')
    host_copies = count_calls(monkeypatch, torch.Tensor, 'cpu')

    torch.manual_seed(1)
    expected = stock.loss(inputs, [s.clone() for s in samples])
    stock_assigns, stock_copies = assigns[0], host_copies[0]
    assigns[0] = host_copies[0] = 0
    torch.manual_seed(1)
    got = batched.loss(inputs, [s.clone() for s in samples])

    assert set(got) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=1e-6, atol=1e-7, msg=key)
    streams = 2 if bf else 1  # two-stream training matches both streams
    layers = stock.decoder.num_layers + (1 if name == 'DINO' else 0)  # DINO also matches its encoder proposals
    assert stock_assigns == layers * streams * 4
    assert stock_copies == layers * streams * 3, 'stock copies one cost per layer and image with ground truth'
    assert assigns[0] == 0 and batch_assigns[0] == 1 and host_copies[0] == 1


@pytest.mark.parametrize('bf', [False, True], ids=['baseline', 'bf'])
def test_two_stage_deformable_detr_matches_encoder_proposals_separately(bf, monkeypatch):
    """Two-stage Deformable DETR matches its encoder proposals (every feature point a query, all labels 0) with
    another assign_batch call: two host copies per step, same losses."""
    stock, batched = build_pair('DeformableDETR', bf, as_two_stage=True, with_box_refine=True)
    inputs, samples = make_batch(sizes=((64, 96), (48, 64), (56, 80)), num_boxes=(2, 0, 3))
    torch.manual_seed(1)
    expected = stock.loss(inputs, [s.clone() for s in samples])
    assert 'enc_loss_cls' in expected
    batch_assigns = count_calls(monkeypatch, BatchedHungarianAssigner, 'assign_batch')
    torch.manual_seed(1)
    got = batched.loss(inputs, [s.clone() for s in samples])
    assert set(got) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=1e-6, atol=1e-7, msg=key)
    assert batch_assigns[0] == 2


@pytest.mark.parametrize('name', ['DETR', 'DINO'])
def test_config_switch_trains_one_iteration(name):
    """The BatchFormerV2 mini configs name ``Batched...Head`` and ``BatchedHungarianAssigner`` (the fast
    components are their default): the model builds and runs one training step (preprocessor, loss, update)."""
    from mmengine.optim import OptimWrapper
    cfg = load_config(config_path(name, True, 'mini'))
    head_type = STOCK_HEADS[cfg.model.bbox_head.type]
    assert cfg.model.train_cfg.assigner.type == 'BatchedHungarianAssigner'
    assert cfg.model.data_preprocessor.non_blocking is True
    torch.manual_seed(0)
    model = MODELS.build(shrink_model_cfg(cfg.model))
    quiet_init_weights(model)
    assert type(model.bbox_head).__name__ == 'Batched' + head_type
    assert type(model.bbox_head.assigner) is BatchedHungarianAssigner
    model.train()
    _, samples = make_batch(sizes=((64, 96), (48, 64)), num_boxes=(2, 1))
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in ((64, 96), (48, 64))]
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    before = {k: v.detach().clone() for k, v in model.bbox_head.state_dict().items()}
    log_vars = model.train_step(dict(inputs=images, data_samples=samples), optim_wrapper)
    assert torch.isfinite(log_vars['loss']).all()
    changed = [k for k, v in model.bbox_head.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, 'one step updates the head'


def test_batched_detr_head_keeps_background_class_weight():
    """DETRHead builds its no-object class weight only when ``type(self) is DETRHead``; the subclass must too."""
    cfg = load_config(config_path('DETR', False, 'mini')).model.bbox_head
    cfg.type = 'DETRHead'
    stock = MODELS.build(copy.deepcopy(cfg))
    cfg.type = 'BatchedDETRHead'
    batched = MODELS.build(cfg)
    assert stock.bg_cls_weight == batched.bg_cls_weight == 0.1
    assert torch.equal(torch.as_tensor(batched.loss_cls.class_weight), torch.as_tensor(stock.loss_cls.class_weight))
    assert np.isclose(float(batched.loss_cls.class_weight[-1]), 0.1)
