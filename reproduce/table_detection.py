"""Regenerate the paper's detection table: train/evaluate baseline and BatchFormerV2 runs, collect, tabulate.

Usually called through ``bash reproduce/table_detection.sh [options]``; ``--help`` lists the options.

Scales (same code, different data and schedules):
  smoke  CPU, minutes, tiny generated canvases: checks the pipeline only; its numbers mean nothing.
  mini   one GPU, the Fashion-MNIST canvas benchmark (configs/mini/), several seeds.
  full   the paper's COCO configs (configs/<detector>/), torchrun over --gpus GPUs; needs COCO at --data-root.

Each run lives in ``work_dirs/table_detection/<scale>/<detector>-<base|bf>-s<seed>/``: the exact config it ran
(``run_config.py``), mmengine's logs, checkpoints and, once finished, ``result.json``. A finished run (a row in
the stored CSV with the same config and iterations, or a ``result.json``) is skipped; an interrupted one
(a ``last_checkpoint`` and no result) is resumed. Each row and work directory records the config's fingerprint
(a hash of its model, optimiser, schedule and batch size, column ``config_hash``): when the config file has
changed since, the stored result is stale and the run trains anew (rows without a fingerprint, made before it
existed, count as current). Rows go to ``results/measured/detection_<scale>.csv``, the
mmengine json logs to ``results/logs/detection_<scale>/``, the table to ``results/tables/detection_<scale>.md``.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmdet_plugins.provenance import atomic_write_text, git_commit, today  # noqa: E402
from mmdet_plugins.zoo import DETECTORS, config_path  # noqa: E402
from reproduce.detection_results import read_results_csv, render_table, results_frame  # noqa: E402

DEFAULT_DETECTORS = {'smoke': ['DETR'], 'mini': ['DETR', 'DeformableDETR', 'ConditionalDETR', 'SMCADETR'],
                     'full': ['DETR', 'DeformableDETR', 'ConditionalDETR', 'SMCADETR']}
DEFAULT_SEEDS = {'smoke': 2, 'mini': 3, 'full': 1}
DEFAULT_DATA_ROOT = {'smoke': 'data/fashion_canvas_smoke', 'mini': 'data/fashion_canvas', 'full': 'data/coco'}
METRIC_KEYS = {'AP': 'coco/bbox_mAP', 'AP50': 'coco/bbox_mAP_50', 'AP75': 'coco/bbox_mAP_75',
               'APs': 'coco/bbox_mAP_s', 'APm': 'coco/bbox_mAP_m', 'APl': 'coco/bbox_mAP_l'}
SMOKE_BANNER = ('SMOKE SCALE: tiny data, a few CPU iterations. These numbers only check that the pipeline runs '
                '(train, evaluate, CSV, table); they say nothing about BatchFormerV2.')


@dataclass
class Run:
    detector: str
    bf: int
    seed: int
    config: str
    work_dir: str

    @property
    def name(self) -> str:
        return f'{self.detector}-{"bf" if self.bf else "base"}-s{self.seed}'

    @property
    def key(self):
        return (self.detector, self.bf, self.seed)


# ---------------------------------------------------------------------------------------------- configs
def set_data_root(cfg, data_root: str):
    """Point every dataloader's dataset (through wrappers) and the evaluators' annotation files at ``data_root``."""
    data_root = osp.abspath(data_root).rstrip('/') + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        while 'dataset' in dataset:  # wrappers (RepeatDataset, ...)
            dataset = dataset.dataset
        dataset.data_root = data_root
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator].ann_file = data_root + 'annotations/' + osp.basename(cfg[evaluator].ann_file)


def build_run_config(run: Run, scale: str, data_root: str, schedule):
    """The config a run trains with: the repository's config plus the scale's data root and seed. (--deadline
    reaches the run as BF_DEADLINE, for which tools/train.py adds the stopping hook.)"""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, run.config))
    cfg.work_dir = run.work_dir
    cfg.randomness = dict(seed=run.seed)
    set_data_root(cfg, data_root)
    if scale == 'smoke':
        apply_smoke_overrides(cfg)
    cfg.visualizer.name = run.name  # one visualizer per run name (mmengine keeps them per process)
    return cfg


def apply_smoke_overrides(cfg):
    """Tiny and CPU-friendly: 128 px canvases, batch 2, no workers, 4 iterations, plain fp32 optimiser."""
    size = 128
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].batch_size = 2
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
        for step in cfg[loader].dataset.pipeline:
            if step['type'] == 'Resize':
                step['scale'] = (size, size)
    iters = 4
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.param_scheduler = [dict(type='MultiStepLR', begin=0, end=iters, by_epoch=False, milestones=[3], gamma=0.1)]
    cfg.optim_wrapper.type = 'OptimWrapper'
    cfg.optim_wrapper.pop('loss_scale', None)
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    cfg.model.num_queries = 20
    cfg.model.test_cfg.max_per_img = 20
    cfg.model.backbone.init_cfg = None  # no pretrained backbone (its pretraining is a GPU job)
    if 'dn_cfg' in cfg.model:
        cfg.model.dn_cfg.group_cfg = dict(dynamic=True, num_groups=None, num_dn_queries=10)


# ---------------------------------------------------------------------------------------------- runs
FINGERPRINT_KEYS = ('model', 'optim_wrapper', 'param_scheduler', 'train_cfg')


def config_fingerprint(cfg) -> str:
    """12 hex digits identifying what a run trains: the model, optimiser, schedule and batch size of ``cfg``,
    and its custom hooks where it has any (a hook can change the training: ``TraceableDeformAttnHook``'s fp32
    backward, ``CompileLayersHook``). A stored result or checkpoint made under another fingerprint is stale (the
    config file changed). (Configs without custom hooks keep the fingerprint they had before hooks counted.)"""
    import hashlib
    parts = {k: cfg.get(k) for k in FINGERPRINT_KEYS}
    parts['batch_size'] = cfg.train_dataloader.get('batch_size') if cfg.get('train_dataloader') else None
    if cfg.get('custom_hooks'):
        parts['custom_hooks'] = cfg.custom_hooks
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


def work_dir_fingerprint(run) -> str:
    """The fingerprint the run's work directory was started with ('' when unknown)."""
    try:
        with open(osp.join(run.work_dir, 'fingerprint.txt')) as f:
            return f.read().strip()
    except OSError:
        return ''


def read_result(run: Run, schedule: Schedule):
    """The run's result.json if it belongs to the current config and schedule, else None (stale or absent)."""
    try:
        with open(osp.join(run.work_dir, 'result.json')) as f:
            row = json.load(f)
    except (OSError, ValueError):
        return None
    if row.get('config') != run.config or int(row.get('iterations', -1)) != schedule.length:
        return None
    if row.get('config_hash') and schedule.fingerprint and row['config_hash'] != schedule.fingerprint:
        return None  # the config file changed since
    return row


def last_checkpoint(run: Run):
    try:
        with open(osp.join(run.work_dir, 'last_checkpoint')) as f:
            return f.read().strip()
    except OSError:
        return None


def run_state(run: Run, stored_keys, force: bool, schedule: Schedule) -> str:
    """What to do with a run:

    - ``finished``: a result for this config and schedule (work dir or stored CSV row); skipped. With
      ``--force`` a finished run is ``redo`` (its work dir is cleared and it trains anew);
    - ``evaluate``: trained to the end but its final validation is missing (stopped during it): evaluate;
    - ``interrupted``: has a checkpoint and no result: resume (also under ``--force``, so that a forced
      rerun that a deadline interrupted continues on the next call instead of starting again);
    - ``new``: train from scratch.

    A work directory started under another config fingerprint (the config file changed since) is ``redo``.
    """
    started_with = work_dir_fingerprint(run)
    if started_with and schedule.fingerprint and started_with != schedule.fingerprint:
        return 'redo'
    if read_result(run, schedule) is not None:
        return 'redo' if force else 'finished'
    ckpt = last_checkpoint(run)
    if ckpt:
        final = f'iter_{schedule.length}.pth' if schedule.unit == 'iter' else f'epoch_{schedule.length}.pth'
        return 'evaluate' if osp.basename(ckpt) == final else 'interrupted'
    if run.key in stored_keys and not force:
        return 'finished'
    return 'new'


def train_command(run: Run, scale: str, gpus: int, resume: bool):
    cfg_file = osp.join(run.work_dir, 'run_config.py')
    if scale == 'full' and gpus > 1:
        cmd = ['bash', osp.join(REPO, 'tools/dist_train.sh'), cfg_file, str(gpus)]
    else:
        cmd = [sys.executable, osp.join(REPO, 'tools/train.py'), cfg_file]
    cmd += ['--work-dir', run.work_dir]
    if resume:
        cmd.append('--resume')
    return cmd


def evaluate_command(run: Run):
    """Validation only, for a run whose last checkpoint is its final one."""
    return [sys.executable, osp.join(REPO, 'tools/test.py'), osp.join(run.work_dir, 'run_config.py'),
            last_checkpoint(run), '--work-dir', osp.join(run.work_dir, 'final_eval')]


def _json_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def final_metrics(run: Run, schedule: Schedule):
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
        evals = [r for r in rows[last_train + 1:] if METRIC_KEYS['AP'] in r]
        if evals:
            return evals[-1], logs
    for path in sorted(glob.glob(osp.join(run.work_dir, 'final_eval', '*', '*.json')), reverse=True):
        evals = [r for r in _json_lines(path) if METRIC_KEYS['AP'] in r]
        if evals:
            return evals[-1], logs
    return None, logs


def gpu_name(scale: str) -> str:
    from mmdet_plugins.provenance import hardware
    import torch
    if scale != 'smoke' and torch.cuda.is_available():
        return hardware('cuda:0')
    return hardware()


def finish_run(run: Run, schedule: Schedule, scale: str, logs_dir: str, hardware_name: str):
    """Copy the json logs, then write result.json (the row), once the run's last validation is logged."""
    metrics, logs = final_metrics(run, schedule)
    if metrics is None:
        return None
    progress = read_progress(run)
    row = dict(detector=run.detector, bf=run.bf, seed=run.seed,
               **{m: round(100.0 * float(metrics[k]), 2) if float(metrics[k]) >= 0 else float('nan')
                  for m, k in METRIC_KEYS.items()},
               iterations=schedule.length, wall_s=round(progress['wall_s'], 1), sittings=progress['sittings'],
               gpu=hardware_name, commit=git_commit(), date=today(), config=run.config, scale=scale,
               config_hash=schedule.fingerprint)
    merged = []
    for path in logs:  # every sitting's log, in order
        with open(path) as f:
            merged += [line for line in f if line.strip()]
    if merged:  # (never replace a stored log with nothing)
        atomic_write_text(osp.join(logs_dir, f'{run.name}.json'), ''.join(merged))
    atomic_write_text(osp.join(run.work_dir, 'result.json'), json.dumps(row, indent=1))
    return row


def read_progress(run: Run):
    try:
        with open(osp.join(run.work_dir, 'progress.json')) as f:
            return json.load(f)
    except (OSError, ValueError):
        return dict(wall_s=0.0, sittings=0)


def add_progress(run: Run, seconds: float):
    p = read_progress(run)
    p['wall_s'] += seconds
    p['sittings'] += 1
    atomic_write_text(osp.join(run.work_dir, 'progress.json'), json.dumps(p))


class RunProcess:
    """One training subprocess; its output goes to train.log and, filtered when several run, to the console."""

    def __init__(self, run: Run, cmd, env, verbose: bool, label: str, gpu=None):
        self.run, self.label, self.verbose, self.gpu = run, label, verbose, gpu  # gpu: the id it is pinned to
        self.start = time.time()
        self.log = open(osp.join(run.work_dir, 'train.log'), 'a')
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        for line in self.proc.stdout:
            self.log.write(line)
            if self.verbose or 'Iter(train)' in line or 'Iter(val)' in line and 'coco/bbox_mAP' in line \
                    or 'Error' in line or 'StopAtDeadlineHook' in line:
                print(f'{self.label} {line}', end='', flush=True)

    def poll(self):
        rc = self.proc.poll()
        if rc is not None:
            self.thread.join()
            self.log.close()
        return rc


def visible_gpus():
    """The GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else every GPU torch sees."""
    env = os.environ.get('CUDA_VISIBLE_DEVICES')
    if env is not None:
        return [g.strip() for g in env.split(',') if g.strip()]
    import torch
    return [str(i) for i in range(torch.cuda.device_count())]


def gpu_slots(args):
    """Where each of the ``--parallel`` runs trains: a list of GPU ids (a run takes one and gives it back when
    it ends), ids repeated round-robin when more runs than GPUs train at once; None when runs are not pinned
    (smoke scale on the CPU, the full scale where each run spans ``--gpus`` GPUs, or a single run)."""
    if args.scale == 'smoke' or (args.scale == 'full' and args.gpus > 1):
        return None
    gpus = args.gpu_ids if args.gpu_ids is not None else visible_gpus()
    if args.parallel == 1 and args.gpu_ids is None or not gpus:
        return None
    return [gpus[i % len(gpus)] for i in range(args.parallel)]


def execute(runs, args, stored_keys, schedule_of, logs_dir, hardware_name):
    """Train (or evaluate) what is not finished, at most ``args.parallel`` at a time. Returns (rows, failed)."""
    todo = []
    for i, run in enumerate(runs, 1):
        state = run_state(run, stored_keys, args.force, schedule_of[run.config])
        if state == 'redo':
            shutil.rmtree(run.work_dir, ignore_errors=True)
            state = 'new'
        if state == 'finished':
            print(f'[{i}/{len(runs)}] {run.name}: finished, skipped')
            continue
        todo.append((i, run, state))
    todo.sort(key=lambda item: item[2] != 'interrupted')  # resume first: they hold checkpoints of this machine
    rows, running, failed = [], [], []
    slots = gpu_slots(args)  # one entry per run that may train at once; None: the processes share the GPUs
    deadline = time.time() + args.deadline if args.deadline else None
    env = dict(os.environ, PYTHON=sys.executable)
    if deadline:
        env['BF_DEADLINE'] = str(deadline)
    if args.scale == 'smoke':
        env['CUDA_VISIBLE_DEVICES'] = ''
    if args.parallel > 1:
        env.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 2) // (2 * args.parallel))))
    queue = list(todo)
    try:
        while queue or running:
            while queue and len(running) < args.parallel:
                if deadline and deadline - time.time() < args.min_start_s:
                    print(f'deadline near: {len(queue)} run(s) not started; call again to continue')
                    queue = []
                    break
                i, run, state = queue.pop(0)
                os.makedirs(run.work_dir, exist_ok=True)
                if state == 'new' or not osp.isfile(osp.join(run.work_dir, 'run_config.py')):
                    cfg = build_run_config(run, args.scale, args.data_root, schedule_of[run.config])
                    cfg.dump(osp.join(run.work_dir, 'run_config.py'))
                    atomic_write_text(osp.join(run.work_dir, 'fingerprint.txt'), schedule_of[run.config].fingerprint)
                if state == 'evaluate':
                    cmd = evaluate_command(run)
                else:
                    cmd = train_command(run, args.scale, args.gpus, resume=(state == 'interrupted'))
                verb = {'interrupted': 'resuming', 'evaluate': 'evaluating its last checkpoint'}.get(state, 'starting')
                run_env, gpu = env, None
                if slots:
                    gpu = slots.pop(0)
                    run_env = dict(env, CUDA_VISIBLE_DEVICES=gpu)
                    verb += f' on GPU {gpu}'
                print(f'[{i}/{len(runs)}] {run.name}: {verb} ({run.config}, seed {run.seed})', flush=True)
                running.append(RunProcess(run, cmd, run_env, verbose=args.parallel == 1, label=f'[{run.name}]',
                                          gpu=gpu))
            time.sleep(0.5)
            for rp in list(running):
                rc = rp.poll()
                if rc is None:
                    continue
                running.remove(rp)
                if rp.gpu is not None:
                    slots.append(rp.gpu)
                add_progress(rp.run, time.time() - rp.start)
                if rc != 0:
                    failed.append(rp.run.name)
                    print(f'{rp.run.name}: FAILED (exit {rc}); see {osp.join(rp.run.work_dir, "train.log")}')
                    continue
                row = finish_run(rp.run, schedule_of[rp.run.config], args.scale, logs_dir, hardware_name)
                if row is None:
                    print(f'{rp.run.name}: stopped before its last iteration (deadline); it resumes on the next call')
                else:
                    print(f'{rp.run.name}: finished, AP {row["AP"]:.2f}')
                    rows.append(row)
    except KeyboardInterrupt:
        for rp in running:  # stop the training processes too; their checkpoints let the next call resume
            rp.proc.terminate()
        raise
    return rows, failed


# ---------------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--scale', choices=['smoke', 'mini', 'full'], default=None,
                   help='default: mini where a GPU is present, smoke otherwise')
    p.add_argument('--seeds', type=int, default=None, help='seeds per row (default: smoke 2, mini 3, full 1)')
    p.add_argument('--detectors', nargs='+', choices=list(DETECTORS), default=None)
    p.add_argument('--gpus', type=int, default=1, help='GPUs per run (full scale, through torchrun)')
    p.add_argument('--data-root', default=None, help='dataset folder (default: data/fashion_canvas[_smoke], data/coco)')
    p.add_argument('--work-root', default=osp.join(REPO, 'work_dirs', 'table_detection'))
    p.add_argument('--results-dir', default=osp.join(REPO, 'results'))
    p.add_argument('--parallel', type=int, default=None,
                   help='runs trained at once, each pinned to one GPU, round-robin over --gpu-ids '
                        '(default: one per visible GPU at the mini scale, else 1)')
    p.add_argument('--gpu-ids', nargs='+', default=None, metavar='ID',
                   help='GPUs the runs are spread over (default: CUDA_VISIBLE_DEVICES, or all GPUs)')
    p.add_argument('--only', nargs='+', default=None, metavar='RUN',
                   help='train only these runs, named <detector>-<base|bf>-s<seed> (e.g. DETR-bf-s2); '
                        'the table still shows every finished run')
    p.add_argument('--deadline', type=float, default=None,
                   help='seconds from now after which runs checkpoint and stop (resume on the next call)')
    p.add_argument('--min-start-s', type=float, default=90, help='with --deadline: start no run with less left')
    p.add_argument('--dry-run', action='store_true', help='print the commands, run nothing')
    p.add_argument('--collect-only', action='store_true', help='rebuild CSV and table from the work dirs only')
    p.add_argument('--force', action='store_true', help='retrain runs that already finished')
    args = p.parse_args(argv)
    if args.scale is None:
        import torch
        args.scale = 'mini' if torch.cuda.is_available() else 'smoke'
    args.seeds = args.seeds or DEFAULT_SEEDS[args.scale]
    args.detectors = args.detectors or DEFAULT_DETECTORS[args.scale]
    args.data_root = args.data_root or osp.join(REPO, DEFAULT_DATA_ROOT[args.scale])
    if args.parallel is None:
        args.parallel = 1
        if args.scale == 'mini' and not args.dry_run and not args.collect_only:
            args.parallel = max(1, len(args.gpu_ids if args.gpu_ids is not None else visible_gpus()))
    if args.seeds < 1 or args.parallel < 1 or args.gpus < 1:
        p.error('--seeds, --parallel and --gpus must be at least 1')
    return args


def ensure_data(args):
    """Generate the canvas data (smoke/mini) if missing; check COCO (full)."""
    if args.scale == 'full':
        need = ['annotations/instances_train2017.json', 'annotations/instances_val2017.json', 'train2017', 'val2017']
        missing = [n for n in need if not osp.exists(osp.join(args.data_root, n))]
        if missing:
            raise SystemExit(f'error: COCO 2017 not found at {args.data_root}: missing {missing}. Download it '
                             '(cocodataset.org) into that layout, or pass --data-root DIR.')
        return
    from mmdet_plugins.datasets.fashion_canvas import PRESETS, MissingFashionMNIST, generate, is_complete
    spec = PRESETS[args.scale]
    if is_complete(args.data_root, spec):
        return
    print(f'generating the {args.scale} canvas dataset at {args.data_root} ...', flush=True)
    try:
        generate(args.data_root, spec)
    except MissingFashionMNIST as e:
        raise SystemExit(f'error: {e}')


def ensure_pretrained_backbones(configs, scale: str):
    """Make the Fashion-MNIST-pretrained backbone checkpoint that mini configs load, when it is missing."""
    from mmengine.config import Config
    from mmdet_plugins.pretrain import fashion_mnist_backbone as pretrain
    if scale != 'mini':
        return
    needed = set()
    for config in configs:
        init = Config.fromfile(osp.join(REPO, config)).model.backbone.get('init_cfg') or {}
        path = osp.join(REPO, init.get('checkpoint') or '')  # runs train with the repository as cwd
        if init.get('type') == 'Pretrained' and not osp.isfile(path):
            needed.add(path)
    for path in sorted(needed):
        print(f'pretraining the backbone checkpoint {path} (python -m mmdet_plugins.pretrain.'
              f'fashion_mnist_backbone {path}) ...', flush=True)
        try:
            pretrain.main([path])
        except FileNotFoundError as e:  # Fashion-MNIST missing
            raise SystemExit(f'error: {e}')


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config
    if args.scale == 'smoke':
        print('=' * 100 + '\n' + SMOKE_BANNER + '\n' + '=' * 100, flush=True)
    runs = []
    for detector in args.detectors:  # baseline and BF of a seed side by side, so partial sittings pair up
        for seed in range(args.seeds):
            for bf in (0, 1):
                run = Run(detector, bf, seed, config_path(detector, bool(bf), args.scale), '')
                run.work_dir = osp.join(args.work_root, args.scale, run.name)
                runs.append(run)
    if args.only:
        by_name = {run.name: run for run in runs}
        unknown = [name for name in args.only if name not in by_name]
        if unknown:
            raise SystemExit(f'error: --only {unknown}: no such run at --scale {args.scale} with --seeds '
                             f'{args.seeds} and --detectors {" ".join(args.detectors)}; valid names: '
                             f'{" ".join(by_name)}')
        train_runs = [by_name[name] for name in dict.fromkeys(args.only)]  # in the order given
    else:
        train_runs = runs
    schedule_of = {}  # config -> Schedule
    for run in runs:
        if run.config not in schedule_of:
            cfg = Config.fromfile(osp.join(REPO, run.config))
            if args.scale == 'smoke':
                apply_smoke_overrides(cfg)
            schedule_of[run.config] = Schedule.of(cfg)
    if args.deadline and any(sch.unit != 'iter' for sch in schedule_of.values()):
        raise SystemExit('error: --deadline needs iteration-based configs (the mini and smoke scales); the full '
                         'scale trains by epochs: resume an interrupted run with tools/train.py --resume')

    csv_path = osp.join(args.results_dir, 'measured', f'detection_{args.scale}.csv')
    logs_dir = osp.join(args.results_dir, 'logs', f'detection_{args.scale}')
    stored = read_results_csv(csv_path) if osp.isfile(csv_path) else None
    stored_keys = set()
    if stored is not None:
        for r in stored.itertuples():
            schedule = schedule_of.get(r.config)
            stored_hash = getattr(r, 'config_hash', None)
            same_config = not isinstance(stored_hash, str) or not stored_hash or stored_hash == schedule.fingerprint \
                if schedule else False  # rows from before fingerprints count as the current config
            if schedule and int(r.iterations) == schedule.length and same_config:
                stored_keys.add((r.detector, int(r.bf), int(r.seed)))

    if args.dry_run:
        for i, run in enumerate(train_runs, 1):
            state = run_state(run, stored_keys, args.force, schedule_of[run.config])
            cmd = evaluate_command(run) if state == 'evaluate' else \
                train_command(run, args.scale, args.gpus, resume=state == 'interrupted')
            print(f'[{i}/{len(train_runs)}] {run.name} ({state}): {" ".join(cmd)}')
        return 0

    new_rows, failed = [], []
    if not args.collect_only:
        ensure_data(args)
        ensure_pretrained_backbones(sorted({run.config for run in train_runs}), args.scale)
        new_rows, failed = execute(train_runs, args, stored_keys, schedule_of, logs_dir, gpu_name(args.scale))
    # rows from work dirs (also runs finished in earlier calls) + stored rows not superseded
    rows = {}
    if stored is not None:
        for r in stored.to_dict('records'):
            rows[(r['detector'], int(r['bf']), int(r['seed']))] = r
    for run in runs:
        result = read_result(run, schedule_of[run.config])
        if result is not None:
            rows[run.key] = result
    for r in new_rows:
        rows[(r['detector'], r['bf'], r['seed'])] = r
    if not rows:
        print('no finished runs yet: nothing to tabulate')
        return 1 if failed else 0
    df = results_frame(list(rows.values()))
    atomic_write_text(csv_path, df.to_csv(index=False))
    paper = read_results_csv(osp.join(args.results_dir, 'paper', 'detection.csv'), paper=True)
    table = render_table(df, paper, scale=args.scale, banner=SMOKE_BANNER if args.scale == 'smoke' else None)
    table_path = osp.join(args.results_dir, 'tables', f'detection_{args.scale}.md')
    atomic_write_text(table_path, table)
    print(table)
    print(f'wrote {csv_path} ({len(df)} rows) and {table_path}')
    if failed:
        print(f'FAILED runs: {failed}')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
