"""reproduce/compare.py: matches runs by (detector, bf, seed), flags metrics that moved beyond the seed spread,
refuses malformed or mismatched files with exit status 2."""
import csv
import os.path as osp
import subprocess
import sys

from helpers import REPO

SCRIPT = osp.join(REPO, 'reproduce', 'compare.py')
METRICS = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl']
HEADER = ['detector', 'bf', 'seed'] + METRICS + ['iterations', 'wall_s']
# per-seed step of each metric: within every (detector, bf) group the seeds give step * (0, 1, 2), so the sample
# sd is exactly `step`, the pooled sd too, and the default tolerance is 2 * step
STEP = {'AP': 1.0, 'AP50': 2.0, 'AP75': 1.0, 'APs': 0.5, 'APm': 1.0, 'APl': 1.5}
BASE = {'AP': 40.0, 'AP50': 60.0, 'AP75': 42.0, 'APs': 20.0, 'APm': 43.0, 'APl': 58.0}


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=120)


def make_rows(seeds=(0, 1, 2)):
    rows = []
    for d, detector in enumerate(['DETR', 'DeformableDETR']):
        for bf in (0, 1):
            for seed in seeds:
                row = dict(detector=detector, bf=bf, seed=seed, iterations=1000, wall_s=123.4)
                for m in METRICS:
                    row[m] = BASE[m] + 5 * d + bf + STEP[m] * seed
                rows.append(row)
    return rows


def write(path, rows, header=HEADER):
    with open(path, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=header, extrasaction='ignore')
        w.writeheader()
        w.writerows(rows)
    return path


def with_change(rows, detector, bf, seed, metric, delta):
    out = [dict(r) for r in rows]
    for r in out:
        if (r['detector'], r['bf'], r['seed']) == (detector, bf, seed):
            r[metric] = r[metric] + delta if delta is not None else ''
    return out


def files(tmp_path, new_rows, ref_rows=None):
    ref_rows = make_rows() if ref_rows is None else ref_rows
    return write(tmp_path / 'new.csv', new_rows), write(tmp_path / 'ref.csv', ref_rows)


def test_identical_files_pass(tmp_path):
    new, ref = files(tmp_path, make_rows())
    res = run(new, ref)
    assert res.returncode == 0, res.stdout + res.stderr
    assert 'matched 12 runs' in res.stdout and '!!' not in res.stdout.split('!! = moved')[0]
    # default tolerance from the seed spread: 2 x pooled sd (AP: sd 1 -> 2.00, AP50: sd 2 -> 4.00)
    assert 'pooled seed sd 1.000' in res.stdout and 'pooled seed sd 2.000' in res.stdout
    tol_lines = {line.split()[0]: line.split()[1] for line in res.stdout.splitlines() if 'pooled seed sd' in line}
    assert tol_lines['AP'] == '2.00' and tol_lines['AP50'] == '4.00' and tol_lines['APs'] == '1.00'
    # one line per matched run
    assert sum(line.startswith(('DETR ', 'DeformableDETR ')) for line in res.stdout.splitlines()) == 12


def test_large_move_fails_and_is_named(tmp_path):
    new, ref = files(tmp_path, with_change(make_rows(), 'DeformableDETR', 1, 2, 'AP75', -6.0))
    res = run(new, ref)
    assert res.returncode == 1, res.stdout + res.stderr
    moved = res.stdout.split('MOVED:')[1]
    assert 'DeformableDETR bf=1 seed=2 AP75' in moved and '-6.00' in moved
    assert 'DETR bf=' not in moved.replace('DeformableDETR', '')  # nothing else moved
    flagged = [line for line in res.stdout.splitlines() if line.startswith('DeformableDETR') and '!!' in line]
    assert len(flagged) == 1 and flagged[0].split()[1:3] == ['1', '2']


def test_default_tolerance_is_twice_pooled_sd(tmp_path):
    # AP: pooled sd 1 -> tol 2; AP50: pooled sd 2 -> tol 4
    ok = with_change(make_rows(), 'DETR', 0, 1, 'AP', 1.9)
    ok = with_change(ok, 'DETR', 1, 0, 'AP50', -3.9)
    new, ref = files(tmp_path, ok)
    res = run(new, ref)
    assert res.returncode == 0, res.stdout + res.stderr

    bad = with_change(make_rows(), 'DETR', 0, 1, 'AP', 2.1)
    new, ref = files(tmp_path, bad)
    res = run(new, ref)
    assert res.returncode == 1 and 'DETR bf=0 seed=1 AP:' in res.stdout

    bad = with_change(make_rows(), 'DETR', 1, 0, 'AP50', -4.1)
    new, ref = files(tmp_path, bad)
    res = run(new, ref)
    assert res.returncode == 1 and 'DETR bf=1 seed=0 AP50:' in res.stdout


def test_pooled_sd_weights_groups_by_seeds(tmp_path):
    # groups of 3 seeds with sd 1 (AP) plus one group of 2 seeds with spread 4 (var 8): pooled var
    # = (4 * 2 * 1 + 1 * 8) / (4 * 2 + 1) = 16 / 9 -> sd 4/3, tol 8/3 = 2.667
    ref_rows = make_rows() + [dict(detector='DINO', bf=0, seed=s, iterations=1, wall_s=1,
                                   **{m: 30.0 + 4 * s for m in METRICS}) for s in (0, 1)]
    new, ref = files(tmp_path, with_change(make_rows(), 'DETR', 0, 0, 'AP', 2.6), ref_rows)
    res = run(new, ref)
    assert res.returncode == 0, res.stdout + res.stderr
    assert 'only in REFERENCE: DINO bf=0 seed=0, DINO bf=0 seed=1' in res.stdout
    new, ref = files(tmp_path, with_change(make_rows(), 'DETR', 0, 0, 'AP', 2.7), ref_rows)
    assert run(new, ref).returncode == 1


def test_tol_overrides(tmp_path):
    new, ref = files(tmp_path, with_change(make_rows(), 'DETR', 0, 1, 'AP', 2.5))
    assert run(new, ref).returncode == 1
    res = run(new, ref, '--tol', '3')
    assert res.returncode == 0, res.stdout + res.stderr
    assert '--tol' in res.stdout
    res = run(new, ref, '--tol', '0.1', '--metrics', 'AP50', 'APm')  # AP not compared
    assert res.returncode == 0, res.stdout + res.stderr
    assert run(new, ref, '--tol', '2.4').returncode == 1


def test_empty_cells(tmp_path):
    rows = [dict(r, APl='') for r in make_rows()]
    new, ref = files(tmp_path, rows, rows)
    res = run(new, ref)
    assert res.returncode == 0, res.stdout + res.stderr  # empty in both: not moved, no tolerance needed
    new, ref = files(tmp_path, with_change(make_rows(), 'DETR', 1, 1, 'APl', None))
    res = run(new, ref)
    assert res.returncode == 1
    assert 'DETR bf=1 seed=1 APl: empty in NEW only' in res.stdout


def test_only_in_one_file_is_listed(tmp_path):
    new_rows = [r for r in make_rows() if r['seed'] != 2] + [dict(make_rows()[0], seed=7)]
    new, ref = files(tmp_path, new_rows)
    res = run(new, ref)
    assert res.returncode == 0, res.stdout + res.stderr
    assert 'only in NEW: DETR bf=0 seed=7' in res.stdout
    assert 'only in REFERENCE: DETR bf=0 seed=2' in res.stdout and 'matched 8 runs' in res.stdout


def test_malformed_or_mismatched_files_exit_2(tmp_path):
    good = write(tmp_path / 'good.csv', make_rows())

    no_seed = write(tmp_path / 'no_seed.csv', make_rows(), header=[h for h in HEADER if h != 'seed'])
    res = run(no_seed, good)
    assert res.returncode == 2 and 'error:' in res.stderr and 'missing columns' in res.stderr
    assert "'seed'" in res.stderr

    rows = make_rows()
    rows[3]['AP'] = 'n/a?'
    text_metric = write(tmp_path / 'text.csv', rows)
    res = run(good, text_metric)
    assert res.returncode == 2 and 'column AP has non-numeric values' in res.stderr

    dup = write(tmp_path / 'dup.csv', make_rows() + make_rows()[:1])
    res = run(dup, good)
    assert res.returncode == 2 and 'duplicate rows' in res.stderr and 'DETR' in res.stderr

    other = write(tmp_path / 'other.csv', [dict(r, seed=r['seed'] + 10) for r in make_rows()])
    res = run(other, good)
    assert res.returncode == 2 and 'share no (detector, bf, seed) key' in res.stderr

    one_seed = write(tmp_path / 'one_seed.csv', make_rows(seeds=(0,)))
    res = run(good, one_seed)
    assert res.returncode == 2 and '--tol' in res.stderr and 'two or more seeds' in res.stderr
    assert run(good, one_seed, '--tol', '0.5').returncode == 0

    res = run(tmp_path / 'missing.csv', good)
    assert res.returncode == 2 and 'no such file' in res.stderr and 'missing.csv' in res.stderr

    res = run(good, good, '--metrics', 'AP', 'mAP')
    assert res.returncode == 2 and 'mAP' in res.stderr and 'not a metric' in res.stderr
    no_apl = write(tmp_path / 'no_apl.csv', make_rows(), header=[h for h in HEADER if h != 'APl'])
    res = run(good, no_apl, '--metrics', 'APl')
    assert res.returncode == 2 and 'no column APl' in res.stderr


def test_help_shows_usage():
    res = run('--help')
    assert res.returncode == 0 and 'pooled sd' in res.stdout and 'Exit status' in res.stdout


def test_a_file_that_is_not_a_csv_is_one_line(tmp_path):
    ref = osp.join(REPO, 'results/measured/detection_mini.csv')
    res = run(osp.join(REPO, 'README.md'), ref)
    assert res.returncode == 2 and 'not a readable CSV' in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and 'Traceback' not in res.stderr
