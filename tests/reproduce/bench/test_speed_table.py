"""reproduce/bench/speed_table.py: renders the stored speed CSV; refuses malformed input without writing."""
import os.path as osp
import subprocess
import sys

from helpers import REPO

SCRIPT = osp.join(REPO, 'reproduce', 'bench', 'speed_table.py')


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=120)


def test_renders_stored_csv_into_readme_block(tmp_path):
    out, readme = tmp_path / 'speed_mini_detr.md', tmp_path / 'README.md'
    readme.write_text('intro\n<!-- speed_mini_detr:start -->\nold\n<!-- speed_mini_detr:end -->\nafter\n')
    res = run(osp.join(REPO, 'results/measured/speed_mini_detr.csv'), '--out', str(out), '--readme', str(readme))
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


def test_rows_of_several_rounds_show_their_range(tmp_path):
    import pandas as pd
    df = pd.read_csv(osp.join(REPO, 'results/archive/2026-11-21/measured/speed_fp32_backward_quiet.csv')).head(2)
    df['rounds'], df['s_per_iter_min'], df['s_per_iter_max'] = [3, 1], [0.41, 0.17], [0.45, 0.17]
    csv, out = tmp_path / 'speed.csv', tmp_path / 'speed.md'
    df.to_csv(csv, index=False)
    res = run(str(csv), '--out', str(out))
    assert res.returncode == 0, res.stderr
    rows = [line for line in out.read_text().splitlines() if line.startswith('| `')]
    assert '| 0.429 (0.410-0.450) |' in rows[0] and '| 0.170 |' in rows[1]
    assert 'median of interleaved rounds' in out.read_text()


def test_speedup_shows_its_range_over_paired_rounds(tmp_path):
    import pandas as pd
    df = pd.read_csv(osp.join(REPO, 'results/archive/2026-11-21/measured/speed_fp32_backward_quiet.csv')).head(2)
    df['rounds'], df['s_per_iter_min'], df['s_per_iter_max'] = [2, 2], [0.41, 0.16], [0.45, 0.17]
    df['speedup_rounds_min'], df['speedup_rounds_max'] = [1.0, 2.18], [1.0, 2.9]
    csv, out = tmp_path / 'speed.csv', tmp_path / 'speed.md'
    df.to_csv(csv, index=False)
    assert run(str(csv), '--out', str(out)).returncode == 0
    rows = [line for line in out.read_text().splitlines() if line.startswith('| `')]
    assert '| **1.00x** |' in rows[0] and '| **2.53x** (2.18-2.90) |' in rows[1]
    assert 'lowest and highest over the rounds' in out.read_text()
    # one round pairs with itself: no range, no footnote
    df['rounds'], df['speedup_rounds_min'], df['speedup_rounds_max'] = [1, 1], [1.0, 2.53], [1.0, 2.53]
    df.to_csv(csv, index=False)
    assert run(str(csv), '--out', str(out)).returncode == 0
    rows = [line for line in out.read_text().splitlines() if line.startswith('| `')]
    assert '| **2.53x** |' in rows[1] and 'lowest and highest' not in out.read_text()
