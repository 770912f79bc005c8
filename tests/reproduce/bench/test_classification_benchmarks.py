"""The classification benchmarks run end to end on the CPU (tiny settings) and write their CSV and table;
--render refuses a malformed CSV in one line."""
import os.path as osp
import subprocess
import sys

import pandas as pd
import pytest

from helpers import REPO
from mmdet_plugins.datasets.fashion_canvas import FASHION_MNIST_DIR

pytest.importorskip('mmpretrain')


def script(name, *args):
    return subprocess.run([sys.executable, osp.join(REPO, 'reproduce', 'bench', name), *args], capture_output=True,
                          text=True, cwd=REPO, timeout=900, env={'CUDA_VISIBLE_DEVICES': '', 'PATH': '/usr/bin:/bin',
                                                                  'PYTHONPATH': REPO, 'HOME': '/tmp'})


def test_two_stream_bound():
    from reproduce.bench.benchmark_deit_step import two_stream_bound
    assert two_stream_bound(8, 12) == pytest.approx(15 / 12)
    assert two_stream_bound(11, 12) == 1.0 and two_stream_bound(0, 12) == pytest.approx(23 / 12)


@pytest.mark.slow
def test_deit_step_benchmark_on_the_cpu(tmp_path):
    out, table = str(tmp_path / 'c.csv'), str(tmp_path / 'c.md')
    res = script('benchmark_deit_step.py', '--model', 'tiny', '--batch', '4', '--img-size', '32', '--rounds', '2',
                 '--iters', '1', '--out', out, '--table', table)
    assert res.returncode == 0, res.stderr[-2000:]
    df = pd.read_csv(out)
    assert list(df.variant) == ['baseline', 'two_stream', 'released'] and df.over_baseline.iloc[0] == 1.0
    assert (df.s_per_step > 0).all() and df.bound.iloc[1] == pytest.approx(1.25) and df.precision.iloc[0] == 'fp32'
    assert '| two_stream |' in open(table).read()
    bad = tmp_path / 'bad.csv'
    bad.write_text('variant,s_per_step\nx,1\n')
    res = script('benchmark_deit_step.py', '--render', str(bad), '--table', str(tmp_path / 'b.md'))
    assert res.returncode != 0 and res.stderr.strip().startswith('error:') and 'missing columns' in res.stderr
    assert 'Traceback' not in res.stderr


@pytest.mark.slow
@pytest.mark.skipif(not osp.isfile(osp.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')),
                    reason='Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)')
def test_data_benchmark_on_the_cpu(tmp_path):
    out, table = str(tmp_path / 'd.csv'), str(tmp_path / 'd.md')
    res = script('benchmark_cls_data.py', '--rounds', '1', '--steps', '1', '--workers', '0', '--out', out,
                 '--table', table)
    assert res.returncode == 0, res.stderr[-2000:]
    df = pd.read_csv(out)
    assert sorted(df.variant) == ['gpu_held', 'per_sample'] and df.gpu_busy.isna().all()  # no GPU: no busy fraction
    assert 'per_sample / gpu_held step time' in open(table).read()


def test_busy_fraction_is_the_union_of_intervals():
    from reproduce.bench.benchmark_cls_data import busy_fraction
    assert busy_fraction([(0, 10), (5, 20), (30, 40)], 100) == pytest.approx(0.3)
    assert busy_fraction([], 10) == 0.0
