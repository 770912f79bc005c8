"""The classification table through the shared runner (reproduce/tables/classification.py): at the smoke scale
end to end on the CPU (three arms, the gradient log kept beside the json logs, the table with the paper's rows),
compare.py on its CSV, and one-line errors for missing data. Uses temporary work/results folders."""
import json
import os.path as osp
import shutil

import pandas as pd
import pytest

from helpers import REPO
from mmdet_plugins.datasets.fashion_canvas import FASHION_MNIST_DIR

pytest.importorskip('mmpretrain')
needs_fashion_mnist = pytest.mark.skipif(
    not osp.isfile(osp.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')),
    reason='Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)')


@pytest.fixture()
def dirs(tmp_path):
    return dict(work=str(tmp_path / 'work'), results=str(tmp_path / 'results'))


def table_main(dirs, *extra):
    from reproduce.tables import classification
    return classification.main(['--scale', 'smoke', '--work-root', dirs['work'], '--results-dir', dirs['results'],
                                *extra])


def test_config_paths():
    from reproduce.tables.classification import config_path
    assert config_path('DeiT-S', 1) == 'configs/deit/bf-deit-small_4xb256_in1k.py'
    assert config_path('DeiT-T', 2, 'mini') == 'configs/deit/mini/bf-released-deit-tiny-p4_1xb256-fmnist-lt.py'
    for model in ('DeiT-T', 'DeiT-S', 'DeiT-B'):
        for arm in (0, 1, 2):
            assert osp.isfile(osp.join(REPO, config_path(model, arm)))
    with pytest.raises(KeyError, match='no mini-scale config'):
        config_path('DeiT-B', 0, 'mini')


@needs_fashion_mnist
def test_dry_run_prints_commands(dirs, capsys):
    assert table_main(dirs, '--dry-run') == 0
    out = capsys.readouterr().out
    assert out.count('tools/train.py') == 6 and '[1/6] DeiT-T-base-s0 (new)' in out and 'DeiT-T-released-s1' in out


def test_missing_fashion_mnist_is_one_line(dirs, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        table_main(dirs, '--data-root', str(tmp_path / 'nowhere'))
    msg = str(e.value)
    assert msg.startswith('error: Fashion-MNIST not found') and 'dataset-fashion-mnist' in msg and '\n' not in msg


def test_missing_imagenet_is_one_line(dirs, tmp_path):
    from reproduce.tables import classification
    with pytest.raises(SystemExit) as e:
        classification.main(['--scale', 'full', '--dry-run', '--work-root', dirs['work'], '--results-dir',
                             dirs['results'], '--data-root', str(tmp_path / 'imagenet')])
    assert str(e.value).startswith('error: ImageNet not found') and "'train'" in str(e.value)


@needs_fashion_mnist
@pytest.mark.slow
def test_smoke_end_to_end(dirs, capsys):
    assert table_main(dirs, '--seeds', '1') == 0
    out = capsys.readouterr().out
    assert 'SMOKE SCALE' in out
    csv = osp.join(dirs['results'], 'measured', 'classification_smoke.csv')
    df = pd.read_csv(csv)
    assert len(df) == 3 and sorted(df.bf) == [0, 1, 2] and (df.iterations == 4).all()
    assert df.top1.between(0, 100).all() and df.few.between(0, 100).all() and df.top5.isna().all()
    assert df.dataset.str.startswith('fmnist-').all()
    table = open(osp.join(dirs['results'], 'tables', 'classification_smoke.md')).read()
    assert 'paper baseline top1' in table and '| DeiT-B | not run |' in table and '72.2' in table
    assert 'Δ released top1' in table
    logs = osp.join(dirs['results'], 'logs', 'classification_smoke')
    grad = json.load(open(osp.join(logs, 'DeiT-T-bf-s0.grad_per_class.json')))
    assert grad['hook'] == 'ClsGradPerClassHook' and sum(c['count'] for c in grad['classes']) > 0
    assert [c['train_images'] for c in grad['classes']][:2] == [6000, 3596]
    assert not osp.exists(osp.join(logs, 'DeiT-T-base-s0.grad_per_class.json'))

    # a second call: everything finished, skipped
    assert table_main(dirs, '--seeds', '1') == 0
    assert capsys.readouterr().out.count('finished, skipped') == 3

    # compare.py reads the table's CSV
    from reproduce import compare
    assert compare.main([csv, csv, '--tol', '0.5']) == 0
