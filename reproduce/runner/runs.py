"""One run of a table: its identity (config fingerprint and dataset), its state, its final metrics and row.

Each run lives in its own work directory: the exact config it trains (``run_config.py``), the fingerprint and
dataset it was started with, mmengine's logs and checkpoints, ``progress.json`` (wall time and sittings) and,
once finished, ``result.json`` (its CSV row).
"""
from __future__ import annotations

import glob
import hashlib
import itertools
import json
import os.path as osp
from dataclasses import dataclass

from mmdet_plugins.utils.provenance import atomic_write_text, git_commit, today

from .spec import Arm, TableSpec

FINGERPRINT_KEYS = ('model', 'optim_wrapper', 'param_scheduler', 'train_cfg')


@dataclass
class Run:
    row: str
    arm: Arm
    seed: int
    config: str  # repository-relative
    work_dir: str

    @property
    def name(self) -> str:
        return f'{self.row}-{self.arm.tag}-s{self.seed}'

    @property
    def key(self):
        return (self.row, self.arm.value, self.seed)


# custom hooks that change nothing a run trains or measures (they write files for the figures)
RECORDING_HOOKS = ('PanopticPredictionsHook', )


def config_fingerprint(cfg) -> str:
    """12 hex digits identifying what a run trains: the model, optimiser, schedule and batch size of ``cfg``,
    and its custom hooks where it has any (a hook can change the training: ``TraceableDeformAttnHook``'s fp32
    backward, ``CompileLayersHook``). A stored result or checkpoint made under another fingerprint is stale (the
    config file changed). (Configs without custom hooks keep the fingerprint they had before hooks counted.)
    The data is not part of it: a run's dataset is recorded beside it (``dataset``). Hooks that only record what
    the model predicts (``RECORDING_HOOKS``) do not count."""
    parts = {k: cfg.get(k) for k in FINGERPRINT_KEYS}
    parts['batch_size'] = cfg.train_dataloader.get('batch_size') if cfg.get('train_dataloader') else None
    hooks = [h for h in cfg.get('custom_hooks') or [] if h.get('type') not in RECORDING_HOOKS]
    if hooks:
        parts['custom_hooks'] = hooks
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass
class Schedule:
    length: int  # iterations, or epochs for epoch-based configs
    unit: str  # 'iter' or 'epoch'
    fingerprint: str = ''  # config_fingerprint of the config (with the scale's overrides)

    @classmethod
    def of(cls, cfg):
        fingerprint = config_fingerprint(cfg)
        if cfg.train_cfg.get('max_iters'):
            return cls(int(cfg.train_cfg.max_iters), 'iter', fingerprint)
        return cls(int(cfg.train_cfg.max_epochs), 'epoch', fingerprint)


@dataclass
class Identity:
    """What a finished result must match to count for a run: its config's schedule and fingerprint, and the
    dataset. ``preset``: the id of the scale's preset data, which results recorded without a dataset (made
    before the column existed) were trained on."""
    schedule: Schedule
    dataset: str
    preset: str = None

    def same_dataset(self, recorded) -> bool:
        if not isinstance(recorded, str) or not recorded:
            recorded = self.preset
        return recorded == self.dataset

    def matches(self, config: str, iterations, config_hash, dataset, run_config: str) -> bool:
        try:
            if config != run_config or int(iterations) != self.schedule.length:
                return False
        except (TypeError, ValueError):  # an empty or malformed iterations cell
            return False
        if isinstance(config_hash, str) and config_hash and self.schedule.fingerprint \
                and config_hash != self.schedule.fingerprint:
            return False  # the config file changed since (rows without a fingerprint count as current)
        return self.same_dataset(dataset)


def _read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ''


def read_result(run: Run, ident: Identity):
    """The run's ``result.json`` if it belongs to the current config, schedule and dataset, else None."""
    try:
        with open(osp.join(run.work_dir, 'result.json')) as f:
            row = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(row, dict) or not ident.matches(row.get('config'), row.get('iterations', -1),
                                                      row.get('config_hash'), row.get('dataset'), run.config):
        return None
    return row


def last_checkpoint(run: Run):
    return _read_text(osp.join(run.work_dir, 'last_checkpoint')) or None


def run_state(run: Run, stored_keys, force: bool, ident: Identity) -> str:
    """What to do with a run:

    - ``finished``: a result for this config, schedule and dataset (work dir or stored CSV row); skipped. With
      ``--force`` a finished run is ``redo`` (its work dir is cleared and it trains anew);
    - ``evaluate``: trained to the end but its final validation is missing (stopped during it): evaluate;
    - ``interrupted``: has a checkpoint and no result: resume (also under ``--force``, so that a forced
      rerun that a deadline interrupted continues on the next call instead of starting again);
    - ``new``: train from scratch.

    A work directory started under another config fingerprint is ``redo`` (the config file changed); one
    started on another dataset is ``foreign``: the runner refuses to touch it (its runs belong to that data).
    """
    started_on = _read_text(osp.join(run.work_dir, 'dataset.txt'))
    if started_on and not ident.same_dataset(started_on):
        return 'foreign'
    started_with = _read_text(osp.join(run.work_dir, 'fingerprint.txt'))
    if started_with and ident.schedule.fingerprint and started_with != ident.schedule.fingerprint:
        return 'redo'
    if read_result(run, ident) is not None:
        return 'redo' if force else 'finished'
    ckpt = last_checkpoint(run)
    if ckpt:
        sch = ident.schedule
        final = f'iter_{sch.length}.pth' if sch.unit == 'iter' else f'epoch_{sch.length}.pth'
        return 'evaluate' if osp.basename(ckpt) == final else 'interrupted'
    if run.key in stored_keys and not force:
        return 'finished'
    return 'new'


def mark_started(run: Run, ident: Identity) -> None:
    atomic_write_text(osp.join(run.work_dir, 'fingerprint.txt'), ident.schedule.fingerprint)
    atomic_write_text(osp.join(run.work_dir, 'dataset.txt'), ident.dataset)


def _json_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def final_metrics(run: Run, schedule: Schedule, primary_key: str):
    """The validation metrics logged after the last training iteration (or epoch), from the run's mmengine
    json logs (mmengine logs an iteration-based validation with step 0, so the order of the lines decides),
    or from a validation-only pass (``final_eval/``). Returns (metrics or None, the training logs)."""
    logs = sorted(glob.glob(osp.join(run.work_dir, '*', 'vis_data', 'scalars.json')))
    key = 'iter' if schedule.unit == 'iter' else 'epoch'
    for path in reversed(logs):
        rows = _json_lines(path)
        last_train = max((i for i, r in enumerate(rows) if r.get(key) == schedule.length and 'loss' in r),
                         default=None)
        if last_train is None:
            continue
        evals = [r for r in rows[last_train + 1:] if primary_key in r]
        if evals:
            return evals[-1], logs
    for path in sorted(glob.glob(osp.join(run.work_dir, 'final_eval', '*', '*.json')), reverse=True):
        evals = [r for r in _json_lines(path) if primary_key in r]
        if evals:
            return evals[-1], logs
    return None, logs


def read_progress(run: Run):
    try:
        with open(osp.join(run.work_dir, 'progress.json')) as f:
            return json.load(f)
    except (OSError, ValueError):
        return dict(wall_s=0.0, sittings=0)


def seconds_to_finish(run: Run, schedule: Schedule, startup_s: float = 30.0):
    """An interrupted run's time to its last iteration at the pace of its sittings so far (their wall time over the
    iterations they reached, start-ups and validations included, so an overestimate) plus ``startup_s``; None when
    the run has no checkpoint of an iteration-based schedule or no recorded time."""
    ckpt = last_checkpoint(run)
    name = osp.basename(ckpt or '')
    if schedule.unit != 'iter' or not (name.startswith('iter_') and name.endswith('.pth')):
        return None
    try:
        done = int(name[len('iter_'):-len('.pth')])
    except ValueError:
        return None
    wall = read_progress(run)['wall_s']
    if done < 1 or wall <= 0:
        return None
    return max(schedule.length - done, 0) * wall / done + startup_s


def add_progress(run: Run, seconds: float):
    p = read_progress(run)
    p['wall_s'] += seconds
    p['sittings'] += 1
    atomic_write_text(osp.join(run.work_dir, 'progress.json'), json.dumps(p))


STAGE1_DIR = 'stage1'  # a run's first stage (TableSpec.pre_stage) trains in <work_dir>/stage1/


def stage1_run(run: Run, config: str, spec: TableSpec = None) -> Run:
    """The first stage of ``run``: ``<work_dir>/stage1/`` of the run that trains it, the run itself or, for an arm
    that shares the first stage of another (``Arm.first_stage_from``, looked up in ``spec``), that arm's run of the
    same row and seed, whose work directory is beside this run's. Its name is that run's."""
    owner = run
    if spec is not None and run.arm.first_stage_from is not None:
        arm = spec.first_stage_owner(run.arm)
        owner = Run(run.row, arm, run.seed, '', '')
        owner.work_dir = osp.join(osp.dirname(run.work_dir), owner.name)
    return Run(owner.row, owner.arm, owner.seed, config, osp.join(owner.work_dir, STAGE1_DIR))


def final_checkpoint(run: Run, schedule: Schedule):
    """The checkpoint of the run's last iteration (or epoch) when it has one, else None."""
    ckpt = last_checkpoint(run)
    final = f'iter_{schedule.length}.pth' if schedule.unit == 'iter' else f'epoch_{schedule.length}.pth'
    return ckpt if ckpt and osp.basename(ckpt) == final and osp.isfile(ckpt) else None


def artifact_path(run: Run, name: str):
    """Where the run's artifact ``name`` is: a validation-only pass of the last checkpoint (``final_eval/``) writes
    its own, the newer one; else the run's work directory. None when neither has it."""
    for path in (osp.join(run.work_dir, 'final_eval', name), osp.join(run.work_dir, name)):
        if osp.isfile(path):
            return path
    return None


def merge_sittings(paths) -> list:
    """The json log lines of one training's sittings (``paths``: their scalars.json, oldest first), each sitting cut
    before its first training row at or past the next sitting's first training iteration: the lines a sitting
    logged after the checkpoint that the next one resumed from (or all of it, when the next one started again from
    scratch) were trained again and are left out."""
    def train_iter(line):
        try:
            row = json.loads(line)
        except ValueError:
            return None
        return row.get('iter') if isinstance(row, dict) and 'loss' in row else None

    sittings = []  # per sitting: its lines with their training iteration (None for other rows)
    for path in paths:
        with open(path) as f:
            sittings.append([(line, train_iter(line)) for line in f if line.strip()])
    firsts = [next((it for _, it in rows if it is not None), None) for rows in sittings]
    merged = []
    for k, rows in enumerate(sittings):
        first_next = next((it for it in firsts[k + 1:] if it is not None), None)
        if first_next is not None:
            rows = list(itertools.takewhile(lambda r: (r[1] or -1) < first_next, rows))
        merged += [line for line, _ in rows]
    return merged


def copy_logs(run: Run, spec: TableSpec, logs_dir: str, logs=None):
    """Write the run's json logs (every sitting's; its first stage's first, also one it shares with another arm's
    run) to ``<logs_dir>/<run>.json`` and its artifacts beside them; ``logs``: the run's own sittings'
    scalars.json (found when None). A run with no log lines leaves a stored log as it is."""
    if logs is None:
        logs = sorted(glob.glob(osp.join(run.work_dir, '*', 'vis_data', 'scalars.json')))
    if spec.pre_stage is not None:
        first = stage1_run(run, '', spec).work_dir
        stage1 = sorted(glob.glob(osp.join(first, '*', 'vis_data', 'scalars.json')))
        merged = merge_sittings(stage1) + merge_sittings(logs)
    else:
        merged = merge_sittings(logs)
    if merged:  # (never replace a stored log with nothing)
        atomic_write_text(osp.join(logs_dir, f'{run.name}.json'), ''.join(merged))
    for name in spec.artifacts:  # files the run wrote beside its logs (e.g. grad_per_class.json)
        path = artifact_path(run, name)
        if path:
            with open(path) as f:
                atomic_write_text(osp.join(logs_dir, f'{run.name}.{name}'), f.read())


def finish_run(run: Run, spec: TableSpec, ident: Identity, scale: str, logs_dir: str, hardware_name: str):
    """Copy the json logs, then write result.json (the row), once the run's last validation is logged."""
    metrics, logs = final_metrics(run, ident.schedule, spec.metrics[spec.primary])
    if metrics is None:
        return None
    progress = read_progress(run)
    if osp.isdir(osp.join(run.work_dir, STAGE1_DIR)):  # its own first stage's time counts too (not a shared one's)
        first = read_progress(stage1_run(run, ''))
        progress = dict(wall_s=progress['wall_s'] + first['wall_s'], sittings=progress['sittings'] + first['sittings'])
    values = {}
    for column, key in spec.metrics.items():
        value = float(metrics.get(key, -1))
        values[column] = round(spec.metric_scale * value, 2) if value == value and value >= 0 else float('nan')
    row = {spec.row_column: run.row, spec.arm_column: run.arm.value, 'seed': run.seed, **values,
           'iterations': ident.schedule.length, 'wall_s': round(progress['wall_s'], 1),
           'sittings': progress['sittings'], 'gpu': hardware_name, 'commit': git_commit(), 'date': today(),
           'config': run.config, 'scale': scale, 'config_hash': ident.schedule.fingerprint,
           'dataset': ident.dataset}
    if spec.pre_stage is not None:
        row['stage1_config'] = spec.pre_stage(run.row, run.arm, scale)
        row['stage1_run'] = stage1_run(run, '', spec).name  # (another arm's run where the arm shares its stage 1)
    copy_logs(run, spec, logs_dir, logs)
    atomic_write_text(osp.join(run.work_dir, 'result.json'), json.dumps(row, indent=1))
    return row
