"""Data-parallel training on the CPU: tools/dist_train.sh and tools/dist_test.sh with 2 gloo processes train a
two-stream BatchFormerV2 detector under DDP, checkpoint, resume and evaluate (per-GPU and global batch)."""
import json
import os
import os.path as osp
import socket
import subprocess

import pytest

from helpers import DETECTOR_CONFIGS, REPO, tiny_runner_cfg, write_tiny_coco


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def launch(script, *args):
    import sys
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    return subprocess.run(['bash', osp.join(REPO, 'tools', script), *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=env)


def scalars(work):
    rows = []
    for root, _, files in sorted(os.walk(work)):
        if 'scalars.json' in files and root.endswith('vis_data'):
            with open(osp.join(root, 'scalars.json')) as f:
                rows += [json.loads(line) for line in f if line.strip()]
    return rows


def config_file(tmp_path, data, work, max_iters, global_batch):
    cfg = tiny_runner_cfg(DETECTOR_CONFIGS['DETR'][1], data, work, max_iters=max_iters)
    cfg.model.batchformer.global_batch = global_batch
    # the global batch pairs tokens by position: every rank's batch padded to one size
    cfg.model.data_preprocessor.batch_augments = [dict(type='BatchFixedSizePad', size=(96, 96))]
    path = tmp_path / f'cfg_{max_iters}.py'
    cfg.dump(str(path))
    return path


@pytest.mark.slow
@pytest.mark.parametrize('global_batch', [False, True], ids=['per_gpu', 'global_batch'])
def test_two_processes_train_checkpoint_resume_and_evaluate(tmp_path, global_batch):
    data = write_tiny_coco(str(tmp_path / 'coco'))
    work = str(tmp_path / 'work')
    res = launch('dist_train.sh', config_file(tmp_path, data, work, 2, global_batch), 2, '--work-dir', work)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert 'Expected to have finished reduction' not in res.stderr  # DDP's unused-parameter error
    rows = scalars(work)
    assert [r['iter'] for r in rows if 'loss' in r] == [1, 2]
    assert any('coco/bbox_mAP' in r for r in rows) and osp.isfile(osp.join(work, 'iter_2.pth'))
    log = res.stdout + res.stderr
    assert 'Distributed training: True' in log and 'GPU number: 2' in log  # (mmengine's name for the world size)

    res = launch('dist_train.sh', config_file(tmp_path, data, work, 4, global_batch), 2, '--work-dir', work,
                 '--resume')
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert [r['iter'] for r in scalars(work) if 'loss' in r] == [1, 2, 3, 4], 'resumed at iteration 3'

    res = launch('dist_test.sh', config_file(tmp_path, data, work, 4, global_batch), osp.join(work, 'iter_4.pth'), 2,
                 '--work-dir', str(tmp_path / 'test'))
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert 'coco/bbox_mAP' in res.stdout + res.stderr
