"""reproduce/bench/benchmark_resume_skip.py: interleaved rounds, the same batch after the skip, CSV and summary (the
dataloader replaced by a stand-in; the real skip is tested in tests/mmdet_plugins/runtime/test_resume_loop.py)."""
import pandas as pd
import pytest

from reproduce.bench import benchmark_resume_skip as bench


@pytest.fixture
def data_root(tmp_path):
    (tmp_path / 'data' / 'annotations').mkdir(parents=True)
    return str(tmp_path / 'data')


def test_rounds_alternate_and_report_the_ratio(tmp_path, data_root, monkeypatch):
    calls = []

    def stand_in(loader_cfg, variant, skip):
        calls.append(variant)
        return (8.0 if variant == 'mmengine' else 2.0), ['canvas_7.png', 'canvas_3.png']
    monkeypatch.setattr(bench, 'first_batch_after_skip', stand_in)
    out, md = tmp_path / 'skip.csv', tmp_path / 'skip.md'
    bench.main(['--data-root', data_root, '--skip', '50', '--rounds', '3', '--out', str(out), '--summary', str(md)])
    assert calls == ['mmengine', 'index', 'index', 'mmengine', 'mmengine', 'index']
    df = pd.read_csv(out)
    assert len(df) == 6 and (df.skip == 50).all() and (df.batch_size == 16).all()
    for col in ('config', 'hardware', 'torch', 'commit', 'date', 'workers'):
        assert df[col].notna().all()
    text = md.read_text()
    assert 'mmengine / index: 4.0x (range 4.0-4.0)' in text and '| index | 2.0 |' in text


def test_a_different_batch_after_the_skip_stops_the_benchmark(tmp_path, data_root, monkeypatch):
    monkeypatch.setattr(bench, 'first_batch_after_skip', lambda cfg, variant, skip: (1.0, [variant + '.png']))
    out = tmp_path / 'skip.csv'
    with pytest.raises(SystemExit, match='the batch after the skip differs'):
        bench.main(['--data-root', data_root, '--rounds', '1', '--out', str(out), '--summary', str(tmp_path / 'x.md')])
    assert not out.exists()


def test_bad_arguments_say_what_is_wrong(tmp_path, data_root, capsys):
    with pytest.raises(SystemExit):
        bench.main(['--data-root', str(tmp_path / 'none')])
    assert 'no dataset at --data-root' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(['--data-root', data_root, '--skip', '0'])
    assert '--rounds and --skip must be at least 1' in capsys.readouterr().err
