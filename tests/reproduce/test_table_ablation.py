"""The ablation table (reproduce/tables/ablation.py): its configs, its arms-as-lines table with paired intervals
against the baseline and the default setting, compare.py on its CSV, and the smoke scale end to end on the CPU."""
import os.path as osp

import pandas as pd
import pytest

from helpers import REPO
from mmdet_plugins.datasets.fashion_canvas import FASHION_MNIST_DIR


def test_every_arm_has_a_config():
    from reproduce.tables.ablation import SPEC, VARIANTS, config_path
    assert len(SPEC.arms) == len(VARIANTS) == 12 and SPEC.arms[0].tag == 'base' and SPEC.arms[1].tag == 'bf'
    for v in VARIANTS:
        assert osp.isfile(osp.join(REPO, config_path('DeformableDETR', v)))
    with pytest.raises(ValueError, match='no .full. scale'):
        config_path('DeformableDETR', 0, 'full')
    with pytest.raises(KeyError, match='unknown variant'):
        config_path('DeformableDETR', 12)
    # the second detector: the baseline, the default and the one-stream variant only
    assert [arm.tag for arm in SPEC.arms_of('SMCADETR')] == ['base', 'bf', 'one-stream']
    assert SPEC.arms_of('DeformableDETR') == SPEC.arms
    for arm in SPEC.arms_of('SMCADETR'):
        assert osp.isfile(osp.join(REPO, config_path('SMCADETR', arm.value)))
    with pytest.raises(KeyError, match='SMCADETR trains the variants'):
        config_path('SMCADETR', 9)


def test_the_second_detector_trains_its_arms_only(capsys):
    from reproduce.tables import ablation
    assert ablation.main(['--scale', 'mini', '--dry-run', '--only', 'SMCADETR-one-stream-s2']) == 0
    assert 'SMCADETR-one-stream-s2 (new)' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='no such run'):
        ablation.main(['--scale', 'mini', '--dry-run', '--only', 'SMCADETR-group2-s0'])


def frame():
    from reproduce.tables.ablation import SPEC
    rows = []
    for seed, (base, default, group2) in enumerate([(30.0, 32.0, 31.0), (31.0, 34.0, 31.5), (32.0, 33.0, 33.5)]):
        for variant, ap in ((0, base), (1, default), (9, group2)):
            rows.append(dict(detector='DeformableDETR', variant=variant, seed=seed, AP=ap, AP50=ap + 15, AP75=ap,
                             iterations=1500, gpu='g', commit='c', date='d', config=SPEC.config('DeformableDETR',
                                                                                                 SPEC.arm(variant), 'mini')))
    return pd.DataFrame(rows)


def test_table_shows_paired_deltas_against_baseline_and_default():
    from reproduce.tables.ablation import SPEC, render_ablation
    text = render_ablation(frame(), None, SPEC, 'mini')
    line = next(x for x in text.splitlines() if x.startswith('| `group2`: attention within groups of 2 images |'))
    cells = [c.strip() for c in line.strip('|').split('|')]
    # vs baseline: diffs 1.0, 0.5, 1.5 -> +1.0 ± t(0.975, 2) * 0.5 / sqrt(3) = ±1.24; vs default: -1.0, -2.5, +0.5
    assert cells[1] == '3' and cells[2] == '32.0 ± 1.3'
    assert cells[3] == '+1.0 [-0.2, +2.2]' and cells[4] == '-1.0 [-4.7, +2.7]'
    assert '| `insert2`: after encoder layer 2 | not run |' in text


def test_compare_recognises_the_ablation_csv(tmp_path):
    from reproduce import compare
    csv = tmp_path / 'ablation_mini.csv'
    frame().to_csv(csv, index=False)
    assert compare.table_of(str(csv)).name == 'ablation'
    assert compare.main([str(csv), str(csv)]) == 0


@pytest.mark.slow
@pytest.mark.skipif(not osp.isfile(osp.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')),
                    reason='Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)')
def test_smoke_end_to_end(tmp_path, capsys):
    from reproduce.tables import ablation
    args = ['--scale', 'smoke', '--work-root', str(tmp_path / 'w'), '--results-dir', str(tmp_path / 'r'),
            '--data-root', str(tmp_path / 'd')]
    assert ablation.main(args) == 0
    df = pd.read_csv(tmp_path / 'r' / 'measured' / 'ablation_smoke.csv')
    assert sorted(df.variant) == [0, 1, 5, 6, 7, 9] and (df.iterations == 4).all()
    table = (tmp_path / 'r' / 'tables' / 'ablation_smoke.md').read_text()
    assert 'SMOKE SCALE' in table and '| `group2`: attention within groups of 2 images | 1 |' in table
    assert ablation.main(args) == 0 and capsys.readouterr().out.count('finished, skipped') == 6


def test_baseline_and_default_are_borrowed_from_the_detection_csv(tmp_path, capsys):
    """The ablation's `base` and `bf` arms train the detection table's configs: its stored rows for them count
    (copied with ``borrowed_from``), a stale one (other fingerprint) does not, and a forced run is not borrowed."""
    import shutil
    from reproduce.tables import ablation
    results = tmp_path / 'r'
    (results / 'measured').mkdir(parents=True)
    det = pd.read_csv(osp.join(REPO, 'results/measured/detection_mini.csv'), dtype={'commit': str})
    stale = (det.detector == 'DeformableDETR') & (det.bf == 1) & (det.seed == 1)
    assert stale.sum() == 1
    det.loc[stale, 'config_hash'] = '000000000000'
    det.to_csv(results / 'measured' / 'detection_mini.csv', index=False)
    args = ['--scale', 'mini', '--results-dir', str(results), '--work-root', str(tmp_path / 'w'),
            '--data-root', str(tmp_path / 'd')]
    assert ablation.main(args + ['--collect-only']) == 0
    out = capsys.readouterr().out
    assert 'DeformableDETR-base-s0: taken from detection_mini.csv' in out
    every = pd.read_csv(results / 'measured' / 'ablation_mini.csv', dtype={'commit': str})
    assert (every.borrowed_from == 'detection_mini').all()
    smca = every[every.detector == 'SMCADETR']
    assert sorted(zip(smca.variant, smca.seed)) == [(v, s) for v in (0, 1) for s in (0, 1, 2)]
    df = every[every.detector == 'DeformableDETR']
    assert sorted(zip(df.variant, df.seed)) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2)]
    mine = det[(det.detector == 'DeformableDETR') & (det.bf == 0) & (det.seed == 2)].iloc[0]
    row = df[(df.variant == 0) & (df.seed == 2)].iloc[0]
    assert row.AP == mine.AP and row.commit == mine.commit and row.config_hash == mine.config_hash
    table = (results / 'tables' / 'ablation_mini.md').read_text()
    assert 'DeformableDETR: `base` (seeds 0 1 2), `bf` (seeds 0 2); SMCADETR: `base` (seeds 0 1 2)' in table
    smca_block = table[table.index('*SMCADETR*'):]
    assert '| `one-stream`: one stream' in smca_block and '`group2`' not in smca_block.split('Runs of')[0]
    shutil.copy(results / 'measured' / 'ablation_mini.csv', tmp_path / 'before.csv')
    assert ablation.main(args + ['--collect-only']) == 0  # once more: the same CSV
    assert (results / 'measured' / 'ablation_mini.csv').read_text() == (tmp_path / 'before.csv').read_text()
    capsys.readouterr()
    assert ablation.main(args + ['--dry-run', '--only', 'DeformableDETR-base-s1', 'DeformableDETR-bf-s1']) == 0
    out = capsys.readouterr().out
    assert 'DeformableDETR-base-s1 (finished)' in out and 'DeformableDETR-bf-s1 (new)' in out
    # a forced run trains (it is not borrowed); a broken detection CSV stops with one line
    (results / 'measured' / 'ablation_mini.csv').unlink()
    assert ablation.main(args + ['--dry-run', '--force', '--only', 'DeformableDETR-base-s1']) == 0
    assert 'DeformableDETR-base-s1 (new)' in capsys.readouterr().out
    (results / 'measured' / 'detection_mini.csv').write_text('detector,bf\nDETR,x\n')
    with pytest.raises(SystemExit, match='detection_mini.csv: .*borrows runs from it'):
        ablation.main(args + ['--collect-only'])
