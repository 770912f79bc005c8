"""reproduce/bench/benchmark_mask_head.py on the CPU at tiny shapes (a functional check: the times mean nothing)."""
import pandas as pd
import pytest

from reproduce.bench import benchmark_mask_head as bench


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(bench.SCALES, 'mini', dict(images=2, queries=6, height=64, width=64, fpn_dims=(16, 8, 4)))


def test_variants_alternate_agree_and_are_stored_with_provenance(tiny, tmp_path, monkeypatch):
    order = []
    original = bench.step
    monkeypatch.setattr(bench, 'step', lambda head, variant, data: order.append(variant) or original(head, variant, data))
    out, md = tmp_path / 'mh.csv', tmp_path / 'mh.md'
    assert bench.main(['--device', 'cpu', '--rounds', '2', '--steps', '1', '--matched', '2', '--out', str(out),
                       '--summary', str(md)]) == 0
    assert order == ['every_query', 'matched_only',                       # the check
                     'every_query', 'matched_only', 'matched_only', 'every_query']
    df = pd.read_csv(out)
    assert len(df) == 4 and (df.step_s > 0).all() and (df.matched_per_image == 2).all()
    for col in ('hardware', 'torch', 'commit', 'date', 'scale'):
        assert df[col].notna().all()
    assert 'every query / matched only:' in md.read_text() and 'not measured (CPU)' in md.read_text()


def test_a_disagreement_stops_the_benchmark(tiny, tmp_path, monkeypatch):
    original = bench.step
    monkeypatch.setattr(bench, 'step', lambda head, variant, data: original(head, variant, data)
                        + (1.0 if variant == 'matched_only' else 0.0))
    with pytest.raises(SystemExit, match='the variants disagree'):
        bench.main(['--device', 'cpu', '--matched', '2', '--out', str(tmp_path / 'x.csv'),
                    '--summary', str(tmp_path / 'x.md')])
    assert not (tmp_path / 'x.csv').exists()


def test_bad_arguments_say_what_is_wrong(capsys):
    with pytest.raises(SystemExit):
        bench.main(['--device', 'cpu', '--matched', '60'])
    assert 'more than the 50 queries per image' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(['--device', 'cpu', '--rounds', '0'])
    assert 'must be at least 1' in capsys.readouterr().err
