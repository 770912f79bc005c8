"""reproduce/speed_table.py: renders the stored speed CSV; refuses malformed input without writing."""
import os.path as osp
import subprocess
import sys

from helpers import REPO

SCRIPT = osp.join(REPO, 'reproduce', 'speed_table.py')


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=120)


def test_renders_stored_csv_into_readme_block(tmp_path):
    out, readme = tmp_path / 'speed.md', tmp_path / 'README.md'
    readme.write_text('intro\n<!-- speed_mini:start -->\nold\n<!-- speed_mini:end -->\nafter\n')
    res = run(osp.join(REPO, 'results/measured/speed.csv'), '--out', str(out), '--readme', str(readme))
    assert res.returncode == 0, res.stderr
    table = out.read_text()
    rows = [line for line in table.splitlines() if line.startswith('| `')]
    assert len(rows) >= 4 and any('| stock |' in r for r in rows) and any('| fast |' in r for r in rows)
    assert 'commit ' in table
    text = readme.read_text()
    assert 'old' not in text and table.splitlines()[0] in text and text.endswith('after\n')


def test_malformed_or_missing_csv_is_refused(tmp_path):
    bad = tmp_path / 'bad.csv'
    bad.write_text('config,variant,s_per_iter\na.py,stock,0.3\n')
    out = tmp_path / 'speed.md'
    res = run(str(bad), '--out', str(out))
    assert res.returncode != 0 and 'missing columns' in res.stderr and not out.exists()
    res = run(str(tmp_path / 'missing.csv'), '--out', str(out))
    assert res.returncode != 0 and 'no such file' in res.stderr and not out.exists()
