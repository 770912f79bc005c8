"""reproduce/detection_results.py: the table says when a baseline did not learn."""
import sys

import pandas as pd

from helpers import REPO

sys.path.insert(0, REPO)
METRICS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')


def _rows(detector, base_aps, bf_aps):
    rows = [dict(detector=detector, bf=0, seed=s, **{m: a for m in METRICS}) for s, a in enumerate(base_aps)]
    rows += [dict(detector=detector, bf=1, seed=s, **{m: a for m in METRICS}) for s, a in enumerate(bf_aps)]
    return rows


def test_a_baseline_at_chance_is_flagged_and_a_learned_one_is_not():
    from reproduce.detection_results import render_table, results_frame
    df = results_frame(_rows('DETR', [0.0, 0.2], [0.1, 0.0]) + _rows('DeformableDETR', [31.0, 32.0], [33.0, 33.5]))
    table = render_table(df, None, scale='mini')
    note = [line for line in table.splitlines() if 'Not a measurement' in line]
    assert len(note) == 1 and 'DETR' in note[0] and 'DeformableDETR' not in note[0]
    learned = results_frame(_rows('DeformableDETR', [31.0], [33.0]))
    assert 'Not a measurement' not in render_table(learned, None, scale='mini')


def test_single_runs_at_chance_are_named_in_rows_that_learned():
    from reproduce.detection_results import render_table, results_frame
    df = results_frame(_rows('DETR', [0.0, 0.2], [0.1, 0.0]) + _rows('ConditionalDETR', [0.3, 27.0, 26.0],
                                                                     [31.0, 28.0, 26.0]))
    lines = [line for line in render_table(df, None, scale='mini').splitlines() if 'Runs at chance' in line]
    assert len(lines) == 1
    assert 'ConditionalDETR: baseline seed 0 (1 of 3)' in lines[0] and lines[0].count('DETR:') == 1
    clean = results_frame(_rows('ConditionalDETR', [27.0, 26.0], [28.0, 26.0]))
    assert 'Runs at chance' not in render_table(clean, None, scale='mini')
