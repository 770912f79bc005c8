"""The command line every table script shares: train and evaluate a table's runs over seeds, collect, tabulate.

``bash reproduce/table_<name>.sh [options]``; ``--help`` lists the options. Scales (same code, different data and
schedules): ``smoke`` (CPU, minutes, tiny generated canvases: checks the pipeline only; its numbers mean
nothing), ``mini`` (one GPU, the Fashion-MNIST canvas benchmark, several seeds), ``full`` (the paper's configs
and data, torchrun over ``--gpus`` GPUs).

Each run lives in ``<work-root>/<scale>/<row>-<arm>-s<seed>/`` (``<scale>-<dataset id>/`` for data other than
the scale's preset) and is skipped when finished with the same config fingerprint, schedule and dataset (a
``result.json`` there, or a row in the stored CSV), resumed when interrupted, evaluated when it stopped during its
final validation. A table that borrows (``TableSpec.borrow``) takes finished runs of the same configs from another
table's stored CSV instead of training them again. Rows go to ``<results-dir>/measured/<name>_<scale>.csv``, the mmengine json logs to
``<results-dir>/logs/<name>_<scale>/``, the table to ``<results-dir>/tables/<name>_<scale>.md`` and the runs'
training times to ``<results-dir>/tables/<name>_<scale>_time.md``; the paper's numbers are read from the
repository's ``results/paper/``.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import os.path as osp

from mmdet_plugins.utils.provenance import atomic_write_text

from . import data as D
from .execute import command, execute, visible_gpus
from .results import ResultsFileError, columns, read_results_csv, render_table, render_time_table, results_frame
from .runs import Identity, Run, Schedule, artifact_path, copy_logs, read_result, run_state
from .spec import TableSpec

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(spec: TableSpec, argv=None):
    p = argparse.ArgumentParser(prog=f'reproduce/table_{spec.name}.sh', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--scale', choices=list(spec.scales), default=None,
                   help='default: mini where a GPU is present, smoke otherwise')
    p.add_argument('--seeds', type=int, default=None, help='seeds per row and arm (default: ' + ', '.join(
        f'{name} {s.seeds}' for name, s in spec.scales.items()) + ')')
    p.add_argument(f'--{spec.row_option}', dest='rows', nargs='+', choices=list(spec.rows), default=None)
    p.add_argument('--gpus', type=int, default=1, help='GPUs per run (full scale, through torchrun)')
    p.add_argument('--data-root', default=None, help='dataset folder (default: ' + ', '.join(
        f'{name} {s.data_root or "the installed Fashion-MNIST"}' for name, s in spec.scales.items()) + ')')
    p.add_argument('--work-root', default=osp.join(REPO, 'work_dirs', f'table_{spec.name}'))
    p.add_argument('--results-dir', default=osp.join(REPO, 'results'))
    p.add_argument('--parallel', type=int, default=None,
                   help='runs trained at once, each pinned to one GPU, round-robin over --gpu-ids '
                        '(default: one per visible GPU at the mini scale, else 1)')
    p.add_argument('--gpu-ids', nargs='+', default=None, metavar='ID',
                   help='GPUs the runs are spread over (default: CUDA_VISIBLE_DEVICES, or all GPUs)')
    p.add_argument('--only', nargs='+', default=None, metavar='RUN',
                   help='train only these runs, named <row>-<arm>-s<seed> (e.g. ' + '-'.join(
                       [spec.rows[0], spec.arms[-1].tag, 's2']) + '); the table still shows every finished run')
    p.add_argument('--deadline', type=float, default=None,
                   help='seconds from now after which runs checkpoint and stop (resume on the next call)')
    p.add_argument('--min-start-s', type=float, default=90,
                   help='with --deadline: start no run with less left, except an interrupted one whose pace so '
                        'far says it finishes in the time left')
    p.add_argument('--dry-run', action='store_true', help='print the commands, run nothing')
    p.add_argument('--collect-only', action='store_true', help='rebuild CSV and table from the work dirs only')
    p.add_argument('--force', action='store_true', help='retrain runs that already finished')
    args = p.parse_args(argv)
    if args.scale is None:
        import torch
        args.scale = 'mini' if torch.cuda.is_available() else 'smoke'
    scale = spec.scales[args.scale]
    args.seeds = args.seeds or scale.seeds
    args.rows = args.rows or list(scale.rows)
    args.data_root = osp.abspath(args.data_root or D.default_data_root(scale, REPO))
    if args.parallel is None:
        args.parallel = 1
        if args.scale == 'mini' and not args.dry_run and not args.collect_only:
            args.parallel = max(1, len(args.gpu_ids if args.gpu_ids is not None else visible_gpus()))
    if args.seeds < 1 or args.parallel < 1 or args.gpus < 1:
        p.error('--seeds, --parallel and --gpus must be at least 1')
    return args


def load_config(spec: TableSpec, config: str, scale_name: str):
    """A repository config as a run of ``scale_name`` trains it (the scale's overrides applied)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, config))
    overrides = spec.scales[scale_name].overrides
    if overrides:
        overrides(cfg)
    return cfg


def stored_results(spec, csv_path, ident_of, dataset):
    """The stored CSV (or None), and the keys of its rows that count as finished runs of the current configs
    and data. A CSV of runs on another dataset fails with one line (its rows are never replaced)."""
    if not osp.isfile(csv_path):
        return None, set()
    try:
        stored = read_results_csv(csv_path, spec)
    except ResultsFileError as e:
        D.fail(f'{e}; move it away or fix it')
    some_ident = next(iter(ident_of.values()))
    other = [d for d in (stored.dataset if 'dataset' in stored.columns else [None] * len(stored))
             if not some_ident.same_dataset(d)]
    if other:
        shown = next((d for d in other if isinstance(d, str) and d), f'{some_ident.preset} (the scale\'s preset)')
        D.fail(f'{csv_path} holds {len(other)} runs on another dataset, {shown}; these runs use {dataset.id}, '
               f'{dataset.description}: pass --results-dir DIR to keep their results apart')
    keys = set()
    for r in stored.to_dict('records'):
        ident = ident_of.get(r.get('config'))
        if ident and ident.matches(r['config'], r.get('iterations', -1), r.get('config_hash'), r.get('dataset'),
                                   r['config']):
            keys.add((r[spec.row_column], int(r[spec.arm_column]), int(r['seed'])))
    return stored, keys


def borrowed_results(spec, runs, scale_name, results_dir, ident_of, have):
    """Rows of another table's stored CSV that count as runs of this one (``spec.borrow``): same row, seed and
    mapped arm, and the run's config, schedule, fingerprint and data. ``have``: keys already finished here (not
    borrowed). Returns ``{run key: row}``; each row carries ``borrowed_from`` (the other CSV's stem)."""
    if spec.borrow is None:
        return {}
    import importlib
    other = importlib.import_module(f'reproduce.tables.{spec.borrow.table}').SPEC
    stem = f'{other.name}_{scale_name}'
    path = osp.join(results_dir, 'measured', f'{stem}.csv')
    if not osp.isfile(path):
        return {}
    try:
        df = read_results_csv(path, other)
    except ResultsFileError as e:
        D.fail(f'{e} (the {spec.name} table borrows runs from it); move it away or fix it')
    index = {(r[other.row_column], int(r[other.arm_column]), int(r['seed'])): r for r in df.to_dict('records')}
    keep = [c for c in columns(spec) if c not in spec.key_columns]
    out = {}
    for run in runs:
        if run.key in have or run.arm.value not in spec.borrow.arms:
            continue
        r = index.get((run.row, spec.borrow.arms[run.arm.value], run.seed))
        if r is None or not ident_of[run.config].matches(r.get('config'), r.get('iterations', -1),
                                                         r.get('config_hash'), r.get('dataset'), run.config):
            continue
        row = {spec.row_column: run.row, spec.arm_column: run.arm.value, 'seed': run.seed}
        row.update({c: r[c] for c in keep if c in r})
        row['borrowed_from'] = stem
        out[run.key] = row
    return out


def main(spec: TableSpec, argv=None) -> int:
    args = parse_args(spec, argv)
    scale = spec.scales[args.scale]
    if scale.banner:
        print('=' * 100 + '\n' + scale.banner + '\n' + '=' * 100, flush=True)

    # the runs, baseline and other arms of a seed side by side, so that partial sittings pair up
    runs = [Run(row, arm, seed, spec.config(row, arm, args.scale), '')
            for row in args.rows for seed in range(args.seeds) for arm in spec.arms_of(row)
            if scale.arms is None or arm.value in scale.arms]
    if args.only:
        by_name = {run.name: run for run in runs}
        unknown = [name for name in args.only if name not in by_name]
        if unknown:
            D.fail(f'--only {unknown}: no such run at --scale {args.scale} with --seeds {args.seeds} and '
                   f'--{spec.row_option} {" ".join(args.rows)}; valid names: {" ".join(by_name)}')
        train_runs = [by_name[name] for name in dict.fromkeys(args.only)]  # in the order given
    else:
        train_runs = runs
    if args.force:  # (a forced run trains its first stage again: the runs that start from it must train again too)
        named = {run.name for run in train_runs}
        for run in train_runs:
            sharers = [other.name for other in runs if other.key[::2] == run.key[::2]
                       and other.arm.first_stage_from == run.arm.value and other.name not in named]
            if sharers:
                D.fail(f'--force {run.name} would train again the first stage that {" ".join(sharers)} started '
                       f'from: force those too (--only {run.name} {" ".join(sharers)})')
    configs = {}
    for run in runs:
        if run.config not in configs:
            configs[run.config] = load_config(spec, run.config, args.scale)
    schedule_of = {config: Schedule.of(cfg) for config, cfg in configs.items()}
    pre_config_of = {}  # a run's config -> the config of its first stage (TableSpec.pre_stage)
    if spec.pre_stage is not None:
        for run in runs:
            pre = spec.pre_stage(run.row, run.arm, args.scale)
            owner = spec.first_stage_owner(run.arm)
            if owner is not run.arm and spec.pre_stage(run.row, owner, args.scale) != pre:
                D.fail(f'{spec.name}: arm {run.arm.tag!r} starts from the first stage of arm {owner.tag!r} but names '
                       f'another first-stage config ({pre}, not {spec.pre_stage(run.row, owner, args.scale)})')
            if pre_config_of.setdefault(run.config, pre) != pre:
                D.fail(f'{spec.name}: {run.config} follows two first stages ({pre_config_of[run.config]}, {pre}); '
                       'give each its own config')
            if pre not in configs:
                configs[pre] = load_config(spec, pre, args.scale)
                schedule_of[pre] = Schedule.of(configs[pre])
        for config, pre in pre_config_of.items():  # (a run's fingerprint covers both stages)
            sch = schedule_of[config]
            schedule_of[config] = Schedule(sch.length, sch.unit, hashlib.sha1(
                (sch.fingerprint + schedule_of[pre].fingerprint).encode()).hexdigest()[:12])
    if args.deadline and any(sch.unit != 'iter' for sch in schedule_of.values()):
        D.fail('--deadline needs iteration-based configs (the mini and smoke scales); the full scale trains by '
               'epochs: resume an interrupted run with tools/train.py --resume')

    # the data: what --data-root holds decides the runs' dataset identity (and whether to make it)
    probe = copy.deepcopy(next(iter(configs.values())))
    D.set_data_root(probe, args.data_root)
    dataset = D.inspect_dataset(args.data_root, scale, args.scale, probe)
    preset = D.preset_id(scale)
    ident_of = {config: Identity(sch, dataset.id, preset) for config, sch in schedule_of.items()}
    folder = args.scale if dataset.preset or preset is None else f'{args.scale}-{dataset.id}'
    for run in runs:
        run.work_dir = osp.join(args.work_root, folder, run.name)
    if not dataset.preset and preset is not None:
        print(f'data: {dataset.description} ({dataset.id}); work directories under '
              f'{osp.join(args.work_root, folder)}', flush=True)

    stem = f'{spec.name}_{args.scale}'
    csv_path = osp.join(args.results_dir, 'measured', f'{stem}.csv')
    logs_dir = osp.join(args.results_dir, 'logs', stem)
    table_path = osp.join(args.results_dir, 'tables', f'{stem}.md')
    time_path = osp.join(args.results_dir, 'tables', f'{stem}_time.md')
    stored, stored_keys = stored_results(spec, csv_path, ident_of, dataset)
    # (a run trained here, or forced to train, is never borrowed)
    own = stored_keys | {run.key for run in runs if read_result(run, ident_of[run.config]) is not None}
    if args.force:
        own |= {run.key for run in train_runs}
    borrowed = borrowed_results(spec, runs, args.scale, args.results_dir, ident_of, own)
    for run in runs:
        if run.key in borrowed:
            print(f'{run.name}: taken from {borrowed[run.key]["borrowed_from"]}.csv (the same config, schedule and '
                  'data)')
    stored_keys = stored_keys | set(borrowed)
    try:  # (read before training: a broken paper CSV should not wait for the runs)
        paper = read_results_csv(osp.join(REPO, spec.paper_csv), spec, paper=True) if spec.paper_csv else None
    except ResultsFileError as e:
        D.fail(str(e))

    states = {run.name: run_state(run, stored_keys, args.force, ident_of[run.config]) for run in train_runs}
    foreign = [run for run in train_runs if states[run.name] == 'foreign']
    if foreign:
        D.fail(f'{foreign[0].work_dir} holds a run started on another dataset than this call\'s '
               f'({dataset.id}); it is left as it is: pass --work-root DIR for these runs, or move it away')
    if args.dry_run:
        for i, run in enumerate(train_runs, 1):
            state = states[run.name]
            print(f'[{i}/{len(train_runs)}] {run.name} ({state}): '
                  f'{" ".join(command(run, state, 1 if scale.one_run_per_gpu else args.gpus))}')
        return 0

    D.check_writable(args.results_dir, '--results-dir')
    new_rows, failed = [], []
    if not args.collect_only:
        D.check_writable(args.work_root, '--work-root')
        if dataset.to_make:
            D.make_canvases(dataset, scale)
        if scale.pretrain_backbones:
            D.ensure_pretrained_backbones(sorted({run.config for run in train_runs}), REPO)

        def build_config(run):  # (also a first stage's run: its config is among configs)
            cfg = copy.deepcopy(configs[run.config])
            cfg.work_dir = run.work_dir
            cfg.randomness = dict(seed=run.seed)
            D.set_data_root(cfg, args.data_root)
            cfg.visualizer.name = run.name  # one visualizer per run name (mmengine keeps them per process)
            return cfg

        new_rows, failed = execute(train_runs, args, scale, spec, stored_keys, ident_of, build_config, logs_dir,
                                   gpu_name(scale), pre_config_of)

    # rows from work dirs (also runs finished in earlier calls) + stored rows not superseded
    rows = {}
    if stored is not None:
        for r in stored.to_dict('records'):
            rows[(r[spec.row_column], int(r[spec.arm_column]), int(r['seed']))] = r
    rows.update(borrowed)
    for run in runs:
        result = read_result(run, ident_of[run.config])
        if result is not None:
            rows[run.key] = result
            stored_files = [f'{run.name}.json'] + [f'{run.name}.{a}' for a in spec.artifacts if artifact_path(run, a)]
            if not all(osp.isfile(osp.join(logs_dir, f)) for f in stored_files):  # (results replaced since it ended)
                copy_logs(run, spec, logs_dir)
    for r in new_rows:
        rows[(r[spec.row_column], r[spec.arm_column], r['seed'])] = r
    if not rows:
        print('no finished runs yet: nothing to tabulate')
        return 1 if failed else 0
    df = results_frame(list(rows.values()), spec)
    atomic_write_text(csv_path, df.to_csv(index=False))
    table = (spec.render or render_table)(df, paper, spec, scale=args.scale, banner=scale.banner)
    atomic_write_text(table_path, table)
    written = [table_path]
    if 'wall_s' in df.columns:
        atomic_write_text(time_path, render_time_table(df, spec, args.scale))
        written.append(time_path)
    print(table)
    print(f'wrote {csv_path} ({len(df)} rows), ' + ' and '.join(written))
    if failed:
        print(f'FAILED runs: {failed}')
        return 1
    return 0


def gpu_name(scale) -> str:
    from mmdet_plugins.utils.provenance import hardware
    import torch
    if not scale.cpu_only and torch.cuda.is_available():
        return hardware('cuda:0')
    return hardware()
