"""reproduce/bench/benchmark_speed.py: the variants' config options, and one stock/fast comparison on the CPU."""
import os.path as osp
import sys

import pandas as pd
import pytest

from helpers import REPO
from mmdet_plugins.datasets.fashion_canvas import FASHION_MNIST_DIR, PRESETS, generate

sys.path.insert(0, REPO)


@pytest.mark.parametrize('config,head', [
    ('configs/mini/detr_r18_1xb16-mini.py', 'BatchedDETRHead'),
    ('configs/mini/bf-deformable-detr_r18_1xb16-mini.py', 'BatchedDeformableDETRHead'),
    ('configs/mini/conditional-detr_r18_1xb16-mini.py', 'BatchedConditionalDETRHead'),
    ('configs/mini/dab-detr_r18_1xb16-mini.py', 'BatchedDABDETRHead'),
    ('configs/mini/bf-dino-4scale_r18_1xb16-mini.py', 'BatchedDINOHead'),
])
def test_fast_variant_swaps_in_registered_components(config, head):
    from mmdet.registry import MODELS, TASK_UTILS
    from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
    import mmdet_plugins  # noqa: F401
    from reproduce.bench.benchmark_speed import variant_options
    stock = variant_options(config, 'stock')  # the mini configs default to the fast components: switched back
    assert MODELS.get(stock['model.bbox_head.type']) is not None and not stock['model.bbox_head.type'].startswith('B')
    assert stock['model.train_cfg.assigner.type'] == 'HungarianAssigner'
    assert stock['optim_wrapper.constructor'] == 'DefaultOptimWrapperConstructor'
    assert stock['train_dataloader.pin_memory'] is False and stock['model.data_preprocessor.non_blocking'] is False
    fast = variant_options(config, 'fast')
    assert fast['model.bbox_head.type'] == head and MODELS.get(head) is not None
    assert TASK_UTILS.get(fast['model.train_cfg.assigner.type']) is not None
    assert OPTIM_WRAPPER_CONSTRUCTORS.get(fast['optim_wrapper.constructor']) is not None
    assert fast['train_dataloader.pin_memory'] is True and fast['model.data_preprocessor.non_blocking'] is True
    if 'deformable' in config or 'dino' in config or 'conditional' in config or 'dab' in config:
        with pytest.raises(ValueError, match='no bf16 kernel'):
            variant_options(config, 'fast-bf16')
    else:
        assert variant_options(config, 'fast-bf16')['optim_wrapper.dtype'] == 'bfloat16'
    if 'deformable' in config or 'dino' in config:  # the traceable deformable attention is a fast component
        assert stock['custom_hooks'] == [] and 'custom_hooks' not in fast
    compiled = variant_options(config, 'fast-compile')
    assert {k: v for k, v in compiled.items() if k != 'custom_hooks'} == fast
    assert compiled['custom_hooks'][-1] == dict(type='CompileLayersHook')
    everything = variant_options(config, 'fast-compile-all')['custom_hooks'][-1]
    assert everything['targets'] == ['backbone', 'neck', 'encoder.layers', 'decoder.layers', 'bbox_head']
    graphs = variant_options(config, 'fast-compile-all-cudagraphs')['custom_hooks'][-1]
    assert graphs == dict(everything, mode='reduce-overhead')
    fused = variant_options(config, 'fast-compile-all-fused')  # the suffix adds fused AdamW and nothing else
    assert fused.pop('optim_wrapper.optimizer.fused') is True
    assert fused == variant_options(config, 'fast-compile-all')
    assert variant_options(config, 'fast-fused') == dict(fast, **{'optim_wrapper.optimizer.fused': True})


@pytest.mark.skipif(not osp.isfile(osp.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')),
                    reason='Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)')
def test_side_by_side_run_writes_ratios_and_provenance(tmp_path):
    from reproduce.bench.benchmark_speed import main
    data = str(tmp_path / 'data')
    generate(data, PRESETS['smoke'], workers=1, log=None)
    out = tmp_path / 'speed.csv'
    assert main(['configs/mini/detr_r18_1xb16-mini.py', '--data-root', data, '--warmup', '1', '--iters', '1',
                 '--profile-iters', '1', '--batch-size', '2', '--device', 'cpu', '--out', str(out)]) == 0
    df = pd.read_csv(out)
    assert list(df.variant) == ['stock', 'fast']
    stock, fast = df.s_per_iter
    assert df.speedup_vs_stock.tolist() == [1.0, round(stock / fast, 2)]
    assert df.commit.notna().all() and df.hardware.str.startswith('cpu').all()


def test_a_failing_variant_keeps_the_others_rows_and_exits_1(tmp_path, monkeypatch):
    import reproduce.bench.profile_train_step as profile_module
    from reproduce.bench.benchmark_speed import main
    (tmp_path / 'data' / 'annotations').mkdir(parents=True)

    def fake_profile(config, args, device):
        if 'CompileLayersHook' in str(args.cfg_options.get('custom_hooks')):
            raise RuntimeError('compilation failed')
        return dict(s_per_iter=0.5 if 'DefaultOptimWrapperConstructor' in str(args.cfg_options) else 0.25,
                    gpu_util_smi=float('nan'), gpu_busy=float('nan'), stream_syncs_per_iter=0.0,
                    peak_gib=float('nan'), batch_size=2), []
    monkeypatch.setattr(profile_module, 'profile_config', fake_profile)
    out = tmp_path / 'speed.csv'
    assert main(['configs/mini/detr_r18_1xb16-mini.py', '--variants', 'stock', 'fast-compile', 'fast',
                 '--data-root', str(tmp_path / 'data'), '--device', 'cpu', '--out', str(out)]) == 1
    df = pd.read_csv(out)
    assert list(df.variant) == ['stock', 'fast'] and df.speedup_vs_stock.tolist() == [1.0, 2.0]


def test_fast_mmcv_backward_variant_leaves_the_attention_backward_as_mmcv_has_it():
    from reproduce.bench.benchmark_speed import variant_options
    config = 'configs/mini/deformable-detr_r18_1xb16-mini.py'
    fast = variant_options(config, 'fast')
    plain = variant_options(config, 'fast-mmcv-backward')
    assert plain.pop('custom_hooks') == [dict(type='TraceableDeformAttnHook', backward_dtype=None)]
    assert plain == fast
    with pytest.raises(ValueError, match='fast-mmcv-backward needs a config with TraceableDeformAttnHook'):
        variant_options('configs/mini/detr_r18_1xb16-mini.py', 'fast-mmcv-backward')


def test_rounds_are_interleaved_and_give_the_median_and_range(tmp_path, monkeypatch):
    """--rounds 3: stock, fast, stock, fast, stock, fast; each row holds the middle measurement and the range."""
    import reproduce.bench.profile_train_step as profile_module
    from reproduce.bench.benchmark_speed import main
    (tmp_path / 'data' / 'annotations').mkdir(parents=True)
    times = {'stock': [0.50, 0.40, 0.45], 'fast': [0.20, 0.25, 0.15]}
    order = []

    def fake_profile(config, args, device):
        variant = 'stock' if 'DefaultOptimWrapperConstructor' in str(args.cfg_options) else 'fast'
        order.append(variant)
        return dict(s_per_iter=times[variant][order.count(variant) - 1], gpu_util_smi=float('nan'),
                    gpu_busy=float('nan'), stream_syncs_per_iter=0.0, peak_gib=float('nan'), batch_size=2), []
    monkeypatch.setattr(profile_module, 'profile_config', fake_profile)
    out = tmp_path / 'speed.csv'
    assert main(['configs/mini/detr_r18_1xb16-mini.py', '--rounds', '3', '--data-root', str(tmp_path / 'data'),
                 '--device', 'cpu', '--out', str(out)]) == 0
    assert order == ['stock', 'fast'] * 3
    df = pd.read_csv(out).set_index('variant')
    assert df.loc['stock', ['s_per_iter', 's_per_iter_min', 's_per_iter_max', 'rounds']].tolist() == [0.45, 0.4, 0.5, 3]
    assert df.loc['fast', ['s_per_iter', 's_per_iter_min', 's_per_iter_max']].tolist() == [0.2, 0.15, 0.25]
    assert df.loc['fast', 'speedup_vs_stock'] == round(0.45 / 0.2, 2)
    # every round kept in order; the speed-up's range pairs each round's stock with the same round's fast
    assert df.loc['stock', 's_per_iter_rounds'] == '0.5000;0.4000;0.4500'
    assert df.loc['fast', ['speedup_rounds_min', 'speedup_rounds_max']].tolist() == [1.6, 3.0]
    assert df.loc['stock', ['speedup_rounds_min', 'speedup_rounds_max']].tolist() == [1.0, 1.0]


def test_paired_speedups_pair_by_round_and_skip_failed_measurements():
    from reproduce.bench.benchmark_speed import combine_rounds, paired_speedups
    assert paired_speedups('0.5;0.4', '0.25;0.1') == [2.0, 4.0]
    assert paired_speedups('0.5;nan;0.6', 'nan;0.2;0.3') == [2.0]  # only round 3 has both
    # stock failed in round 1, fast in round 2: each keeps its rounds' places, so only round 3 pairs
    row = dict(s_per_iter=0.0)
    rows = combine_rounds({('a.py', 'stock'): [dict(row, s_per_iter=0.4, round=2), dict(row, s_per_iter=0.6, round=3)],
                           ('a.py', 'fast'): [dict(row, s_per_iter=0.2, round=1), dict(row, s_per_iter=0.3, round=3)]})
    stock, fast = (r['s_per_iter_rounds'] for r in rows)
    assert (stock, fast) == ('nan;0.4000;0.6000', '0.2000;nan;0.3000')
    assert paired_speedups(stock, fast) == [2.0]
    assert all('round' not in r for r in rows)


@pytest.mark.parametrize('name', ['deformable-detr_r18_1xb16-mini.py', 'bf-deformable-detr_r18_1xb16-mini.py'])
def test_cudagraphs_configs_train_what_the_cudagraphs_variant_measures(name):
    """configs/mini/cudagraphs/X is configs/mini/X as benchmark_speed.py's fast-compile-all-cudagraphs variant
    runs it: same hooks, and nothing else changed."""
    from helpers import load_config
    from reproduce.bench.benchmark_speed import variant_options
    options = variant_options(f'configs/mini/{name}', 'fast-compile-all-cudagraphs')
    config = load_config(f'configs/mini/cudagraphs/{name}').to_dict()
    assert config.pop('custom_hooks') == options['custom_hooks']
    base = load_config(f'configs/mini/{name}').to_dict()
    base.pop('custom_hooks')
    assert config == base
