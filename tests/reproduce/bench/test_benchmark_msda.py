"""reproduce/bench/benchmark_msda.py: the table from a stored CSV (no GPU), its inputs' shapes, and the errors it gives."""
import os.path as osp
import sys

import pytest
import torch

from helpers import REPO

sys.path.insert(0, REPO)


def test_renders_the_stored_csv(tmp_path, capsys):
    from reproduce.bench.benchmark_msda import main
    out = tmp_path / 'msda.md'
    assert main(['--render', osp.join(REPO, 'results/measured/msda_backward.csv'), '--table', str(out)]) == 0
    rows = [line for line in out.read_text().splitlines() if line.startswith('| encoder |')]
    assert len(rows) == 3 and '| mmcv-fp16 |' in rows[0] and '| 1.00x |' in rows[0]
    assert 'commit ' in out.read_text()


def test_a_missing_csv_or_no_gpu_is_an_error_that_says_what_to_do(tmp_path, capsys):
    from reproduce.bench.benchmark_msda import main
    with pytest.raises(SystemExit):
        main(['--render', str(tmp_path / 'nope.csv'), '--table', str(tmp_path / 'msda.md')])
    assert 'no CSV at --render' in capsys.readouterr().err and not (tmp_path / 'msda.md').exists()
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            main(['--out', str(tmp_path / 'msda.csv')])
        assert 'run it on a GPU machine' in capsys.readouterr().err


def test_inputs_have_the_layer_shapes():
    from reproduce.bench.benchmark_msda import SHAPES, make_inputs
    batch, levels, queries = SHAPES['encoder']
    x = make_inputs(batch, levels, queries, torch.device('cpu'))
    keys = sum(h * w for h, w in levels)
    assert x['value'].shape == (16, keys, 8, 32) and x['value'].dtype == torch.float16
    assert x['locations'].shape == (16, keys, 8, 4, 4, 2) and x['weights'].shape == (16, keys, 8, 4, 4)
    assert torch.allclose(x['weights'].float().sum((-2, -1)), torch.ones(16, keys, 8), atol=1e-2)
    assert x['starts'].tolist() == [0, 1600, 2000, 2100]
