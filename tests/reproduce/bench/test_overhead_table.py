"""reproduce/bench/overhead_table.py: renders the stored CSV, refuses malformed input without touching outputs."""
import os.path as osp
import subprocess
import sys

from helpers import REPO

SCRIPT = osp.join(REPO, 'reproduce', 'bench', 'overhead_table.py')


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=120)


def test_renders_stored_csv(tmp_path):
    out = tmp_path / 'table.md'
    readme = tmp_path / 'README.md'
    readme.write_text('intro\n<!-- overhead_full:start -->\nold\n<!-- overhead_full:end -->\nafter\n')
    res = run(osp.join(REPO, 'results/measured/overhead_full.csv'), '--out', str(out), '--readme', str(readme))
    assert res.returncode == 0, res.stderr
    table = out.read_text()
    assert table.count('\n| ') >= 5 and '| DETR |' in table and '1.17' in table
    text = readme.read_text()
    assert 'old' not in text and '| DETR |' in text and text.startswith('intro') and text.endswith('after\n')


def test_malformed_csv_is_refused(tmp_path):
    bad = tmp_path / 'bad.csv'
    bad.write_text('detector,train_ratio\nDETR,1.2\n')
    out = tmp_path / 'table.md'
    res = run(str(bad), '--out', str(out))
    assert res.returncode != 0 and 'missing columns' in res.stderr
    assert not out.exists()
    res = run(str(tmp_path / 'missing.csv'), '--out', str(out))
    assert res.returncode != 0 and 'no such file' in res.stderr
