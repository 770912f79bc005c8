"""Detection results as tables: the stored CSVs' schema, validation, aggregation over seeds, markdown.

Measured CSV (results/measured/detection_<scale>.csv): one row per run, AP metrics in points (0-100),
columns :data:`COLUMNS`. Paper CSV (results/paper/detection.csv): ``method, bf, AP..APl, ..., source``.
"""
from __future__ import annotations

import math
import os.path as osp

KEY_COLUMNS = ['detector', 'bf', 'seed']
METRICS = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl']
COLUMNS = KEY_COLUMNS + METRICS + ['iterations', 'wall_s', 'sittings', 'gpu', 'commit', 'date', 'config', 'scale',
                                   'config_hash']
PAPER_COLUMNS = ['method', 'bf'] + METRICS + ['source']


class ResultsFileError(ValueError):
    """A results CSV that is missing, unreadable or lacks required columns."""


TEXT_COLUMNS = ('detector', 'method', 'gpu', 'commit', 'date', 'config', 'scale', 'source', 'config_hash')


def read_results_csv(path: str, paper: bool = False, required=None, keys=KEY_COLUMNS):
    """Read and validate a measured (or, with ``paper=True``, a paper) results CSV.

    Args:
        required: columns that must be there (default: the keys and AP; for a paper CSV, PAPER_COLUMNS).
        keys: columns that identify a row: none may be empty and no two rows may share them.

    Raises:
        ResultsFileError: with a message naming the file and what is wrong.
    """
    import pandas as pd
    if not osp.isfile(path):
        raise ResultsFileError(f'{path}: no such file')
    try:
        with open(path) as f:
            header = f.readline().strip().split(',')
        df = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS if c in header})
    except Exception as e:  # noqa: BLE001  (pandas' parser errors have several types)
        raise ResultsFileError(f'{path}: not a readable CSV ({e})')
    required = required or (PAPER_COLUMNS if paper else list(keys) + ['AP'])
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ResultsFileError(f'{path}: missing columns {missing} (has {list(df.columns)})')
    for col in [c for c in METRICS if c in df.columns]:
        values = pd.to_numeric(df[col], errors='coerce')
        bad = df[col].notna() & values.isna()
        if bad.any():
            raise ResultsFileError(f'{path}: column {col} has non-numeric values in rows '
                                   f'{[int(i) + 2 for i in df.index[bad]]} (line numbers)')
        df[col] = values
    if not paper:
        keys = list(keys)
        if df[keys].isna().any().any():
            raise ResultsFileError(f'{path}: empty key cells ({keys})')
        dup = df.duplicated(keys, keep=False)
        if dup.any():
            raise ResultsFileError(f'{path}: duplicate rows for {df.loc[dup, keys].values.tolist()}')
        for col in ('bf', 'seed'):
            if col in keys:
                df[col] = df[col].astype(int)
    return df


def results_frame(rows):
    """A measured-results DataFrame with the standard column order, sorted by detector, bf, seed."""
    import pandas as pd
    df = pd.DataFrame(rows)
    cols = [c for c in COLUMNS if c in df.columns] + [c for c in df.columns if c not in COLUMNS]
    return df[cols].sort_values(KEY_COLUMNS).reset_index(drop=True)


def t_quantile_975(dof: int) -> float:
    from scipy import stats
    return float(stats.t.ppf(0.975, dof))


def summarise(df):
    """Per detector: mean and std over seeds for baseline and BatchFormerV2, and the paired difference
    (BF - baseline, seeds matched) with a 95% t interval. Returns a list of dicts."""
    out = []
    for detector in sorted(df.detector.unique()):
        d = df[df.detector == detector]
        base, bf = d[d.bf == 0].set_index('seed'), d[d.bf == 1].set_index('seed')
        paired = sorted(set(base.index) & set(bf.index))
        entry = dict(detector=detector, n_base=len(base), n_bf=len(bf), n_paired=len(paired))
        for m in METRICS:
            entry[f'{m}_base_mean'] = base[m].mean() if len(base) else math.nan
            entry[f'{m}_base_std'] = base[m].std(ddof=1) if len(base) > 1 else math.nan
            entry[f'{m}_bf_mean'] = bf[m].mean() if len(bf) else math.nan
            entry[f'{m}_bf_std'] = bf[m].std(ddof=1) if len(bf) > 1 else math.nan
            diff = (bf.loc[paired, m] - base.loc[paired, m]) if paired else None
            entry[f'{m}_diff'] = diff.mean() if paired else math.nan
            if paired and len(paired) > 1 and diff.notna().all():
                half = t_quantile_975(len(paired) - 1) * diff.std(ddof=1) / math.sqrt(len(paired))
            else:
                half = math.nan
            entry[f'{m}_diff_ci'] = half
        out.append(entry)
    return out


def paper_numbers(paper, method: str):
    """(baseline AP, BatchFormerV2 AP, 'difference' text) of ``method`` in the paper CSV; NaN where missing."""
    rows = paper[paper.method == method] if paper is not None else None
    base = rows[rows.bf == 0].AP.iloc[0] if rows is not None and len(rows[rows.bf == 0]) else math.nan
    bf = rows[rows.bf == 1].AP.iloc[0] if rows is not None and len(rows[rows.bf == 1]) else math.nan
    diff = f'{bf - base:+.1f}' if not (math.isnan(base) or math.isnan(bf)) else 'missing'
    return base, bf, diff


def _fmt(mean, std=math.nan):
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return 'missing'
    return f'{mean:.1f}' if math.isnan(std) else f'{mean:.1f} ± {std:.1f}'


def _fmt_diff(diff, half):
    if math.isnan(diff):
        return 'n/a'
    text = f'{diff:+.1f}'
    return text + (f' [{diff - half:+.1f}, {diff + half:+.1f}]' if not math.isnan(half) else ' (one seed)')


# A baseline mean AP below this (AP points) did not learn: its row cannot show an effect of BatchFormerV2.
NOT_LEARNED_AP = 1.0


def stalled_runs(df, skip=()):
    """Per detector (not in ``skip``) with at least one run at chance: 'DET: base seeds [..], BF seeds [..]'."""
    out = []
    for detector, group in df.groupby('detector', sort=True):
        if detector in skip:
            continue
        low = group[group.AP < NOT_LEARNED_AP]
        if low.empty:
            continue
        parts = []
        for bf, name in ((0, 'baseline'), (1, 'BF')):
            seeds = sorted(int(x) for x in low[low.bf == bf].seed)
            if seeds:
                total = int((group.bf == bf).sum())
                parts.append(f'{name} seed{"s" if len(seeds) > 1 else ""} {", ".join(map(str, seeds))} '
                             f'({len(seeds)} of {total})')
        out.append(f'{detector}: ' + ', '.join(parts))
    return out


def render_table(df, paper, scale: str, banner=None) -> str:
    """Markdown: measured mean ± std over seeds, the paired BF - baseline difference with its 95% interval,
    and the paper's numbers (with their source) for the same detector."""
    lines = []
    if banner:
        lines += [f'> **{banner}**', '']
    lines += [f'**Detection, {scale} scale**', '',
              'Measured: mean ± standard deviation over seeds (AP points). Δ: BatchFormerV2 − baseline, paired by '
              'seed, with a 95% t interval. Paper: COCO val2017, ResNet-50, as published (source below).', '',
              '| detector | seeds | baseline AP | +BF AP | Δ AP [95% CI] | Δ AP50 | Δ AP75 | baseline AP50 | +BF AP50 '
              '| paper baseline AP | paper +BF AP | paper Δ AP |',
              '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for e in summarise(df):
        pb, pf, pdiff = paper_numbers(paper, e['detector'])
        lines.append(
            f"| {e['detector']} | {e['n_base']}/{e['n_bf']} | {_fmt(e['AP_base_mean'], e['AP_base_std'])} | "
            f"{_fmt(e['AP_bf_mean'], e['AP_bf_std'])} | {_fmt_diff(e['AP_diff'], e['AP_diff_ci'])} | "
            f"{_fmt_diff(e['AP50_diff'], math.nan).replace(' (one seed)', '')} | "
            f"{_fmt_diff(e['AP75_diff'], math.nan).replace(' (one seed)', '')} | "
            f"{_fmt(e['AP50_base_mean'], e['AP50_base_std'])} | {_fmt(e['AP50_bf_mean'], e['AP50_bf_std'])} | "
            f'{_fmt(pb)} | {_fmt(pf)} | {pdiff} |')
    if paper is not None:
        missing = sorted(set(paper.method) - set(df.detector))
        for method in missing:
            pb, pf, pdiff = paper_numbers(paper, method)
            lines.append(f'| {method} | not run | – | – | – | – | – | – | – | {_fmt(pb)} | {_fmt(pf)} | {pdiff} |')
    not_learned = [e['detector'] for e in summarise(df) if e['AP_base_mean'] < NOT_LEARNED_AP]
    if not_learned:
        lines += ['', f'**Not a measurement of BatchFormerV2:** {", ".join(not_learned)}: the baseline stayed at '
                  f'chance (AP < {NOT_LEARNED_AP:g}) with this config, so its row says only that this detector '
                  'does not learn here in this schedule, not whether BatchFormerV2 helps it.']
    stalled = stalled_runs(df, skip=not_learned)
    if stalled:
        lines += ['', '**Runs at chance** (AP < %g) in rows that otherwise learned; their seeds pull the mean and '
                  'widen the interval: %s.' % (NOT_LEARNED_AP, '; '.join(stalled))]
    if paper is not None:
        sources = sorted(set(paper.source.dropna()))
        lines += ['', 'Paper sources: ' + '; '.join(sources)]
    prov = df[['gpu', 'commit', 'date']].drop_duplicates() if {'gpu', 'commit', 'date'} <= set(df.columns) else None
    if prov is not None:
        lines += ['', 'Measured on: ' + '; '.join(f'{r.gpu}, commit {r.commit}, {r.date}' for r in prov.itertuples())]
    if 'iterations' in df.columns and 'config' in df.columns:
        cfgs = df[['detector', 'bf', 'config', 'iterations']].drop_duplicates()
        lines += ['', 'Configs: ' + '; '.join(f'`{r.config}` ({int(r.iterations)} it)' for r in cfgs.itertuples())]
    lines.append('')
    return '\n'.join(lines)
