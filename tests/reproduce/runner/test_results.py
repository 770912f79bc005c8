"""reproduce/runner/results.py: the table says when a baseline did not learn."""
from reproduce.runner.results import render_table, results_frame
from reproduce.tables.detection import SPEC

METRICS = tuple(SPEC.metrics)


def frame(rows):
    return results_frame(rows, SPEC)


def table(df):
    return render_table(df, None, SPEC, scale='mini')


def _rows(detector, base_aps, bf_aps):
    rows = [dict(detector=detector, bf=0, seed=s, **{m: a for m in METRICS}) for s, a in enumerate(base_aps)]
    rows += [dict(detector=detector, bf=1, seed=s, **{m: a for m in METRICS}) for s, a in enumerate(bf_aps)]
    return rows


def test_a_baseline_at_chance_is_flagged_and_a_learned_one_is_not():
    df = frame(_rows('DETR', [0.0, 0.2], [0.1, 0.0]) + _rows('DeformableDETR', [31.0, 32.0], [33.0, 33.5]))
    note = [line for line in table(df).splitlines() if 'Not a measurement' in line]
    assert len(note) == 1 and 'DETR' in note[0] and 'DeformableDETR' not in note[0]
    learned = frame(_rows('DeformableDETR', [31.0], [33.0]))
    assert 'Not a measurement' not in table(learned)


def test_single_runs_at_chance_are_named_in_rows_that_learned():
    df = frame(_rows('DETR', [0.0, 0.2], [0.1, 0.0]) + _rows('ConditionalDETR', [0.3, 27.0, 26.0], [31.0, 28.0, 26.0]))
    lines = [line for line in table(df).splitlines() if 'Runs at chance' in line]
    assert len(lines) == 1
    assert 'ConditionalDETR: baseline seed 0 (1 of 3)' in lines[0] and lines[0].count('DETR:') == 1
    clean = frame(_rows('ConditionalDETR', [27.0, 26.0], [28.0, 26.0]))
    assert 'Runs at chance' not in table(clean)


def test_a_csv_without_some_metrics_renders_them_as_missing():
    df = frame([dict(detector='DETR', bf=bf, seed=s, AP=20.0 + bf + s) for s in (0, 1) for bf in (0, 1)])
    row = next(line for line in table(df).splitlines() if line.startswith('| DETR |'))
    assert row.startswith('| DETR | 2/2 | 20.5 ± 0.7 | 21.5 ± 0.7 | +1.0 [+1.0, +1.0] | n/a | n/a | missing | missing |')


def test_time_table_sums_the_runs_and_leaves_borrowed_ones_out():
    from reproduce.runner.results import render_time_table
    from reproduce.tables.ablation import SPEC as ABLATION
    rows = [dict(detector='DeformableDETR', variant=v, seed=s, AP=30.0, iterations=1500, wall_s=w, gpu='H200',
                 borrowed_from=b)
            for v, s, w, b in [(0, 0, 240.0, 'detection_mini'), (3, 0, 600.0, None), (3, 1, 1200.0, None)]]
    text = render_time_table(results_frame(rows, ABLATION), ABLATION, 'mini')
    line = next(x for x in text.splitlines() if x.startswith('| DeformableDETR |'))
    cells = [c.strip() for c in line.strip('|').split('|')]
    assert cells == ['DeformableDETR', '2', '1500', '15.0 min (10.0-20.0)', '0.5 h']  # (columns: arms with runs)
    assert 'Runs borrowed from another table (1) are not counted here.' in text
    only_borrowed = render_time_table(results_frame(rows[:1], ABLATION), ABLATION, 'mini')
    assert only_borrowed.startswith("Ablation, mini scale: no run of this table's own has a recorded time.")
