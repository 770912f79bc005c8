"""The runner's run folders: copying a run's json logs into the results."""
import json
import os.path as osp

from reproduce.runner.runs import Run, copy_logs
from reproduce.tables.detection import SPEC as DETECTION
from reproduce.tables.panoptic import SPEC as PANOPTIC


def _sitting(folder, name, *iters):
    path = folder / name / 'vis_data'
    path.mkdir(parents=True)
    (path / 'scalars.json').write_text(''.join(json.dumps(dict(iter=i, loss=1.0)) + '\n\n' for i in iters))


def test_copy_logs_merges_the_sittings_in_order(tmp_path):
    work = tmp_path / 'work'
    _sitting(work, '20261204_100000', 1, 2)
    _sitting(work, '20261204_110000', 3)
    run = Run('DETR', DETECTION.arm(1), 0, 'configs/mini/bf-detr_r18_1xb16-mini.py', str(work))
    copy_logs(run, DETECTION, str(tmp_path / 'logs'))
    lines = (tmp_path / 'logs' / 'DETR-bf-s0.json').read_text().splitlines()
    assert [json.loads(line)['iter'] for line in lines] == [1, 2, 3]  # (blank lines dropped)


def test_copy_logs_puts_a_first_stage_first(tmp_path):
    work = tmp_path / 'work'
    _sitting(work, '20261204_120000', 11)
    _sitting(work / 'stage1', '20261204_100000', 1)
    run = Run(PANOPTIC.rows[0], PANOPTIC.arms[0], 2, 'x.py', str(work))
    copy_logs(run, PANOPTIC, str(tmp_path / 'logs'))
    (log, ) = (tmp_path / 'logs').iterdir()
    assert [json.loads(line)['iter'] for line in log.read_text().splitlines()] == [1, 11]


def test_copy_logs_without_log_lines_keeps_the_stored_log(tmp_path):
    (tmp_path / 'work').mkdir()
    logs = tmp_path / 'logs'
    logs.mkdir()
    (logs / 'DETR-bf-s0.json').write_text('{"iter": 5}\n')
    run = Run('DETR', DETECTION.arm(1), 0, 'configs/mini/bf-detr_r18_1xb16-mini.py', str(tmp_path / 'work'))
    copy_logs(run, DETECTION, str(logs))
    assert (logs / 'DETR-bf-s0.json').read_text() == '{"iter": 5}\n'


def test_copy_logs_prefers_the_artifact_of_a_validation_only_pass(tmp_path):
    work = tmp_path / 'work'
    _sitting(work, '20261204_100000', 1)
    (work / 'panoptic_predictions.json').write_text('{"from": "training"}')
    run = Run(PANOPTIC.rows[0], PANOPTIC.arms[1], 0, 'x.py', str(work))
    logs = tmp_path / 'logs'
    copy_logs(run, PANOPTIC, str(logs))
    assert (logs / f'{run.name}.panoptic_predictions.json').read_text() == '{"from": "training"}'
    (work / 'final_eval').mkdir()
    (work / 'final_eval' / 'panoptic_predictions.json').write_text('{"from": "final_eval"}')
    copy_logs(run, PANOPTIC, str(logs))
    assert (logs / f'{run.name}.panoptic_predictions.json').read_text() == '{"from": "final_eval"}'


def test_a_recording_hook_leaves_the_fingerprint_as_it_is():
    from mmengine.config import Config
    from reproduce.runner.runs import config_fingerprint
    cfg = Config(dict(model=dict(type='M'), optim_wrapper=dict(type='O'), train_cfg=dict(max_iters=4),
                      train_dataloader=dict(batch_size=2)))
    plain = config_fingerprint(cfg)
    cfg.custom_hooks = [dict(type='PanopticPredictionsHook', num_images=4)]
    assert config_fingerprint(cfg) == plain
    cfg.custom_hooks.append(dict(type='TraceableDeformAttnHook', backward_dtype='float32'))
    assert config_fingerprint(cfg) != plain  # (a hook that changes the training counts)


def test_row_arms_must_name_known_rows_and_arms():
    import dataclasses
    import pytest
    from reproduce.tables.ablation import SPEC
    with pytest.raises(ValueError, match=r"row_arms\['SMCA'\]"):
        dataclasses.replace(SPEC, row_arms={'SMCA': (0, 1)})
    with pytest.raises(ValueError, match='arm values'):
        dataclasses.replace(SPEC, row_arms={'SMCADETR': (0, 99)})
