"""A table's stored results: the CSV schema and its validation, statistics over seeds, and the markdown table.

Measured CSV (``results/measured/<table>_<scale>.csv``): one row per run, keyed by the table's row column, arm
column and ``seed``; metrics in points (0-100); provenance columns :data:`RUN_COLUMNS`. Paper CSV
(``results/paper/<table>.csv``): ``method``, the arm column, the metrics, ``source``.
"""
from __future__ import annotations

import math
import os.path as osp

from .spec import TableSpec

# Provenance columns of a measured row, after the keys and metrics. ``dataset`` (added later than the others) is
# empty in rows made before it existed: those runs trained on the scale's preset data.
RUN_COLUMNS = ['iterations', 'wall_s', 'sittings', 'gpu', 'commit', 'date', 'config', 'scale', 'config_hash',
               'dataset']
TEXT_COLUMNS = ('method', 'gpu', 'commit', 'date', 'config', 'scale', 'source', 'config_hash', 'dataset')


class ResultsFileError(ValueError):
    """A results CSV that is missing, unreadable or lacks required columns (the message names the file)."""


def columns(spec: TableSpec):
    return list(spec.key_columns) + list(spec.metrics) + RUN_COLUMNS


def read_csv_checked(path: str, required, keys=(), numeric=(), integer=(), text=()):
    """Read a CSV and check it: the ``required`` columns are there, ``numeric`` columns hold numbers (or are
    empty), ``integer`` columns whole numbers; with ``keys``, no key cell is empty and no two rows share their
    keys. ``text`` columns are read as strings (a commit such as ``1234567e8901`` is not a number).

    Raises:
        ResultsFileError: naming the file and what is wrong.
    """
    import pandas as pd
    keys = list(keys)
    if not osp.isfile(path):
        raise ResultsFileError(f'{path}: no such file')
    try:
        with open(path) as f:
            header = f.readline().strip().split(',')
        df = pd.read_csv(path, dtype={c: str for c in set(text) | set(TEXT_COLUMNS) if c in header})
    except Exception as e:  # noqa: BLE001  (pandas' parser errors have several types)
        raise ResultsFileError(f'{path}: not a readable CSV ({" ".join(str(e).split())})')
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ResultsFileError(f'{path}: missing columns {missing} (has {list(df.columns)})')
    for col in [c for c in list(numeric) + list(integer) if c in df.columns]:
        values = pd.to_numeric(df[col], errors='coerce')
        bad = df[col].notna() & values.isna()
        if col in integer:
            bad |= values.notna() & (values % 1 != 0)
        if bad.any():
            what = 'non-integer' if col in integer else 'non-numeric'
            raise ResultsFileError(f'{path}: column {col} has {what} values in rows '
                                   f'{[int(i) + 2 for i in df.index[bad]]} (line numbers)')
        df[col] = values
    if keys:
        if df[keys].isna().any().any():
            raise ResultsFileError(f'{path}: empty key cells ({keys})')
        dup = df.duplicated(keys, keep=False)
        if dup.any():
            raise ResultsFileError(f'{path}: duplicate rows for {df.loc[dup, keys].values.tolist()}')
        for col in integer:
            if col in keys:
                df[col] = df[col].astype(int)
    return df


def read_results_csv(path: str, spec: TableSpec, paper: bool = False, required=None):
    """Read and validate a measured (or, with ``paper=True``, a paper) results CSV of ``spec``'s table.

    Required columns (default): the keys and the primary metric; for a paper CSV ``method``, the arm column,
    the metrics and ``source``. A measured CSV's keys must be filled and unique, its arm and seed whole numbers.
    """
    if paper:
        return read_csv_checked(path, required or ['method', spec.arm_column, *spec.metrics, 'source'],
                                numeric=list(spec.metrics), integer=[spec.arm_column])
    return read_csv_checked(path, required or list(spec.key_columns) + [spec.primary], keys=spec.key_columns,
                            numeric=list(spec.metrics), integer=[spec.arm_column, 'seed'],
                            text=[spec.row_column])


def results_frame(rows, spec: TableSpec):
    """A measured-results DataFrame with the standard column order, sorted by the key columns."""
    import pandas as pd
    df = pd.DataFrame(rows)
    order = columns(spec)
    cols = [c for c in order if c in df.columns] + [c for c in df.columns if c not in order]
    return df[cols].sort_values(list(spec.key_columns)).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------- statistics
def t_quantile_975(dof: int) -> float:
    from scipy import stats
    return float(stats.t.ppf(0.975, dof))


def paired_difference(a, b):
    """Mean of ``b - a`` over their common index (seeds) and the half-width of its 95% t interval.

    Args:
        a, b: pandas Series indexed by seed. Returns ``(mean, half, n_paired)``; ``half`` is NaN with fewer than
        two pairs or an empty value, ``mean`` NaN without pairs.
    """
    paired = sorted(set(a.index) & set(b.index))
    if not paired:
        return math.nan, math.nan, 0
    diff = b.loc[paired] - a.loc[paired]
    half = math.nan
    if len(paired) > 1 and diff.notna().all():
        half = t_quantile_975(len(paired) - 1) * diff.std(ddof=1) / math.sqrt(len(paired))
    return diff.mean(), half, len(paired)


def summarise(df, spec: TableSpec):
    """Per row of the table: each arm's run count, mean and std over seeds for every metric, and each other
    arm's paired difference from the reference arm (seeds matched) with its 95% t interval. A list of dicts
    with keys ``row``, ``n[arm]``, ``mean[arm, m]``, ``std[arm, m]``, ``diff[arm, m]``, ``half[arm, m]``."""
    out = []
    ref = spec.arms[0]
    for row in sorted(df[spec.row_column].unique()):
        d = df[df[spec.row_column] == row]
        by_arm = {arm.value: d[d[spec.arm_column] == arm.value].set_index('seed') for arm in spec.arms}
        entry = dict(row=row, n={}, mean={}, std={}, diff={}, half={})
        for arm in spec.arms:
            runs = by_arm[arm.value]
            entry['n'][arm.value] = len(runs)
            for m in spec.metrics:
                if m not in df.columns:  # a CSV without this metric: every cell of it is missing
                    for part in ('mean', 'std', 'diff', 'half'):
                        entry[part][arm.value, m] = math.nan
                    continue
                entry['mean'][arm.value, m] = runs[m].mean() if len(runs) else math.nan
                entry['std'][arm.value, m] = runs[m].std(ddof=1) if len(runs) > 1 else math.nan
                if arm is not ref:
                    diff, half, _ = paired_difference(by_arm[ref.value][m], runs[m])
                    entry['diff'][arm.value, m], entry['half'][arm.value, m] = diff, half
        out.append(entry)
    return out


def paper_value(paper, spec: TableSpec, method: str, arm_value: int, metric: str):
    """The published ``metric`` of ``method`` in ``arm_value``'s arm, NaN where the paper CSV has none."""
    if paper is None:
        return math.nan
    rows = paper[(paper.method == method) & (paper[spec.arm_column] == arm_value)]
    return rows[metric].iloc[0] if len(rows) else math.nan


def fmt(mean, std=math.nan):
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return 'missing'
    return f'{mean:.1f}' if math.isnan(std) else f'{mean:.1f} ± {std:.1f}'


def fmt_diff(diff, half, interval: bool = True):
    if math.isnan(diff):
        return 'n/a'
    text = f'{diff:+.1f}'
    if not interval:
        return text
    return text + (f' [{diff - half:+.1f}, {diff + half:+.1f}]' if not math.isnan(half) else ' (one seed)')


def fmt_paper_diff(base, other):
    return f'{other - base:+.1f}' if not (math.isnan(base) or math.isnan(other)) else 'missing'


def below_chance_runs(df, spec: TableSpec, skip=()):
    """Per row (not in ``skip``) with at least one run whose primary metric is below ``spec.chance``:
    ``'DET: baseline seed 0 (1 of 4)'``."""
    out = []
    for row, group in df.groupby(spec.row_column, sort=True):
        if row in skip:
            continue
        low = group[group[spec.primary] < spec.chance]
        if low.empty:
            continue
        parts = []
        for arm in spec.arms:
            seeds = sorted(int(x) for x in low[low[spec.arm_column] == arm.value].seed)
            if seeds:
                total = int((group[spec.arm_column] == arm.value).sum())
                parts.append(f'{arm.name} seed{"s" if len(seeds) > 1 else ""} {", ".join(map(str, seeds))} '
                             f'({len(seeds)} of {total})')
        out.append(f'{row}: ' + ', '.join(parts))
    return out


# ---------------------------------------------------------------------------------------------- markdown
def render_table(df, paper, spec: TableSpec, scale: str, banner=None) -> str:
    """Markdown: each arm's mean ± std over seeds, each other arm's paired difference from the reference arm
    with its 95% interval, and the paper's numbers (with their source) for the same row."""
    ref, others = spec.arms[0], spec.arms[1:]
    p = spec.primary
    qualify = len(others) > 1  # name the arm in a Δ column only when there are several

    def delta_header(arm, m, interval=False):
        return f'Δ {arm.label + " " if qualify else ""}{m}' + (' [95% CI]' if interval else '')

    header = [spec.row_column, 'seeds'] + [f'{arm.label} {p}' for arm in spec.arms]
    for arm in others:
        header += [delta_header(arm, p, True)] + [delta_header(arm, m) for m in spec.delta_metrics]
    header += [f'{arm.label} {m}' for m in spec.mean_metrics for arm in spec.arms]
    header += [f'paper {arm.label} {p}' for arm in spec.arms]
    header += [f'paper {delta_header(arm, p)}' for arm in others]

    lines = []
    if banner:
        lines += [f'> **{banner}**', '']
    lines += [f'**{spec.title}, {scale} scale**', '',
              f'Measured: mean ± standard deviation over seeds ({spec.unit}). Δ: {spec.delta_meaning}, paired by '
              f'seed, with a 95% t interval. Paper: {spec.paper_setting}.', '',
              '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    summary = summarise(df, spec)
    for e in summary:
        v = e['row']
        cells = [v, '/'.join(str(e['n'][arm.value]) for arm in spec.arms)]
        cells += [fmt(e['mean'][arm.value, p], e['std'][arm.value, p]) for arm in spec.arms]
        for arm in others:
            cells.append(fmt_diff(e['diff'][arm.value, p], e['half'][arm.value, p]))
            cells += [fmt_diff(e['diff'][arm.value, m], math.nan, interval=False) for m in spec.delta_metrics]
        cells += [fmt(e['mean'][arm.value, m], e['std'][arm.value, m]) for m in spec.mean_metrics
                  for arm in spec.arms]
        published = [paper_value(paper, spec, v, arm.value, p) for arm in spec.arms]
        cells += [fmt(x) for x in published] + [fmt_paper_diff(published[0], x) for x in published[1:]]
        lines.append('| ' + ' | '.join(cells) + ' |')
    if paper is not None:
        measured_cols = len(spec.arms) + len(others) * (1 + len(spec.delta_metrics)) \
            + len(spec.mean_metrics) * len(spec.arms)
        for method in sorted(set(paper.method) - set(df[spec.row_column])):
            published = [paper_value(paper, spec, method, arm.value, p) for arm in spec.arms]
            cells = [method, 'not run'] + ['–'] * measured_cols
            cells += [fmt(x) for x in published] + [fmt_paper_diff(published[0], x) for x in published[1:]]
            lines.append('| ' + ' | '.join(cells) + ' |')
    not_learned = [e['row'] for e in summary if e['mean'][ref.value, p] < spec.chance]
    if not_learned:
        lines += ['', f'**Not a measurement of BatchFormerV2:** {", ".join(not_learned)}: the {ref.name} stayed at '
                  f'chance ({p} < {spec.chance:g}) with this config, so its row says only that this '
                  f'{spec.row_column} does not learn here in this schedule, not whether BatchFormerV2 helps it.']
    stalled = below_chance_runs(df, spec, skip=not_learned)
    if stalled:
        lines += ['', f'**Runs at chance** ({p} < {spec.chance:g}) in rows that otherwise learned; their seeds pull '
                  f'the mean and widen the interval: {"; ".join(stalled)}.']
    if paper is not None:
        sources = sorted(set(paper.source.dropna()))
        lines += ['', 'Paper sources: ' + '; '.join(sources)]
    for line in provenance_lines(df):
        lines += ['', line]
    if 'iterations' in df.columns and 'config' in df.columns:
        cfgs = df[[spec.row_column, spec.arm_column, 'config', 'iterations']].drop_duplicates()
        lines += ['', 'Configs: ' + '; '.join(f'`{r.config}` ({int(r.iterations)} it)' for r in cfgs.itertuples())]
    lines.append('')
    return '\n'.join(lines)


def provenance_lines(df) -> list:
    """The ``Measured on: ...`` and ``Dataset: ...`` lines of a table (each only where the CSV has the columns)."""
    lines = []
    if {'gpu', 'commit', 'date'} <= set(df.columns):
        prov = df[['gpu', 'commit', 'date']].drop_duplicates()
        lines.append('Measured on: ' + '; '.join(f'{r.gpu}, commit {r.commit}, {r.date}' for r in prov.itertuples()))
    if 'dataset' in df.columns and df.dataset.notna().any():
        lines.append('Dataset: ' + '; '.join(sorted(set(df.dataset.dropna())))
                     + (' (runs without a dataset entry: the scale\'s preset data)' if df.dataset.isna().any() else ''))
    return lines


def render_time_table(df, spec: TableSpec, scale: str) -> str:
    """Markdown: how long the stored runs took (the CSV's ``wall_s``): per row, each arm's median run and the sum
    over all runs, and the total; a column for each arm with runs. Rows borrowed from another table
    (``borrowed_from``) are left out: their time is that table's."""
    borrowed = 0
    if 'borrowed_from' in df.columns:
        borrowed = int(df.borrowed_from.notna().sum())
        df = df[df.borrowed_from.isna()]
    note = f' Runs borrowed from another table ({borrowed}) are not counted here.' if borrowed else ''
    if df.wall_s.notna().sum() == 0:
        return f'{spec.title}, {scale} scale: no run of this table\'s own has a recorded time.{note}\n'
    arms = [arm for arm in spec.arms if (df[spec.arm_column] == arm.value).any()]  # (arms with runs)
    lines = [f'| {spec.row_column} | runs | iterations | '
             + ' | '.join(f'{arm.label} run, median (range)' for arm in arms) + ' | all runs |',
             '|' + '---|' * (4 + len(arms))]
    total = 0.0
    for row, group in df.groupby(spec.row_column, sort=True):
        group = group[group.wall_s.notna()]
        if group.empty:
            continue
        total += group.wall_s.sum()
        iters = ', '.join(str(int(i)) for i in sorted(group.iterations.dropna().unique()))
        cells = []
        for arm in arms:
            wall = group[group[spec.arm_column] == arm.value].wall_s
            cells.append('–' if wall.empty else
                         f'{wall.median() / 60:.1f} min ({wall.min() / 60:.1f}-{wall.max() / 60:.1f})')
        lines.append(f'| {row} | {len(group)} | {iters} | ' + ' | '.join(cells)
                     + f' | {group.wall_s.sum() / 3600:.1f} h |')
    gpus = (', '.join(sorted(set(df.gpu.dropna()))) if 'gpu' in df.columns else '') or 'not recorded'
    lines += ['', f'{spec.title}, {scale} scale: {total / 3600:.1f} hours of run time in all ({gpus}). A run\'s time is '
              'its training process\'s wall-clock time summed over its sittings, final validation included. '
              'Several runs often shared one GPU, each then slower than alone, so these times overstate what a '
              'run takes on a GPU of its own.' + note, '']
    return '\n'.join(lines)
