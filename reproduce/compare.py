"""Compare a new results CSV of a table with a reference one, run by run, and say which metrics moved.

Usage:
  python reproduce/compare.py NEW.csv REFERENCE.csv [--tol T] [--metrics AP AP50 ...]

Both files are measured-results CSVs of one table (for example results/measured/detection_<scale>.csv: one row
per run, key columns detector, bf, seed; AP metrics in points, 0-100); the table is recognised by its row column
(detection: ``detector``). Rows are matched by their keys (detection: detector, bf, seed). Rows found in only
one file are listed, but are not an error unless no row matches at all.

For every matched run the reference value, the new value and the change (new - reference) of each metric are
printed, one line per run; a metric that moved beyond its tolerance is marked '!!'.

Tolerance (in the metrics' points): by default 2 x the pooled standard deviation over seeds in REFERENCE, per
metric, pooled over the (row, arm) groups (detection: (detector, bf)) that have at least two seeds:
    pooled sd = sqrt( sum_g (n_g - 1) * var_g / sum_g (n_g - 1) )
If REFERENCE has no such group (e.g. one seed per run), pass --tol. --tol T uses T for every metric.
A metric that is empty (NaN) in both files has not moved; empty in exactly one file counts as moved.

Exit status: 0 nothing moved beyond tolerance; 1 some metric of some matched run moved; 2 a missing or
malformed file, files sharing no key, an unknown --metrics name, or no usable tolerance.

Examples:
  python reproduce/compare.py results/measured/detection_mini.csv old/detection_mini.csv
  python reproduce/compare.py new.csv ref.csv --tol 0.5 --metrics AP AP50
"""
from __future__ import annotations

import argparse
import math
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from reproduce.runner.results import ResultsFileError, read_results_csv  # noqa: E402
from reproduce.tables import all_specs  # noqa: E402

MARK = '!!'


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not a number: {text!r}')
    if not value >= 0:
        raise argparse.ArgumentTypeError(f'must be a number >= 0, got {text!r}')
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('new', metavar='NEW.csv', help='the new results')
    parser.add_argument('reference', metavar='REFERENCE.csv', help='the results to compare against')
    parser.add_argument('--tol', type=_nonnegative_float, default=None,
                        help='tolerance in points for every metric (default: 2 x pooled seed sd of REFERENCE)')
    parser.add_argument('--metrics', nargs='+', default=None, metavar='METRIC',
                        help='metrics to compare (default: the table\'s metrics present in both files)')
    return parser.parse_args(argv)


def table_of(path: str):
    """The spec of the table whose results ``path`` holds, recognised by its row, arm and primary metric columns
    (detection's when none matches: reading then names the missing columns)."""
    try:
        with open(path) as f:
            header = f.readline().strip().split(',')
    except OSError:
        header = []
    specs = all_specs()
    return next((spec for spec in specs.values() if {spec.row_column, spec.arm_column, spec.primary} <= set(header)),
                next(iter(specs.values())))


def _read(path: str, spec):
    df = read_results_csv(path, spec, required=spec.key_columns).copy()
    df[spec.row_column] = df[spec.row_column].astype(str)
    return df


def choose_metrics(new, ref, requested, new_path, ref_path, spec):
    known = list(spec.metrics)
    common = [m for m in known if m in new.columns and m in ref.columns]
    if requested is None:
        if not common:
            raise ResultsFileError(f'{new_path} and {ref_path} share no metric column (of {known})')
        return common
    metrics = list(dict.fromkeys(requested))
    for m in metrics:
        if m not in known:
            raise ResultsFileError(f'--metrics {m}: not a metric (choose from {known})')
        for path, df in ((new_path, new), (ref_path, ref)):
            if m not in df.columns:
                raise ResultsFileError(f'--metrics {m}: {path} has no column {m} (has {list(df.columns)})')
    return metrics


def pooled_seed_sd(ref, metric, groups_by):
    """Pooled standard deviation of ``metric`` over seeds within ``groups_by`` groups (row, arm) of at least two
    (non-empty) seeds. Returns (sd, number of groups used, degrees of freedom); sd is NaN when no group."""
    ss, dof, groups = 0.0, 0, 0
    for _, g in ref.groupby(list(groups_by)):
        values = g[metric].dropna()
        n = len(values)
        if n >= 2:
            ss += (n - 1) * float(values.var(ddof=1))
            dof += n - 1
            groups += 1
    return (math.sqrt(ss / dof) if dof else math.nan), groups, dof


def _num(value) -> str:
    return '-' if math.isnan(value) else f'{value:.2f}'


def main(argv=None) -> int:
    args = parse_args(argv)
    spec = table_of(args.new)
    keys = list(spec.key_columns)
    row_col, arm_col = spec.row_column, spec.arm_column
    key_names = ', '.join(keys)
    group_names = f'({row_col}, {arm_col})'

    def key_text(key) -> str:
        row, arm, seed = key
        return f'{row} {arm_col}={arm} seed={seed}'

    try:
        new = _read(args.new, spec)
        ref = _read(args.reference, spec)
        metrics = choose_metrics(new, ref, args.metrics, args.new, args.reference, spec)

        new_keys = set(map(tuple, new[keys].values.tolist()))
        ref_keys = set(map(tuple, ref[keys].values.tolist()))
        matched = sorted(new_keys & ref_keys)
        if not matched:
            raise ResultsFileError(
                f'{args.new} and {args.reference} share no ({key_names}) key '
                f'({len(new_keys)} rows in NEW, e.g. {key_text(sorted(new_keys)[0]) if new_keys else "none"}; '
                f'{len(ref_keys)} in REFERENCE, e.g. '
                f'{key_text(sorted(ref_keys)[0]) if ref_keys else "none"})')

        merged = new.merge(ref, on=keys, suffixes=('_new', '_ref')).sort_values(keys)

        # tolerance per metric
        tol, source = {}, {}
        for m in metrics:
            if args.tol is not None:
                tol[m], source[m] = args.tol, '--tol'
                continue
            sd, groups, dof = pooled_seed_sd(ref, m, (row_col, arm_col))
            if not math.isnan(sd):
                tol[m] = 2 * sd
                source[m] = (f'2 x pooled seed sd {sd:.3f} of REFERENCE '
                             f'({groups} {group_names} groups, {dof} degrees of freedom)')
                continue
            needed = (merged[f'{m}_new'].notna() & merged[f'{m}_ref'].notna()).any()
            if needed:
                raise ResultsFileError(
                    f'{args.reference}: no {group_names} group has two or more seeds with a value for {m}, '
                    f'so there is no seed spread to derive a tolerance from; pass --tol T ({spec.unit})')
            tol[m], source[m] = math.nan, 'not needed: no matched run has a value for it in both files'
    except ResultsFileError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2

    print(f'NEW:       {args.new} ({len(new)} rows)')
    print(f'REFERENCE: {args.reference} ({len(ref)} rows)')
    print(f'matched {len(matched)} runs by ({key_names}); metrics: {" ".join(metrics)}')
    print(f'tolerance ({spec.unit}; |new - ref| above it counts as moved):')
    for m in metrics:
        print(f'  {m:<5} {_num(tol[m]):>6}  {source[m]}')
    for label, only in (('NEW', new_keys - ref_keys), ('REFERENCE', ref_keys - new_keys)):
        if only:
            print(f'only in {label}: ' + ', '.join(key_text(k) for k in sorted(only)))
    print()

    # per-run table: one line per matched run, ref / new / change per metric
    row_w = max(len(row_col), *(len(str(k[0])) for k in matched))
    arm_w = max(len(arm_col), *(len(str(k[1])) for k in matched))
    seed_w = max(len('seed'), *(len(str(k[2])) for k in matched))
    cell_w = 7
    group_w = 3 * cell_w + 2 + len(MARK)
    head1 = f'{"":<{row_w}}  {"":>{arm_w}}  {"":>{seed_w}}'
    head2 = f'{row_col:<{row_w}}  {arm_col:>{arm_w}}  {"seed":>{seed_w}}'
    for m in metrics:
        head1 += ' | ' + f'{m:^{group_w}}'
        head2 += ' | ' + f'{"ref":>{cell_w}} {"new":>{cell_w}} {"change":>{cell_w}}{"":{len(MARK)}}'
    print(head1.rstrip())
    print(head2.rstrip())
    print('-' * len(head2.rstrip()))

    moved = []
    for row in merged.itertuples(index=False):
        row = row._asdict()
        key = (row[row_col], row[arm_col], row['seed'])
        line = f'{key[0]:<{row_w}}  {key[1]:>{arm_w}}  {key[2]:>{seed_w}}'
        for m in metrics:
            r, n = float(row[f'{m}_ref']), float(row[f'{m}_new'])
            if math.isnan(r) and math.isnan(n):
                change, is_moved, why = '', False, ''
            elif math.isnan(r) or math.isnan(n):
                change, is_moved = 'empty', True
                why = f'empty in {"REFERENCE" if math.isnan(r) else "NEW"} only (counts as moved)'
            else:
                d = n - r
                change, is_moved = f'{d:+.2f}', abs(d) > tol[m]
                why = f'{r:.2f} -> {n:.2f} ({d:+.2f}, tolerance {tol[m]:.2f})'
            line += (' | ' + f'{_num(r):>{cell_w}} {_num(n):>{cell_w}} {change:>{cell_w}}'
                     + (MARK if is_moved else ' ' * len(MARK)))
            if is_moved:
                moved.append(f'{key_text(key)} {m}: {why}')
        print(line.rstrip())
    print()
    print(f"{MARK} = moved beyond tolerance; '-' = empty cell (NaN); 'empty' = empty in exactly one file, "
          f'counts as moved')
    if moved:
        print(f'MOVED: {len(moved)} metric value(s) of {len(matched)} matched runs moved beyond tolerance:')
        for text in moved:
            print(f'  {text}')
        return 1
    print(f'OK: no metric of the {len(matched)} matched runs moved beyond tolerance')
    return 0


if __name__ == '__main__':
    sys.exit(main())
