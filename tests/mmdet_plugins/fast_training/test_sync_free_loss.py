"""SyncFreeLossMixin (mmdet_plugins.fast_training.sync_free_loss): DETRHead's per-layer loss, equal to stock, without
device-side tests or scalar reads (CPU)."""
import copy

import pytest
import torch
from mmengine.structures import InstanceData

import mmdet_plugins  # noqa: F401
from mmdet.models.losses import L1Loss, SmoothL1Loss
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmdet_plugins.fast_training.sync_free_loss import SyncFreeLossMixin, box_loss, image_scale_factors

register_all_modules()

SHAPES = [(64, 96), (48, 64), (100, 80), (33, 57)]  # (h, w)
COSTS = [dict(type='FocalLossCost', weight=2.0), dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
         dict(type='IoUCost', iou_mode='giou', weight=2.0)]
LOSS_CLS = {
    'ce': dict(type='CrossEntropyLoss', bg_cls_weight=0.1, use_sigmoid=False, loss_weight=1.0, class_weight=1.0),
    'focal': dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0),
}


def heads(loss_cls, sync_cls_avg_factor):
    cfg = dict(num_classes=5, embed_dims=32, loss_cls=copy.deepcopy(LOSS_CLS[loss_cls]),
               sync_cls_avg_factor=sync_cls_avg_factor,
               train_cfg=dict(assigner=dict(type='HungarianAssigner', match_costs=COSTS)))
    stock = MODELS.build(dict(type='DETRHead', **copy.deepcopy(cfg)))
    # BatchedDETRHead with the stock assigner: stock get_targets, SyncFreeLossMixin's loss_by_feat_single
    sync_free = MODELS.build(dict(type='BatchedDETRHead', **copy.deepcopy(cfg)))
    assert isinstance(sync_free, SyncFreeLossMixin) and not hasattr(sync_free.assigner, 'assign_batch')
    return stock, sync_free


def problem(num_gts, channels, num_queries=9, seed=0):
    """``cls_scores (B, Q, channels)``, normalised cxcywh ``bbox_preds (B, Q, 4)``, gt instances, image metas."""
    g = torch.Generator().manual_seed(seed)
    shapes = SHAPES[:len(num_gts)]
    B = len(num_gts)
    cls_scores = torch.randn(B, num_queries, channels, generator=g)
    bbox_preds = torch.rand(B, num_queries, 4, generator=g) * 0.5 + 0.1
    gts = []
    for (h, w), n in zip(shapes, num_gts):
        xy = torch.rand(n, 2, generator=g) * torch.tensor([w, h]) * 0.6
        wh = torch.rand(n, 2, generator=g) * torch.tensor([w, h]) * 0.3 + 1
        gts.append(InstanceData(labels=torch.randint(0, 5, (n, ), generator=g), bboxes=torch.cat([xy, xy + wh], 1)))
    return cls_scores, bbox_preds, gts, [dict(img_shape=s) for s in shapes]


@pytest.mark.parametrize('num_gts', [[3, 0, 5, 1], [0, 0]], ids=['boxes', 'no-boxes'])
@pytest.mark.parametrize('sync_cls_avg_factor', [False, True])
@pytest.mark.parametrize('loss_cls', ['ce', 'focal'])
def test_losses_equal_stock_without_scalar_reads(loss_cls, sync_cls_avg_factor, num_gts, monkeypatch):
    stock, sync_free = heads(loss_cls, sync_cls_avg_factor)
    args = problem(num_gts, stock.cls_out_channels)
    expected = stock.loss_by_feat_single(*args)

    reads = []
    for name in ('item', '__bool__'):
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _original=original, _name=name, **k):
            reads.append(_name)
            return _original(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, counted)
    monkeypatch.setattr(torch, 'any', lambda *a, **k: reads.append('any') or torch.Tensor.any(*a, **k))
    got = sync_free.loss_by_feat_single(*args)
    monkeypatch.undo()

    assert len(got) == len(expected) == 3
    for g, e in zip(got, expected):
        assert g.shape == e.shape and g.dtype == e.dtype
        assert torch.equal(g, e)
    # stock reads num_total_pos (.item()), compares max(cls_avg_factor, 1) and tests any(weight > 0) twice
    if sum(num_gts):
        assert reads == [], f'scalar reads of tensors: {reads}'
    else:  # no positive query: the box losses are the stock modules (their empty-weight branch)
        assert 'item' not in reads and reads.count('any') == 2, reads


def test_stock_does_read_scalars(monkeypatch):
    """The counting above can fail: the stock loss makes those reads."""
    stock, _ = heads('focal', True)
    calls = []
    monkeypatch.setattr(torch, 'any', lambda *a, **k: calls.append('any') or torch.Tensor.any(*a, **k))
    original = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, 'item', lambda self: calls.append('item') or original(self))
    stock.loss_by_feat_single(*problem([3, 1], stock.cls_out_channels))
    assert calls.count('any') == 2 and calls.count('item') >= 1


def test_image_scale_factors_rows_per_query():
    metas = [dict(img_shape=(10, 20)), dict(img_shape=(30, 40))]
    f = image_scale_factors(metas, 3, torch.zeros(1, dtype=torch.float64))
    assert f.dtype == torch.float64 and f.shape == (6, 4)
    assert f[:3].tolist() == [[20, 10, 20, 10]] * 3 and f[3:].tolist() == [[40, 30, 40, 30]] * 3


def test_box_loss_defers_to_other_losses_and_empty_weights():
    pred, target = torch.rand(4, 4), torch.rand(4, 4)
    weight = torch.zeros(4, 4)
    assert box_loss(L1Loss(), pred, target, weight, 1.0, any_positive=False) == 0  # stock's empty path
    smooth = SmoothL1Loss(loss_weight=2.0)
    weight[1] = 1
    assert torch.equal(box_loss(smooth, pred, target, weight, 1.0, True), smooth(pred, target, weight, avg_factor=1.0))
    l1 = L1Loss(loss_weight=3.0)
    assert torch.equal(box_loss(l1, pred, target, weight, 2.0, True), l1(pred, target, weight, avg_factor=2.0))
