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
