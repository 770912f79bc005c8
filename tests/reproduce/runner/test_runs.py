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


def test_seconds_to_finish_from_the_pace_of_the_sittings(tmp_path):
    from reproduce.runner.runs import Schedule, seconds_to_finish
    run = Run('DETR', DETECTION.arm(1), 0, 'x.py', str(tmp_path))
    schedule = Schedule(1500, 'iter')
    assert seconds_to_finish(run, schedule) is None  # (no checkpoint yet)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_1450.pth'))
    assert seconds_to_finish(run, schedule) is None  # (no recorded time)
    (tmp_path / 'progress.json').write_text(json.dumps(dict(wall_s=1450.0, sittings=3)))
    assert seconds_to_finish(run, schedule, startup_s=30) == 50 * 1.0 + 30
    assert seconds_to_finish(run, Schedule(12, 'epoch')) is None
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_3.pth'))
    assert seconds_to_finish(run, schedule) is None


def test_near_the_deadline_only_runs_that_can_finish_start(tmp_path):
    from reproduce.runner.execute import split_late
    from reproduce.runner.runs import Identity, Schedule
    ident_of = {'x.py': Identity(Schedule(1500, 'iter'), 'canvas-x')}
    items = []
    for name, done, wall in (('near', 1450, 1450.0), ('far', 700, 700.0)):
        work = tmp_path / name
        work.mkdir()
        (work / 'last_checkpoint').write_text(str(work / f'iter_{done}.pth'))
        (work / 'progress.json').write_text(json.dumps(dict(wall_s=wall, sittings=1)))
        items.append((len(items) + 1, Run('DETR', DETECTION.arm(1), len(items), 'x.py', str(work)), 'interrupted',
                      None))
    new = (3, Run('DETR', DETECTION.arm(0), 0, 'x.py', str(tmp_path / 'new')), 'new', None)
    start, late = split_late(items + [new], 85.0, ident_of)  # near: 50 s + 30 s start-up; far: 830 s
    assert [i[0] for i in start] == [1] and [i[0] for i in late] == [2, 3]
    start, late = split_late(items + [new], 75.0, ident_of)
    assert start == [] and len(late) == 3


def test_merge_sittings_leaves_out_what_a_later_sitting_trained_again(tmp_path):
    from reproduce.runner.runs import merge_sittings

    def sitting(name, rows):
        path = tmp_path / name
        path.write_text(''.join(json.dumps(r) + '\n' for r in rows))
        return str(path)
    a = sitting('a.json', [dict(iter=1, loss=3.0), dict(iter=2, loss=2.5), dict(step=2, mAP=0.1),
                           dict(iter=3, loss=2.0), dict(step=3, mAP=0.2)])  # logged past its checkpoint at 2
    b = sitting('b.json', [dict(iter=3, loss=2.1), dict(iter=4, loss=1.9)])  # resumed from iteration 2
    rows = [json.loads(line) for line in merge_sittings([a, b])]
    assert rows == [dict(iter=1, loss=3.0), dict(iter=2, loss=2.5), dict(step=2, mAP=0.1),
                    dict(iter=3, loss=2.1), dict(iter=4, loss=1.9)]
    again = sitting('c.json', [dict(iter=1, loss=3.3)])  # started again from scratch
    assert [json.loads(line) for line in merge_sittings([a, again])] == [dict(iter=1, loss=3.3)]
    chained = sitting('d.json', [dict(iter=4, loss=1.0)])
    assert len(merge_sittings([a, chained])) == 6  # sittings that chain lose nothing
