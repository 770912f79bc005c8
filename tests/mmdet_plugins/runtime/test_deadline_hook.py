"""StopAtDeadlineHook: a run past its deadline stops with a checkpoint and resumes from it."""
import os.path as osp
import time

import pytest

from helpers import DETECTOR_CONFIGS, tiny_runner_cfg, write_tiny_coco


def test_stops_with_checkpoint_then_resumes(tmp_path, monkeypatch):
    import mmdet_plugins  # noqa: F401
    from mmengine.runner import Runner
    data = write_tiny_coco(str(tmp_path / 'coco'))
    work = str(tmp_path / 'work')
    cfg = tiny_runner_cfg(DETECTOR_CONFIGS['DETR'][0], data, work, max_iters=4)
    cfg.custom_hooks = [dict(type='StopAtDeadlineHook')]
    monkeypatch.setenv('BF_DEADLINE', str(time.time() - 1))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    assert open(osp.join(work, 'last_checkpoint')).read().endswith('iter_1.pth')

    monkeypatch.delenv('BF_DEADLINE')
    cfg = tiny_runner_cfg(DETECTOR_CONFIGS['DETR'][0], data, work, max_iters=4)
    cfg.custom_hooks = [dict(type='StopAtDeadlineHook')]
    cfg.resume = True
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 4


def test_bad_deadline_value(monkeypatch):
    from mmdet_plugins.runtime import StopAtDeadlineHook
    monkeypatch.setenv('BF_DEADLINE', 'soon')
    with pytest.raises(ValueError, match='Unix time'):
        StopAtDeadlineHook()
