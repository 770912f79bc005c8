"""Compare a new detection-results CSV with a reference one, run by run, and say which AP metrics moved.

Usage:
  python reproduce/compare.py NEW.csv REFERENCE.csv [--tol T] [--metrics AP AP50 ...]

Both files are measured-results CSVs (results/measured/detection_<scale>.csv: one row per run, key columns
detector, bf, seed; AP metrics in points, 0-100). Rows are matched by (detector, bf, seed). Rows found in only
one file are listed, but are not an error unless no row matches at all.

For every matched run the reference value, the new value and the change (new - reference) of each metric are
printed, one line per run; a metric that moved beyond its tolerance is marked '!!'.

Tolerance (AP points): by default 2 x the pooled standard deviation over seeds in REFERENCE, per metric,
pooled over the (detector, bf) groups that have at least two seeds:
    pooled sd = sqrt( sum_g (n_g - 1) * var_g / sum_g (n_g - 1) )
If REFERENCE has no such group (e.g. one seed per run), pass --tol. --tol T uses T for every metric.
A metric that is empty (NaN) in both files has not moved; empty in exactly one file counts as moved.

Exit status: 0 nothing moved beyond tolerance; 1 some metric of some matched run moved; 2 a missing or
malformed file, files sharing no (detector, bf, seed) key, an unknown --metrics name, or no usable tolerance.

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

from reproduce.detection_results import KEY_COLUMNS, METRICS, ResultsFileError, read_results_csv  # noqa: E402

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
                        help='tolerance in AP points for every metric (default: 2 x pooled seed sd of REFERENCE)')
    parser.add_argument('--metrics', nargs='+', default=None, metavar='METRIC',
                        help=f'metrics to compare (default: those of {METRICS} present in both files)')
    return parser.parse_args(argv)


def _read(path: str):
    try:
        df = read_results_csv(path, required=KEY_COLUMNS)
    except ResultsFileError:
        raise
    except (ValueError, TypeError) as e:  # e.g. a bf or seed cell that is not an integer
        raise ResultsFileError(f'{path}: bad key column values ({e})')
    df = df.copy()
    df['detector'] = df['detector'].astype(str)
    return df


def choose_metrics(new, ref, requested, new_path, ref_path):
    common = [m for m in METRICS if m in new.columns and m in ref.columns]
    if requested is None:
        if not common:
            raise ResultsFileError(f'{new_path} and {ref_path} share no metric column (of {METRICS})')
        return common
    metrics = list(dict.fromkeys(requested))
    for m in metrics:
        if m not in METRICS:
            raise ResultsFileError(f'--metrics {m}: not a metric (choose from {METRICS})')
        for path, df in ((new_path, new), (ref_path, ref)):
            if m not in df.columns:
                raise ResultsFileError(f'--metrics {m}: {path} has no column {m} (has {list(df.columns)})')
    return metrics


def pooled_seed_sd(ref, metric):
    """Pooled standard deviation of ``metric`` over seeds within (detector, bf) groups of at least two
    (non-empty) seeds. Returns (sd, number of groups used, degrees of freedom); sd is NaN when no group."""
    ss, dof, groups = 0.0, 0, 0
    for _, g in ref.groupby(['detector', 'bf']):
        values = g[metric].dropna()
        n = len(values)
        if n >= 2:
            ss += (n - 1) * float(values.var(ddof=1))
            dof += n - 1
            groups += 1
    return (math.sqrt(ss / dof) if dof else math.nan), groups, dof


def _key_text(key) -> str:
    detector, bf, seed = key
    return f'{detector} bf={bf} seed={seed}'


def _num(value) -> str:
    return '-' if math.isnan(value) else f'{value:.2f}'


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        new = _read(args.new)
        ref = _read(args.reference)
        metrics = choose_metrics(new, ref, args.metrics, args.new, args.reference)

        new_keys = set(map(tuple, new[KEY_COLUMNS].values.tolist()))
        ref_keys = set(map(tuple, ref[KEY_COLUMNS].values.tolist()))
        matched = sorted(new_keys & ref_keys)
        if not matched:
            raise ResultsFileError(
                f'{args.new} and {args.reference} share no (detector, bf, seed) key '
                f'({len(new_keys)} rows in NEW, e.g. {_key_text(sorted(new_keys)[0]) if new_keys else "none"}; '
                f'{len(ref_keys)} in REFERENCE, e.g. '
                f'{_key_text(sorted(ref_keys)[0]) if ref_keys else "none"})')

        merged = new.merge(ref, on=KEY_COLUMNS, suffixes=('_new', '_ref')).sort_values(KEY_COLUMNS)

        # tolerance per metric
        tol, source = {}, {}
        for m in metrics:
            if args.tol is not None:
                tol[m], source[m] = args.tol, '--tol'
                continue
            sd, groups, dof = pooled_seed_sd(ref, m)
            if not math.isnan(sd):
                tol[m] = 2 * sd
                source[m] = (f'2 x pooled seed sd {sd:.3f} of REFERENCE '
                             f'({groups} (detector, bf) groups, {dof} degrees of freedom)')
                continue
            needed = (merged[f'{m}_new'].notna() & merged[f'{m}_ref'].notna()).any()
            if needed:
                raise ResultsFileError(
                    f'{args.reference}: no (detector, bf) group has two or more seeds with a value for {m}, '
                    f'so there is no seed spread to derive a tolerance from; pass --tol T (AP points)')
            tol[m], source[m] = math.nan, 'not needed: no matched run has a value for it in both files'
    except ResultsFileError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2

    print(f'NEW:       {args.new} ({len(new)} rows)')
    print(f'REFERENCE: {args.reference} ({len(ref)} rows)')
    print(f'matched {len(matched)} runs by (detector, bf, seed); metrics: {" ".join(metrics)}')
    print('tolerance (AP points; |new - ref| above it counts as moved):')
    for m in metrics:
        print(f'  {m:<5} {_num(tol[m]):>6}  {source[m]}')
    for label, keys in (('NEW', new_keys - ref_keys), ('REFERENCE', ref_keys - new_keys)):
        if keys:
            print(f'only in {label}: ' + ', '.join(_key_text(k) for k in sorted(keys)))
    print()

    # per-run table: one line per matched run, ref / new / change per metric
    det_w = max(len('detector'), *(len(str(k[0])) for k in matched))
    seed_w = max(len('seed'), *(len(str(k[2])) for k in matched))
    cell_w = 7
    group_w = 3 * cell_w + 2 + len(MARK)
    head1 = f'{"":<{det_w}}  {"":>2}  {"":>{seed_w}}'
    head2 = f'{"detector":<{det_w}}  {"bf":>2}  {"seed":>{seed_w}}'
    for m in metrics:
        head1 += ' | ' + f'{m:^{group_w}}'
        head2 += ' | ' + f'{"ref":>{cell_w}} {"new":>{cell_w}} {"change":>{cell_w}}{"":{len(MARK)}}'
    print(head1.rstrip())
    print(head2.rstrip())
    print('-' * len(head2.rstrip()))

    moved = []
    for row in merged.itertuples(index=False):
        row = row._asdict()
        key = (row['detector'], row['bf'], row['seed'])
        line = f'{key[0]:<{det_w}}  {key[1]:>2}  {key[2]:>{seed_w}}'
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
                moved.append(f'{_key_text(key)} {m}: {why}')
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
