"""reproduce/bench/profile_train_step.py on the CPU: mmengine's loop runs, the parts are attributed, files written."""
import os.path as osp
import sys

import pandas as pd
import pytest

from helpers import REPO
from mmdet_plugins.datasets.fashion_canvas import FASHION_MNIST_DIR, PRESETS, generate

sys.path.insert(0, REPO)


@pytest.mark.skipif(not osp.isfile(osp.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')),
                    reason='Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)')
def test_profile_attributes_time_to_the_parts_of_a_step(tmp_path, capsys):
    from reproduce.bench import profile_train_step as pts
    data = str(tmp_path / 'data')
    generate(data, PRESETS['smoke'], workers=1, log=None)
    out, summary = tmp_path / 'p.csv', tmp_path / 'p.md'
    assert pts.main(['configs/mini/bf-detr_r18_1xb16-mini.py', '--data-root', data, '--warmup', '1', '--iters',
                     '1', '--profile-iters', '1', '--batch-size', '2', '--device', 'cpu',
                     '--cfg-options', 'model.num_queries=10', 'model.bbox_head.type=DETRHead',  # stock matching
                     'model.train_cfg.assigner.type=HungarianAssigner', '--out', str(out), '--summary', str(summary)]) == 0
    df = pd.read_csv(out)
    assert set(pts.PARTS) <= set(df.part)
    by_part = df.set_index('part')
    # two streams of 2 images, 6 decoder layers: 24 assignments per iteration, inside the head's loss
    assert by_part.loc['assign', 'calls_per_iter'] == 24
    assert 0 < by_part.loc['assign', 'host_ms_per_iter'] <= by_part.loc['head.loss', 'host_ms_per_iter']
    assert by_part.loc['backward', 'host_ms_per_iter'] > 0 and df.s_per_iter.iloc[0] > 0
    assert '| assign |' in summary.read_text() and df.commit.notna().all()


def test_missing_data_root_says_how_to_make_it(tmp_path):
    from reproduce.bench import profile_train_step as pts
    with pytest.raises(SystemExit):
        pts.parse_args(['configs/mini/detr_r18_1xb16-mini.py', '--data-root', str(tmp_path / 'none')])


def test_sync_tracer_counts_syncs_by_calling_line():
    """The tracer's warning handler (what ``set_sync_debug_mode('warn')`` calls on the GPU) counts each sync at
    the Python line that made it and passes other warnings on."""
    import warnings
    from reproduce.bench.profile_train_step import SyncTracer
    tracer = SyncTracer()
    passed_on = []
    tracer._saved = (lambda *a, **k: passed_on.append(str(a[0])), warnings.filters[:])

    def sync_here():
        tracer._record('called a synchronizing CUDA operation', UserWarning, 'x.py', 1)
    for _ in range(3):
        sync_here()
    tracer._record('something else', UserWarning, 'x.py', 1)
    rows = tracer.rows()
    assert len(rows) == 1 and rows[0]['syncs'] == 3
    assert rows[0]['caller'].endswith('(sync_here)') and 'test_profile_train_step.py' in rows[0]['caller']
    assert passed_on == ['something else']


def test_sync_trace_needs_a_trace_dir(tmp_path, capsys):
    from reproduce.bench import profile_train_step as pts
    (tmp_path / 'annotations').mkdir()
    argv = ['configs/mini/detr_r18_1xb16-mini.py', '--sync-trace', '--data-root', str(tmp_path)]
    with pytest.raises(SystemExit):
        pts.parse_args(argv)
    assert '--sync-trace writes to --trace-dir' in capsys.readouterr().err
    assert pts.parse_args(argv + ['--trace-dir', str(tmp_path)]).sync_trace
