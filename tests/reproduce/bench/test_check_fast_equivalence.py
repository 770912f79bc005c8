"""reproduce/bench/check_fast_equivalence.py on the CPU: stock against fast (identical), and --compiled (the layers
compiled with the aot_eager backend here; Inductor on the GPU) with its gradient column."""
import os.path as osp
import sys

import pandas as pd
import pytest

from helpers import REPO
from mmdet_plugins.datasets.fashion_canvas import FASHION_MNIST_DIR, PRESETS, generate

sys.path.insert(0, REPO)
pytestmark = pytest.mark.skipif(not osp.isfile(osp.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')),
                                reason='Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)')


@pytest.fixture(scope='module')
def smoke_data(tmp_path_factory):
    data = str(tmp_path_factory.mktemp('equivalence') / 'data')
    generate(data, PRESETS['smoke'], workers=1, log=None)
    return data


@pytest.mark.parametrize('compiled', [False, True])
def test_equivalence_check_writes_its_rows(smoke_data, tmp_path, compiled):
    from reproduce.bench.check_fast_equivalence import main
    out = tmp_path / 'eq.csv'
    args = ['configs/mini/bf-detr_r18_1xb16-mini.py', '--data-root', smoke_data, '--batches', '1',
            '--batch-size', '2', '--device', 'cpu', '--out', str(out)]
    if compiled:
        args += ['--compiled', '--compile-backend', 'aot_eager']
    assert main(args) == 0
    df = pd.read_csv(out)
    assert df.precision.tolist() == ['fp32'] and df.targets_identical.tolist() == [1.0]
    assert df.target_sets.tolist() == [6 * 2 * 2]  # decoder layers x streams x images
    assert (df.max_rel_loss_diff <= 1e-4).all() and df.commit.notna().all()
    if compiled:
        assert (df.max_rel_grad_diff <= 1e-3).all()
    else:
        assert 'max_rel_grad_diff' not in df


@pytest.mark.slow
def test_compiled_check_of_a_cuda_graph_config_runs_on_the_cpu(smoke_data, tmp_path, monkeypatch):
    """The CUDA-graph config's targets (backbone to head, deformable attention inside) compile and train a step
    with aot_eager on the CPU (no CUDA graphs there), matching the eager detector (about a minute)."""
    import torch
    from reproduce.bench.check_fast_equivalence import main
    marks = []  # each step of the compiled side starts a new CUDA-graph step (a no-op on the CPU)
    monkeypatch.setattr(torch.compiler, 'cudagraph_mark_step_begin', lambda: marks.append(1))
    out = tmp_path / 'eq.csv'
    assert main(['configs/mini/cudagraphs/bf-deformable-detr_r18_1xb16-mini.py', '--data-root', smoke_data,
                 '--batches', '1', '--batch-size', '2', '--device', 'cpu', '--out', str(out), '--compiled',
                 '--compile-backend', 'aot_eager', '--rtol', '1e-3']) == 0
    df = pd.read_csv(out)
    assert df.targets_identical.tolist() == [1.0] and (df.max_rel_grad_diff <= 1e-4).all()
    assert len(marks) == 1  # one batch, fp32 only on the CPU


def test_missing_config_is_an_error(smoke_data):
    from reproduce.bench.check_fast_equivalence import main
    with pytest.raises(SystemExit):
        main(['configs/mini/no-such-config.py', '--data-root', smoke_data, '--device', 'cpu'])


def test_the_fast_side_trains_the_deformable_attention_backward_the_config_chooses():
    import torch
    from mmcv.ops import MultiScaleDeformableAttention
    from helpers import load_config
    from reproduce.bench.check_fast_equivalence import build_pair, config_backward_dtype
    cfg = load_config('configs/mini/deformable-detr_r18_1xb16-mini.py')
    assert config_backward_dtype(cfg) is torch.float32
    assert config_backward_dtype(load_config('configs/mini/detr_r18_1xb16-mini.py')) is None
    stock, fast = build_pair(cfg, torch.device('cpu'))
    assert {type(m) for m in stock.modules() if isinstance(m, MultiScaleDeformableAttention)} \
        == {MultiScaleDeformableAttention}  # stock: mmcv's module
    assert {getattr(m, 'backward_dtype', None) for m in fast.modules()
            if isinstance(m, MultiScaleDeformableAttention)} == {torch.float32}


def test_compiled_side_compiles_what_the_config_hook_compiles():
    """--compiled compiles as the config's CompileLayersHook does: the CUDA-graph configs' targets and mode,
    the hook's defaults for a config without one; a wrong target fails with the hook's own message."""
    from mmengine.config import Config
    from helpers import load_config
    from reproduce.bench.check_fast_equivalence import config_compile_options
    cudagraphs = config_compile_options(load_config('configs/mini/cudagraphs/deformable-detr_r18_1xb16-mini.py'))
    assert cudagraphs == dict(targets=['backbone', 'neck', 'encoder.layers', 'decoder.layers', 'bbox_head'],
                              mode='reduce-overhead')
    assert config_compile_options(load_config('configs/mini/compiled/detr_r18_1xb16-mini.py')) \
        == dict(targets=['encoder.layers', 'decoder.layers'], mode=None)
    assert config_compile_options(load_config('configs/mini/detr_r18_1xb16-mini.py'))['mode'] is None
    # and build_pair compiles exactly those on the compiled side, nothing on the eager side
    import torch
    from mmdet_plugins.fast_training.compiled_layers import compiled_modules
    from reproduce.bench.check_fast_equivalence import build_pair
    eager, compiled = build_pair(load_config('configs/mini/cudagraphs/deformable-detr_r18_1xb16-mini.py'),
                                 torch.device('cpu'), compiled=True, backend='aot_eager')
    names = set(compiled_modules(compiled))
    assert {'backbone', 'neck', 'bbox_head', 'encoder.layers.0', 'decoder.layers.5'} <= names
    assert not any(n.startswith(('transformer', 'query')) for n in names) and not compiled_modules(eager)
    with pytest.raises(ValueError, match='targets is empty'):
        config_compile_options(Config(dict(custom_hooks=[dict(type='CompileLayersHook', targets=[])])))
