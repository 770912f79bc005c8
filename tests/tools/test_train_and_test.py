"""Training and evaluation through mmengine's Runner on a tiny COCO dataset, and resume."""
import json
import os
import os.path as osp

import pytest
import torch

from helpers import DETECTOR_CONFIGS, DETECTORS, REPO, tiny_runner_cfg, write_tiny_coco


@pytest.fixture(scope='module')
def tiny_coco(tmp_path_factory):
    return write_tiny_coco(str(tmp_path_factory.mktemp('tiny_coco')))


def run(cfg):
    import mmdet_plugins  # noqa: F401
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def scalars(work_dir):
    logs = sorted(glob_json(work_dir))
    assert logs, f'no scalars.json under {work_dir}'
    with open(logs[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def glob_json(work_dir):
    for root, _, files in os.walk(work_dir):
        for name in files:
            if name == 'scalars.json':
                yield osp.join(root, name)


@pytest.mark.parametrize('name', DETECTORS)
@pytest.mark.parametrize('bf', [False, True], ids=['baseline', 'bf'])
def test_train_two_iterations_and_evaluate(name, bf, tiny_coco, tmp_path):
    cfg = tiny_runner_cfg(DETECTOR_CONFIGS[name][int(bf)], tiny_coco, str(tmp_path / 'work'))
    runner = run(cfg)
    assert type(runner.model).__name__ == ('BF' if bf else '') + name
    rows = scalars(cfg.work_dir)
    train_rows = [r for r in rows if 'loss' in r]
    assert [r['iter'] for r in train_rows] == [1, 2]
    assert all(r['loss'] == r['loss'] and r['loss'] > 0 for r in train_rows)  # finite, positive
    val_rows = [r for r in rows if 'coco/bbox_mAP' in r]
    assert len(val_rows) == 1 and 0.0 <= val_rows[0]['coco/bbox_mAP'] <= 1.0
    assert osp.isfile(osp.join(cfg.work_dir, 'iter_2.pth'))


def test_resume_from_own_checkpoint(tiny_coco, tmp_path):
    """A run stopped at iteration 2 resumes at 3 from its checkpoint (needs the weights_only adaptation)."""
    work = str(tmp_path / 'work')
    cfg = tiny_runner_cfg(DETECTOR_CONFIGS['DETR'][1], tiny_coco, work, max_iters=2)
    run(cfg)
    ckpt = torch.load(osp.join(work, 'iter_2.pth'), map_location='cpu', weights_only=False)
    with pytest.raises(Exception):  # what stock torch >= 2.6 does with mmengine's checkpoints
        torch.load(osp.join(work, 'iter_2.pth'), map_location='cpu')

    cfg = tiny_runner_cfg(DETECTOR_CONFIGS['DETR'][1], tiny_coco, work, max_iters=4)
    cfg.resume = True
    runner = run(cfg)
    assert runner.iter == 4
    rows = [r for r in scalars(work) if 'loss' in r]
    assert [r['iter'] for r in rows] == [3, 4], 'the resumed run must continue at iteration 3'
    resumed = torch.load(osp.join(work, 'iter_4.pth'), map_location='cpu', weights_only=False)
    assert resumed['meta']['iter'] == 4 and ckpt['meta']['iter'] == 2
    assert any(k.startswith('batchformer.') for k in resumed['state_dict'])


def test_train_entry_point_resume_flag(monkeypatch):
    """tools/train.py --resume (no path) resumes from the latest checkpoint in the work dir."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('bf_train_tool', osp.join(REPO, 'tools', 'train.py'))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    monkeypatch.chdir(REPO)
    args = train.parse_args(['configs/detr/bf-detr_r50_8xb2-50e_coco.py', '--resume', '--work-dir', 'w',
                             '--cfg-options', 'train_cfg.max_epochs=3'])
    cfg = train.build_config(args)
    assert cfg.resume is True and cfg.load_from is None and cfg.work_dir == 'w'
    assert cfg.train_cfg.max_epochs == 3
    with pytest.raises(SystemExit, match='not found'):
        train.build_config(train.parse_args(['configs/nope.py']))


def test_train_entry_point_adds_the_deadline_hook_only_with_bf_deadline(monkeypatch):
    import importlib.util
    spec = importlib.util.spec_from_file_location('bf_train_tool', osp.join(REPO, 'tools', 'train.py'))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    monkeypatch.chdir(REPO)
    argv = ['configs/mini/analysis/bf-deformable-detr_r18_1xb16-mini_gradlog.py']
    monkeypatch.delenv('BF_DEADLINE', raising=False)
    types = [h['type'] for h in train.build_config(train.parse_args(argv)).custom_hooks]
    assert types == ['TraceableDeformAttnHook', 'GradPerClassHook']
    monkeypatch.setenv('BF_DEADLINE', '1e12')
    types = [h['type'] for h in train.build_config(train.parse_args(argv)).custom_hooks]
    assert types == ['TraceableDeformAttnHook', 'GradPerClassHook', 'StopAtDeadlineHook']


def test_train_entry_point_no_amp(monkeypatch):
    import importlib.util
    spec = importlib.util.spec_from_file_location('bf_train_tool', osp.join(REPO, 'tools', 'train.py'))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    monkeypatch.chdir(REPO)
    cfg = train.build_config(train.parse_args(['configs/mini/smca-detr_r18_1xb16-mini.py', '--no-amp']))
    assert cfg.optim_wrapper.type == 'OptimWrapper' and 'loss_scale' not in cfg.optim_wrapper
    with pytest.raises(SystemExit, match='contradict'):
        train.build_config(train.parse_args(['configs/mini/smca-detr_r18_1xb16-mini.py', '--no-amp', '--amp']))
