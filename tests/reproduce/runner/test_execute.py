"""The runner's execution of two-stage runs (reproduce/runner/execute.py) with a stand-in for tools/train.py: a first
stage that several arms start from trains once, in the work directory of the run that owns it."""
import json
import os.path as osp
import sys
from types import SimpleNamespace

import pytest

from reproduce.runner import execute as E
from reproduce.runner.runs import Identity, Run, Schedule
from reproduce.tables.panoptic import SPEC

ITERS = {'first.py': 4, 'base.py': 2, 'bf.py': 2, 'plain.py': 2}
PRIMARY = SPEC.metrics[SPEC.primary]

# writes what a finished training leaves: its final checkpoint, last_checkpoint and a json log that ends with a
# validation (stage 2) or without one (a first stage)
STAND_IN = '''
import json, os, sys, time
work, iters, val = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ckpt = os.path.join(work, f'iter_{iters}.pth')
open(ckpt, 'w').close()
open(os.path.join(work, 'last_checkpoint'), 'w').write(ckpt)
vis = os.path.join(work, time.strftime('%Y%m%d_%H%M%S') + str(time.time_ns()), 'vis_data')
os.makedirs(vis)
lines = [dict(iter=i, loss=1.0) for i in range(1, iters + 1)] + ([{val: 50.0, 'step': 0}] if val != '-' else [])
open(os.path.join(vis, 'scalars.json'), 'w').write(''.join(json.dumps(r) + '\\n' for r in lines))
'''


class FakeConfig(SimpleNamespace):
    def dump(self, path):
        with open(path, 'w') as f:
            json.dump(vars(self), f)


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    script = tmp_path / 'train.py'
    script.write_text(STAND_IN)
    started = []

    def command(run, state, gpus):
        started.append(run.work_dir)
        val = '-' if run.config == 'first.py' else PRIMARY
        return [sys.executable, str(script), run.work_dir, str(ITERS[run.config]), val]
    monkeypatch.setattr(E, 'command', command)
    return started


def _execute(tmp_path, arms, force=False, fingerprints=None):
    runs = [Run('DETR', SPEC.arm(a), 0, {0: 'base.py', 1: 'bf.py', 2: 'plain.py'}[a], '') for a in arms]
    for run in runs:
        run.work_dir = str(tmp_path / 'work' / run.name)
    ident_of = {c: Identity(Schedule(n, 'iter', (fingerprints or {}).get(c, f'fp-{c}')), 'data-1')
                for c, n in ITERS.items()}
    args = SimpleNamespace(force=force, parallel=2, deadline=None, min_start_s=0, gpu_ids=None, gpus=1, scale='smoke')
    pre_config_of = {'base.py': 'first.py', 'bf.py': 'first.py', 'plain.py': 'first.py'}
    logs = tmp_path / 'logs'
    logs.mkdir(exist_ok=True)
    rows, failed = E.execute(runs, args, SPEC.scales['smoke'], SPEC, set(), ident_of,
                             lambda run: FakeConfig(work_dir=run.work_dir, load_from=None), str(logs), 'cpu',
                             pre_config_of)
    return runs, {row['stage1_run'] + ' <- ' + SPEC.arm(row['bf']).tag: row for row in rows}, failed, logs


def _load_from(run):
    with open(osp.join(run.work_dir, 'run_config.py')) as f:
        return json.load(f)['load_from']


def test_a_shared_first_stage_trains_once_and_both_runs_start_from_it(tmp_path, stand_in, capsys):
    runs, rows, failed, logs = _execute(tmp_path, (0, 1, 2))
    base, bf, plain = runs
    assert not failed and sorted(rows) == ['DETR-base-s0 <- base', 'DETR-bf-s0 <- bf', 'DETR-bf-s0 <- bf-plain-head']
    first_stages = [w for w in stand_in if w.endswith('stage1')]
    assert sorted(first_stages) == [osp.join(base.work_dir, 'stage1'), osp.join(bf.work_dir, 'stage1')]
    assert not osp.exists(osp.join(plain.work_dir, 'stage1'))
    assert _load_from(plain) == _load_from(bf) == osp.join(bf.work_dir, 'stage1', 'iter_4.pth')
    assert 'DETR-bf-s0, DETR-bf-plain-head-s0: stage 1 finished' in capsys.readouterr().out
    # the plain head's log holds the shared first stage's lines first; its time is its own stage's alone
    lines = [json.loads(line) for line in (logs / f'{plain.name}.json').read_text().splitlines()]
    assert [r.get('iter') for r in lines] == [1, 2, 3, 4, 1, 2, None]
    assert rows['DETR-bf-s0 <- bf-plain-head']['sittings'] == 1 and rows['DETR-bf-s0 <- bf']['sittings'] == 2


def test_the_plain_head_alone_trains_the_first_stage_in_its_owners_folder(tmp_path, stand_in):
    runs, rows, failed, _ = _execute(tmp_path, (2, ))
    (plain, ) = runs
    owner = tmp_path / 'work' / 'DETR-bf-s0'
    assert not failed and list(rows) == ['DETR-bf-s0 <- bf-plain-head']
    assert stand_in[0] == str(owner / 'stage1') and _load_from(plain) == str(owner / 'stage1' / 'iter_4.pth')
    # the BatchFormerV2 run then finds its first stage done and trains only its own second stage
    stand_in.clear()
    _, rows, failed, _ = _execute(tmp_path, (1, 2))
    assert not failed and stand_in == [str(owner)] and list(rows) == ['DETR-bf-s0 <- bf']


@pytest.mark.parametrize('order', [(2, 1), (1, 2)])
def test_forcing_both_in_either_order_trains_the_shared_first_stage_once_before_both(tmp_path, stand_in, order):
    _execute(tmp_path, (1, 2))
    stand_in.clear()
    runs, rows, failed, _ = _execute(tmp_path, order, force=True)
    owner = str(tmp_path / 'work' / 'DETR-bf-s0')
    assert not failed and len(rows) == 2 and [w for w in stand_in if w.endswith('stage1')] == [owner + '/stage1']
    assert len(stand_in) == 3 and stand_in.index(owner + '/stage1') == 0


@pytest.mark.parametrize('order', [(2, 1), (1, 2)])
def test_a_changed_second_stage_of_the_owner_keeps_the_shared_first_stage(tmp_path, stand_in, order):
    """A new BatchFormerV2 stage-2 config trains that stage again, not the first stage the plain head started
    from; the plain head stays finished."""
    _execute(tmp_path, (1, 2))
    stand_in.clear()
    _, rows, failed, _ = _execute(tmp_path, order, fingerprints={'bf.py': 'fp-new'})
    assert not failed and list(rows) == ['DETR-bf-s0 <- bf'] and stand_in == [str(tmp_path / 'work' / 'DETR-bf-s0')]


def test_a_changed_first_stage_trains_once_for_both(tmp_path, stand_in):
    _execute(tmp_path, (1, 2))
    stand_in.clear()
    new = {'first.py': 'fp-new', 'bf.py': 'fp-bf-2', 'plain.py': 'fp-plain-2'}  # (the runner's combined fingerprints)
    _, rows, failed, _ = _execute(tmp_path, (2, ), fingerprints=new)
    assert not failed and stand_in[0].endswith('DETR-bf-s0/stage1') and len(stand_in) == 2
    stand_in.clear()
    _, rows, failed, _ = _execute(tmp_path, (1, ), fingerprints=new)  # (its first stage is the new one: kept)
    assert not failed and stand_in == [str(tmp_path / 'work' / 'DETR-bf-s0')]


def test_forcing_the_owner_alone_is_refused(tmp_path):
    from reproduce.tables import panoptic
    with pytest.raises(SystemExit) as stop:
        panoptic.main(['--scale', 'smoke', '--force', '--only', 'DETR-bf-s0', '--work-root', str(tmp_path / 'w'),
                       '--results-dir', str(tmp_path / 'r'), '--data-root', str(tmp_path / 'd'), '--dry-run'])
    message = str(stop.value)
    assert 'first stage that DETR-bf-plain-head-s0 started from' in message and '\n' not in message


def test_an_arm_must_share_the_first_stage_of_another_arm_that_trains_its_own():
    import dataclasses
    from reproduce.runner import Arm
    shared = Arm(3, 'x', 'x', 'x', first_stage_from=2)  # arm 2 itself shares arm 1's
    with pytest.raises(ValueError, match="arm 'x' takes its first stage from arm 2"):
        dataclasses.replace(SPEC, arms=SPEC.arms + (shared, ))
    with pytest.raises(ValueError, match='takes its first stage from arm 1'):
        dataclasses.replace(SPEC, pre_stage=None)
    with pytest.raises(ValueError, match=r"row_arms\['DETR'\] has arm 'bf-plain-head' without arm 1"):
        dataclasses.replace(SPEC, row_arms={'DETR': (0, 2)})
