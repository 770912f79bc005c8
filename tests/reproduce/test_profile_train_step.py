"""reproduce/profile_train_step.py on the CPU: mmengine's loop runs, the parts are attributed, files written."""
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
    from reproduce import profile_train_step as pts
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
    from reproduce import profile_train_step as pts
    with pytest.raises(SystemExit):
        pts.parse_args(['configs/mini/detr_r18_1xb16-mini.py', '--data-root', str(tmp_path / 'none')])
