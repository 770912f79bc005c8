"""GradPerClassHook (mmdet_plugins/analysis/grad_per_class_hook.py): the cross-sample gradient against a brute-force
computation, and a training run that is unchanged by the hook."""
import json
import os.path as osp

import pytest
import torch

from helpers import tiny_runner_cfg, write_tiny_coco

from mmdet_plugins.batchformer.layer import BatchFormerV2Layer
from mmdet_plugins.analysis.grad_per_class_hook import GradPerClassHook, RunningStats, cross_sample_grad_norms


@pytest.mark.parametrize('dropout', [0.0, 0.3])
def test_cross_sample_norms_equal_brute_force(dropout):
    """Per-image losses L_j = <W_j, Y_j>; image i's cross-sample gradient is sum_{j != i} dL_j/dX_i, computed
    here one loss and one image at a time with autograd."""
    torch.manual_seed(0)
    B, N, C = 5, 7, 16
    layer = BatchFormerV2Layer(C, num_heads=2, feedforward_channels=32, dropout=dropout).train()
    x = torch.randn(B, N, C, requires_grad=True)
    weights = torch.randn(B, N, C)
    y = layer(x)  # one forward pass: both computations see the same dropout masks
    losses = [(weights[j] * y[j]).sum() for j in range(B)]
    brute = []
    for i in range(B):
        total = torch.zeros(N, C)
        for j in range(B):
            if j != i:
                total += torch.autograd.grad(losses[j], x, retain_graph=True)[0][i]
        brute.append(total.norm())
    grad_y = torch.autograd.grad(sum(losses), y, retain_graph=True)[0]  # what the backward pass hands the hook
    got = cross_sample_grad_norms(y, x, grad_y)
    torch.testing.assert_close(got, torch.stack(brute), rtol=1e-5, atol=1e-6)
    assert (got > 0).all()
    # the image's own loss is excluded: the total gradient differs
    own = torch.autograd.grad(sum(losses), x, retain_graph=True)[0]
    assert not torch.allclose(own.flatten(1).norm(dim=1), got)


def test_running_stats():
    s = RunningStats()
    for v in (1.0, 2.0, 4.0):
        s.add(v)
    assert s.count == 3 and abs(s.mean - 7 / 3) < 1e-12
    assert abs(s.std - torch.tensor([1.0, 2.0, 4.0]).std().item()) < 1e-6


def test_bad_intervals_are_refused():
    with pytest.raises(ValueError, match='interval'):
        GradPerClassHook(interval=0)


def _train(cfg):
    import mmdet_plugins  # noqa: F401
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_training_is_unchanged_and_the_log_is_written(tmp_path):
    data = write_tiny_coco(str(tmp_path / 'coco'), num_train=6)
    params, logs = [], []
    for with_hook in (False, True):
        cfg = tiny_runner_cfg('configs/mini/bf-deformable-detr_r18_1xb16-mini.py', data,
                              str(tmp_path / f'work{int(with_hook)}'), max_iters=3)
        cfg.model.batchformer.dropout = 0.2  # dropout on: the hook must not draw random numbers
        cfg.optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3),
                                 clip_grad=dict(max_norm=0.1, norm_type=2))
        cfg.train_cfg.val_interval = 100
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
        cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
        if with_hook:
            cfg.custom_hooks = [dict(type='GradPerClassHook', interval=1, write_interval=2, warmup=0)]
        runner = _train(cfg)
        params.append({k: v.detach().clone() for k, v in runner.model.state_dict().items()})
        logs.append([float(v) for v in runner.message_hub.get_scalar('train/loss').data[0]])
    assert params[0].keys() == params[1].keys()
    for k in params[0]:
        assert torch.equal(params[0][k], params[1][k]), f'{k} differs with the hook'
    assert len(logs[0]) >= 3 and logs[0] == logs[1], 'same losses with and without the hook'
    log = json.load(open(osp.join(str(tmp_path / 'work1'), 'grad_per_class.json')))
    assert log['iteration'] == 3 and log['measured_iters'] == 3 and log['interval'] == 1
    assert [c['name'] for c in log['classes']] == ['a', 'b', 'c']
    assert sum(c['train_boxes'] for c in log['classes']) > 0
    seen = [c for c in log['classes'] if c['count']]
    assert seen and all(c['mean'] > 0 for c in seen)
    assert log['hook_seconds'] >= 0 and log['train_seconds'] > 0
    assert log['step_seconds']['n_measured'] == 3 and log['step_seconds']['n_unmeasured'] == 0
    assert log['overhead'] is None  # nothing unmeasured to compare with


def test_a_resumed_run_continues_the_statistics(tmp_path):
    data = write_tiny_coco(str(tmp_path / 'coco'), num_train=6)
    work = str(tmp_path / 'work')
    logs = []
    for max_iters, resume in ((2, False), (4, True)):
        cfg = tiny_runner_cfg('configs/mini/bf-deformable-detr_r18_1xb16-mini.py', data, work, max_iters=max_iters)
        cfg.optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3))
        cfg.train_cfg.val_interval = 100
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
        cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=2)
        cfg.custom_hooks = [dict(type='GradPerClassHook', interval=1, write_interval=1, warmup=0)]
        cfg.resume = resume
        runner = _train(cfg)
        assert runner.iter == max_iters
        logs.append(json.load(open(osp.join(work, 'grad_per_class.json'))))
    first, resumed = logs
    assert first['measured_iters'] == 2 and resumed['measured_iters'] == 4
    assert resumed['step_seconds']['n_measured'] == 4
    assert resumed['train_seconds'] > first['train_seconds']
    counts = lambda log: sum(c['count'] for c in log['classes'])  # noqa: E731
    assert counts(resumed) > counts(first) > 0


def test_step_summary_compares_measured_and_unmeasured_steps():
    hook = GradPerClassHook(interval=4, warmup=0)
    hook.step_seconds = dict(measured=[0.3, 0.5, 0.4], unmeasured=[0.2, 0.2, 0.1, 0.3, 0.2])
    summary = hook.step_summary()
    assert summary['step_seconds']['median_measured'] == pytest.approx(0.4)
    assert summary['step_seconds']['median_unmeasured'] == pytest.approx(0.2)
    assert summary['overhead'] == pytest.approx((0.4 / 0.2 - 1) / 4)


def test_refuses_a_model_without_two_stream_batchformer(tmp_path):
    data = write_tiny_coco(str(tmp_path / 'coco'))
    cfg = tiny_runner_cfg('configs/mini/deformable-detr_r18_1xb16-mini.py', data, str(tmp_path / 'w'), max_iters=1)
    cfg.optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3))
    cfg.custom_hooks = [dict(type='GradPerClassHook')]
    with pytest.raises(RuntimeError, match='two_stream'):
        _train(cfg)
