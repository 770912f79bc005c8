"""The panoptic table (reproduce/tables/panoptic.py): its two-stage configs, the runner's first stage (its states,
resume and the run's start from its final checkpoint), compare.py on its CSV, and the smoke scale end to end."""
import json
import os
import os.path as osp

import pandas as pd
import pytest

from helpers import REPO
from mmdet_plugins.datasets.fashion_canvas import FASHION_MNIST_DIR


def test_every_run_has_two_stage_configs():
    from reproduce.tables.panoptic import SPEC, config_path
    for scale in ('mini', 'full'):
        for arm in SPEC.arms:
            first, second = SPEC.pre_stage('DETR', arm, scale), SPEC.config('DETR', arm, scale)
            assert first != second and 'stage1' in first and 'stage2' in second
            assert osp.basename(second).startswith('bf-') == (arm.value == 1)  # (the plain head: a plain model)
            assert osp.isfile(osp.join(REPO, first)) and osp.isfile(osp.join(REPO, second))
    with pytest.raises(KeyError, match='unknown row'):
        config_path('DINO', False, 'mini')
    with pytest.raises(ValueError, match='a plain mask head is a stage 2 on the BatchFormerV2 box model'):
        config_path('DETR', False, 'mini', plain_head=True)
    with pytest.raises(ValueError, match='stage must be 1 or 2'):
        config_path('DETR', False, 'mini', stage=3)
    with pytest.raises(ValueError, match="no 'tiny' scale"):
        config_path('DETR', False, 'tiny')


def test_the_plain_head_is_the_baselines_stage_2_on_the_batchformer_box_model():
    """The plain-head arm's stage-2 config trains what the baseline's does (one stream, no module); its first stage
    is the BatchFormerV2 run's; at full scale its default load_from is that stage's last checkpoint."""
    from mmengine.config import Config
    from reproduce.tables.panoptic import SPEC
    plain, base, bf = SPEC.arm(2), SPEC.arm(0), SPEC.arm(1)
    assert SPEC.first_stage_owner(plain) is bf and SPEC.first_stage_owner(bf) is bf
    for scale in ('mini', 'full'):
        cfg = {a.tag: Config.fromfile(osp.join(REPO, SPEC.config('DETR', a, scale))) for a in (plain, base, bf)}
        assert cfg['bf-plain-head'].model == cfg['base'].model and cfg['bf'].model.type == 'BFDETRPanoptic'
        assert SPEC.pre_stage('DETR', plain, scale) == SPEC.pre_stage('DETR', bf, scale)
    full = Config.fromfile(osp.join(REPO, SPEC.config('DETR', plain, 'full')))
    assert full.load_from == Config.fromfile(osp.join(REPO, SPEC.config('DETR', bf, 'full'))).load_from


def _checkpoint(run, it):
    os.makedirs(run.work_dir, exist_ok=True)
    path = osp.join(run.work_dir, f'iter_{it}.pth')
    open(path, 'w').close()
    with open(osp.join(run.work_dir, 'last_checkpoint'), 'w') as f:
        f.write(path)


def test_first_stage_states(tmp_path):
    """new -> interrupted (a checkpoint before the end) -> done (the last iteration's); another fingerprint clears
    it; another dataset is refused."""
    from reproduce.runner.execute import first_stage_state
    from reproduce.runner.runs import Identity, Run, Schedule, mark_started, stage1_run
    from reproduce.tables.panoptic import SPEC
    run = Run('DETR', SPEC.arms[1], 0, 'second.py', str(tmp_path / 'DETR-bf-s0'))
    ident = {'first.py': Identity(Schedule(10, 'iter', 'aaaa'), 'data-1')}
    pre = stage1_run(run, 'first.py')
    assert pre.work_dir == osp.join(run.work_dir, 'stage1') and pre.config == 'first.py'
    assert first_stage_state(run, 'first.py', ident) == 'new'
    _checkpoint(pre, 5)
    mark_started(pre, ident['first.py'])
    assert first_stage_state(run, 'first.py', ident) == 'interrupted'
    _checkpoint(pre, 10)
    assert first_stage_state(run, 'first.py', ident) == 'done'
    other = {'first.py': Identity(Schedule(10, 'iter', 'bbbb'), 'data-1')}
    with pytest.raises(SystemExit, match='another dataset'):
        first_stage_state(run, 'first.py', {'first.py': Identity(Schedule(10, 'iter', 'aaaa'), 'data-2')})
    assert first_stage_state(run, 'first.py', other) == 'new' and not osp.exists(pre.work_dir)


def test_compare_recognises_the_panoptic_csv(tmp_path):
    from reproduce import compare
    from reproduce.tables.panoptic import SPEC
    rows = []
    for seed in range(3):
        for arm in SPEC.arms:
            row = dict(model='DETR', bf=arm.value, seed=seed, iterations=2000, commit='c', date='d',
                       config=SPEC.config('DETR', arm, 'mini'), stage1_config=SPEC.pre_stage('DETR', arm, 'mini'))
            row.update({m: 40.0 + seed + arm.value for m in SPEC.metrics})
            rows.append(row)
    csv = tmp_path / 'panoptic_mini.csv'
    pd.DataFrame(rows).to_csv(csv, index=False)
    assert compare.table_of(str(csv)).name == 'panoptic'
    assert compare.main([str(csv), str(csv)]) == 0


@pytest.mark.slow
@pytest.mark.skipif(not osp.isfile(osp.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')),
                    reason='Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)')
def test_smoke_end_to_end(tmp_path, capsys):
    """Both arms train both stages on the CPU, and the plain mask head its stage 2 from the BatchFormerV2 run's
    stage 1; stage 2 starts from stage 1's last checkpoint; the CSV has PQ, the first stage's config and run and the
    time of both stages; a second call trains nothing."""
    from mmengine.config import Config
    from reproduce.tables import panoptic
    args = ['--scale', 'smoke', '--work-root', str(tmp_path / 'w'), '--results-dir', str(tmp_path / 'r'),
            '--data-root', str(tmp_path / 'd')]
    assert panoptic.main(args) == 0
    out = capsys.readouterr().out
    assert 'DETR-base-s0 stage 1: starting' in out and 'DETR-base-s0: stage 1 finished' in out
    assert 'DETR-bf-s0, DETR-bf-plain-head-s0: stage 1 finished' in out
    df = pd.read_csv(tmp_path / 'r' / 'measured' / 'panoptic_smoke.csv')
    assert sorted(df.bf) == [0, 1, 2] and df.PQ.between(0, 100).all() and df.SQ.notna().all()
    assert all('stage1' in c for c in df.stage1_config) and all('stage2' in c for c in df.config)
    assert list(df.sort_values('bf').stage1_run) == ['DETR-base-s0', 'DETR-bf-s0', 'DETR-bf-s0']
    work = tmp_path / 'w'
    for name, owner in (('DETR-base-s0', 'DETR-base-s0'), ('DETR-bf-s0', 'DETR-bf-s0'),
                        ('DETR-bf-plain-head-s0', 'DETR-bf-s0')):
        run_dir = next(p for p in work.rglob(name) if p.is_dir())
        stage1 = run_dir.parent / owner / 'stage1'
        final = Config.fromfile(str(run_dir / 'run_config.py')).load_from
        assert osp.dirname(final) == str(stage1) and osp.isfile(final)
    assert not (run_dir / 'stage1').exists()  # (the plain head trained no box model of its own)
    table = (tmp_path / 'r' / 'tables' / 'panoptic_smoke.md').read_text()
    assert 'SMOKE SCALE' in table and '45.1' in table  # the paper's BatchFormerV2 PQ beside the measured rows
    assert panoptic.main(args) == 0 and capsys.readouterr().out.count('finished, skipped') == 3
    # each run kept its predictions on the first validation canvases, and the figure draws from them alone
    logs = tmp_path / 'r' / 'logs' / 'panoptic_smoke'
    stored = [logs / f'DETR-{arm}-s0.panoptic_predictions.json' for arm in ('base', 'bf')]
    for path in stored:
        images = json.loads(path.read_text())['images']
        assert len(images) == 4 and all(im['gt'] and im['pred'] for im in images)
    from analysis.plot_panoptic import main as plot_panoptic
    assert plot_panoptic([str(p) for p in stored] + ['-o', str(tmp_path / 'panoptic.png')]) == 0
    assert (tmp_path / 'panoptic.png').stat().st_size > 10_000
