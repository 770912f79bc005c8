"""reproduce/bench/benchmark_panoptic.py: both stages, baseline and BatchFormerV2 interleaved, on the CPU at tiny
shapes (a functional check: the numbers mean nothing here)."""
import pandas as pd
import pytest

from reproduce.bench import benchmark_panoptic as bench


def test_both_stages_side_by_side_with_rounds_and_provenance(tmp_path, monkeypatch, capsys):
    order = []
    original = bench.timed

    def spy(model, *args):
        order.append(type(model).__name__)
        return original(model, *args)
    monkeypatch.setattr(bench, 'timed', spy)
    out, md = tmp_path / 'cost.csv', tmp_path / 'cost.md'
    assert bench.main(['--device', 'cpu', '--scale', 'mini', '--height', '64', '--width', '64', '--batch', '2',
                       '--segments', '3', '--rounds', '3', '--steps', '1', '--warmup', '1', '--out', str(out),
                       '--summary', str(md)]) == 0
    # rounds alternate the order: AB, BA, AB, in each stage (stage 1: the box models; stage 2: the panoptic ones)
    def rounds(base, bf):
        return [base, bf, bf, base, base, bf]
    assert order == rounds('DETR', 'BFDETR') + rounds('DETRPanoptic', 'BFDETRPanoptic')
    df = pd.read_csv(out)
    assert list(df.stage) == [1, 2] and (df.batch_per_gpu == 2).all() and (df.rounds == 3).all()
    assert (df.step_ratio_min <= df.step_ratio).all() and (df.step_ratio <= df.step_ratio_max).all()
    assert (df.base_step_s > 0).all() and df.base_step_peak_gib.isna().all()  # (no peak memory off the GPU)
    # stage 2 trains the mask head only: far less resident state than stage 1 (gradients, optimiser state)
    assert df.base_resident_gib[1] < df.base_resident_gib[0]
    for col in ('commit', 'date', 'gpu', 'config', 'baseline_config', 'precision'):
        assert df[col].notna().all()
    assert df.config[1] == 'configs/mini/panoptic/bf-detr-panoptic-stage2_r18_1xb16-mini.py'
    text = md.read_text()
    assert '| 1: box model (things + stuff) |' in text and 'not measured (CPU)' in text


def test_bad_arguments_say_what_is_wrong(tmp_path):
    with pytest.raises(SystemExit, match='--rounds 0: give at least 1'):
        bench.main(['--device', 'cpu', '--rounds', '0', '--out', str(tmp_path / 'x.csv')])
    with pytest.raises(SystemExit, match='--batch 0: give at least 1'):
        bench.main(['--device', 'cpu', '--batch', '0', '--out', str(tmp_path / 'x.csv')])
    assert not (tmp_path / 'x.csv').exists()
