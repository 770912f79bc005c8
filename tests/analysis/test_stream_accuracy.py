"""analysis/stream_accuracy.py: per-group accuracy, the two streams of a trained model, the table and bad input."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'analysis', 'stream_accuracy.py')
CFG = 'configs/deit/mini/{}deit-tiny-p4_1xb256-fmnist-lt.py'


@pytest.fixture
def mmpretrain_scope():
    pytest.importorskip('mmpretrain')
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


class TinyHeldDataset:
    """What ``FashionMNISTLT`` hands the script: ``__getitems__`` -> dict(inputs (n, 1, 28, 28) uint8, samples)."""

    def __init__(self, n=12, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g)
        self.labels = [i % 10 for i in range(n)]

    def __len__(self):
        return len(self.labels)

    def __getitems__(self, idx):
        from mmpretrain.structures import DataSample
        return dict(inputs=self.images[idx], data_samples=[DataSample().set_gt_label(self.labels[i]) for i in idx])


def build(prefix):
    from mmengine.config import Config
    import mmdet_plugins.classification  # noqa: F401
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(osp.join(REPO, CFG.format(prefix))).model)
    model.init_weights()
    for p in model.head.parameters():  # the head starts at zero: give the logits something to differ by
        torch.nn.init.normal_(p, std=0.5)
    return model


def test_group_accuracy_on_hand_made_predictions():
    from analysis.stream_accuracy import group_accuracy
    counts = [5000, 500, 50]  # many, medium, few
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    pred = torch.tensor([0, 0, 1, 0, 0, 0])
    r = group_accuracy(pred, labels, counts)
    assert r['top1'] == pytest.approx(50.0)
    assert (r['many'], r['medium'], r['few']) == (100.0, 50.0, 0.0)
    assert r['per_class'] == [100.0, 50.0, 0.0]


def test_two_stream_analysis_plain_equals_eval_and_norms_are_read(mmpretrain_scope):
    from analysis.stream_accuracy import stream_predictions
    model = build('bf-')
    ds = TinyHeldDataset()
    p = stream_predictions(model, ds, list(range(len(ds))), batch_size=6)
    assert p['plain_vs_eval_max_abs_logit_diff'] < 1e-5  # the plain stream of the training forward is eval
    assert p['module'].shape == p['eval'].shape == p['labels'].shape == (12, )
    assert p['labels'].tolist() == ds.labels
    norms = p['token_norm']
    assert norms['leaving_module'] == pytest.approx(192 ** 0.5, rel=0.05)  # the module ends in a LayerNorm
    assert norms['entering_module'] > 0
    assert not model.training  # left in eval mode


def test_released_analysis_runs_the_module_on_the_whole_batch(mmpretrain_scope):
    from analysis.stream_accuracy import stream_predictions
    model = build('bf-released-')
    p = stream_predictions(model, TinyHeldDataset(), list(range(12)), batch_size=4)
    assert p['module'].shape == (12, ) and p['plain_vs_eval_max_abs_logit_diff'] is None


def test_baseline_analysis_has_no_module_stream(mmpretrain_scope):
    from analysis.stream_accuracy import stream_predictions
    p = stream_predictions(build(''), TinyHeldDataset(), list(range(12)), batch_size=5)
    assert p['module'] is None and p['token_norm'] == dict(entering_module=None, leaving_module=None)


def analysis_record(mode='two_stream'):
    split = dict(images=10, eval=dict(top1=50.0, many=60.0, medium=40.0, few=10.0),
                 token_norm=dict(entering_module=200.0, leaving_module=14.0))
    if mode != 'off':
        split['module'] = dict(top1=55.0, many=61.0, medium=41.0, few=12.0)
    return dict(mode=mode, config='configs/deit/mini/x.py', batch_size=256, hardware='NVIDIA H200',
                commit='abc', date='2026-12-03', splits=dict(test=split, train=split))


def test_render_writes_one_line_per_run_and_split(tmp_path):
    paths = []
    for mode in ('off', 'two_stream'):
        paths.append(tmp_path / f'{mode}.json')
        paths[-1].write_text(json.dumps(analysis_record(mode)))
    table = tmp_path / 't.md'
    res = subprocess.run([sys.executable, SCRIPT, '--render', *map(str, paths), '--table', str(table)],
                         capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr
    text = table.read_text()
    assert text.count('| baseline') == 2 and text.count('| BF (two streams)') == 2
    assert '50.0 / 60.0 / 40.0 / 10.0' in text and '55.0 / 61.0 / 41.0 / 12.0' in text and '200.0 / 14.0' in text


@pytest.mark.parametrize('content, message', [(None, 'not found'), ('{"mode": 1}', 'is not an analysis'),
                                              ('{oops', 'is not an analysis')])
def test_bad_input_is_one_line(tmp_path, content, message):
    path = tmp_path / 'a.json'
    if content is not None:
        path.write_text(content)
    res = subprocess.run([sys.executable, SCRIPT, '--render', str(path)], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 2 and message in res.stderr and 'Traceback' not in res.stderr
    res = subprocess.run([sys.executable, SCRIPT, CFG.format('bf-'), str(tmp_path / 'none.pth')],
                         capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 2 and 'checkpoint' in res.stderr and 'not found' in res.stderr
