"""reproduce/table_detection.py at the smoke scale, end to end on the CPU: train, evaluate, CSV, table,
skip finished runs, resume an interrupted one. Uses temporary work/results folders."""
import os.path as osp
import shutil

import pandas as pd
import pytest

from helpers import REPO
from mmdet_plugins.datasets.fashion_canvas import FASHION_MNIST_DIR

needs_fashion_mnist = pytest.mark.skipif(
    not osp.isfile(osp.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')),
    reason='Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)')


@pytest.fixture()
def dirs(tmp_path):
    results = tmp_path / 'results'
    (results / 'paper').mkdir(parents=True)
    shutil.copy(osp.join(REPO, 'results/paper/detection.csv'), results / 'paper/detection.csv')
    return dict(work=str(tmp_path / 'work'), results=str(results), data=str(tmp_path / 'data'))


def table_main(dirs, *extra):
    import sys
    sys.path.insert(0, REPO)
    from reproduce import table_detection
    return table_detection.main(['--scale', 'smoke', '--work-root', dirs['work'], '--results-dir', dirs['results'],
                                 '--data-root', dirs['data'], *extra])


def test_dry_run_prints_commands(dirs, capsys):
    assert table_main(dirs, '--dry-run') == 0
    out = capsys.readouterr().out
    assert out.count('tools/train.py') == 4 and '[1/4] DETR-base-s0 (new)' in out


@needs_fashion_mnist
@pytest.mark.slow
def test_smoke_end_to_end_with_interrupt_and_resume(dirs, capsys):
    # 1) a deadline one second away: the first run stops after an iteration with a checkpoint, the others wait
    assert table_main(dirs, '--deadline', '1', '--min-start-s', '0') == 0
    out = capsys.readouterr().out
    assert 'SMOKE SCALE' in out
    assert 'DETR-base-s0: stopped before its last iteration' in out
    assert osp.isfile(osp.join(dirs['work'], 'smoke', 'DETR-base-s0', 'last_checkpoint'))
    assert not osp.exists(osp.join(dirs['results'], 'measured', 'detection_smoke.csv'))

    # 2) again: the interrupted run resumes, the others start, everything is collected
    assert table_main(dirs) == 0
    out = capsys.readouterr().out
    assert '[1/4] DETR-base-s0: resuming' in out and '[2/4] DETR-bf-s0: starting' in out
    csv = osp.join(dirs['results'], 'measured', 'detection_smoke.csv')
    df = pd.read_csv(csv)
    assert len(df) == 4 and set(df.bf) == {0, 1} and set(df.seed) == {0, 1}
    assert (df.iterations == 4).all() and df.AP.between(0, 100).all()
    assert df.set_index(['bf', 'seed']).loc[(0, 0), 'sittings'] == 2
    for col in ('gpu', 'commit', 'date', 'config'):
        assert df[col].notna().all()
    table = open(osp.join(dirs['results'], 'tables', 'detection_smoke.md')).read()
    assert 'SMOKE SCALE' in table and '| DETR | 2/2 |' in table and '34.8' in table and 'missing' in table
    assert osp.isfile(osp.join(dirs['results'], 'logs', 'detection_smoke', 'DETR-bf-s1.json'))

    # 3) once more: nothing to train, the CSV is rebuilt identically
    before = open(csv).read()
    assert table_main(dirs) == 0
    out = capsys.readouterr().out
    assert out.count('finished, skipped') == 4 and 'starting' not in out
    assert open(csv).read() == before

    # 4) --collect-only from the work dirs alone (stored CSV removed)
    import os
    os.remove(csv)
    assert table_main(dirs, '--collect-only') == 0
    assert len(pd.read_csv(csv)) == 4

    # 5) a run stopped during its final validation (checkpoint at the last iteration, no result) is evaluated
    work = osp.join(dirs['work'], 'smoke', 'DETR-bf-s1')
    os.remove(osp.join(work, 'result.json'))
    for log in os.listdir(work):
        if log[:8].isdigit():
            shutil.rmtree(osp.join(work, log))
    df = pd.read_csv(csv)
    df[~((df.bf == 1) & (df.seed == 1))].to_csv(csv, index=False)
    assert table_main(dirs) == 0
    out = capsys.readouterr().out
    assert 'DETR-bf-s1: evaluating its last checkpoint' in out and 'DETR-bf-s1: finished' in out
    assert len(pd.read_csv(csv)) == 4

    # 6) --force retrains a finished run; a stale result.json (other schedule) is not taken as finished
    with open(osp.join(work, 'result.json')) as f:
        text = f.read()
    with open(osp.join(work, 'result.json'), 'w') as f:
        f.write(text.replace('"iterations": 4', '"iterations": 99'))
    from reproduce.table_detection import Run, Schedule, read_result
    run = Run('DETR', 1, 1, 'configs/mini/bf-detr_r18_1xb16-mini.py', work)
    assert read_result(run, Schedule(4, 'iter')) is None


def test_csv_text_columns_survive_a_round_trip(tmp_path):
    import sys
    sys.path.insert(0, REPO)
    from reproduce.detection_results import read_results_csv
    path = tmp_path / 'r.csv'
    path.write_text('detector,bf,seed,AP,commit,wall_s\nDETR,0,0,30.9,012345678901,12345.6\n'
                    'DETR,1,0,31.5,1234567e8901,7.0\n')
    df = read_results_csv(str(path))
    assert df.commit.tolist() == ['012345678901', '1234567e8901'] and df.wall_s.tolist() == [12345.6, 7.0]


def test_full_scale_without_coco_says_what_is_missing(dirs):
    with pytest.raises(SystemExit, match='COCO 2017 not found'):
        table_main(dirs, '--scale', 'full', '--data-root', dirs['data'])


def test_only_restricts_the_runs_and_rejects_unknown_names(dirs, capsys):
    assert table_main(dirs, '--dry-run', '--only', 'DETR-bf-s1', 'DETR-base-s0') == 0
    out = capsys.readouterr().out
    assert out.count('tools/train.py') == 2
    assert '[1/2] DETR-bf-s1 (new)' in out and '[2/2] DETR-base-s0 (new)' in out
    with pytest.raises(SystemExit, match=r"--only \['DETR-bf-s7'\].*valid names: DETR-base-s0"):
        table_main(dirs, '--dry-run', '--only', 'DETR-bf-s7')


@pytest.mark.parametrize('scale,parallel,gpu_ids,expected', [
    ('mini', 4, ['0', '1', '2', '3'], ['0', '1', '2', '3']),
    ('mini', 3, ['0', '1'], ['0', '1', '0']),       # more runs than GPUs: round-robin
    ('mini', 1, ['2'], ['2']),                      # an explicit GPU pins even a single run
    ('smoke', 4, ['0', '1'], None),                 # the CPU: nothing to pin
])
def test_gpu_slots_pin_each_parallel_run_to_one_gpu(scale, parallel, gpu_ids, expected):
    import argparse
    import sys
    sys.path.insert(0, REPO)
    from reproduce.table_detection import gpu_slots
    args = argparse.Namespace(scale=scale, parallel=parallel, gpu_ids=gpu_ids, gpus=1)
    assert gpu_slots(args) == expected


def test_a_changed_config_makes_stored_work_stale(tmp_path):
    """A work directory or result made under another config fingerprint is retrained, not reused."""
    import json
    from helpers import load_config
    from reproduce.table_detection import Run, Schedule, config_fingerprint, read_result, run_state
    cfg = load_config('configs/mini/detr_r18_1xb16-mini.py')
    fp = config_fingerprint(cfg)
    assert fp == config_fingerprint(load_config('configs/mini/detr_r18_1xb16-mini.py')) and len(fp) == 12
    changed = load_config('configs/mini/detr_r18_1xb16-mini.py')
    changed.model.backbone.init_cfg = None
    assert config_fingerprint(changed) != fp
    work = tmp_path / 'run'
    work.mkdir()
    run = Run('DETR', 0, 0, 'configs/mini/detr_r18_1xb16-mini.py', str(work))
    schedule = Schedule(3000, 'iter', fp)
    (work / 'result.json').write_text(json.dumps(dict(config=run.config, iterations=3000, config_hash=fp)))
    (work / 'fingerprint.txt').write_text(fp)
    assert read_result(run, schedule) is not None and run_state(run, set(), False, schedule) == 'finished'
    other = Schedule(3000, 'iter', config_fingerprint(changed))
    assert read_result(run, other) is None
    assert run_state(run, {run.key}, False, other) == 'redo'
    (work / 'fingerprint.txt').unlink()  # a work dir from before fingerprints: judged by its result only
    (work / 'result.json').write_text(json.dumps(dict(config=run.config, iterations=3000)))
    assert run_state(run, set(), False, other) == 'finished'


def test_custom_hooks_count_in_the_fingerprint_and_hookless_configs_keep_theirs():
    """A hook can change what a run trains (TraceableDeformAttnHook's fp32 backward): a config's hooks are part of
    its fingerprint; a config without hooks hashes as before hooks counted (its stored rows stay current)."""
    import hashlib
    import json
    from helpers import load_config
    from reproduce.table_detection import FINGERPRINT_KEYS, config_fingerprint
    cfg = load_config('configs/mini/deformable-detr_r18_1xb16-mini.py')
    fp = config_fingerprint(cfg)
    cfg.custom_hooks = [dict(type='TraceableDeformAttnHook')]
    assert config_fingerprint(cfg) != fp
    detr = load_config('configs/mini/detr_r18_1xb16-mini.py')
    assert not detr.get('custom_hooks')
    parts = {k: detr.get(k) for k in FINGERPRINT_KEYS}
    parts['batch_size'] = detr.train_dataloader.batch_size
    before = hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]
    assert config_fingerprint(detr) == before
