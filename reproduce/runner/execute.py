"""Training a table's runs as subprocesses: several at once, each pinned to a GPU, until done or a deadline."""
from __future__ import annotations

import os
import os.path as osp
import shutil
import subprocess
import sys
import threading
import time


from .runs import (STAGE1_DIR, Run, add_progress, final_checkpoint, finish_run, last_checkpoint, mark_started,
                   run_state, seconds_to_finish, stage1_run)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def train_command(run: Run, gpus: int, resume: bool):
    """``tools/train.py`` on the run's config; through torchrun (``tools/dist_train.sh``) when ``gpus`` > 1."""
    cfg_file = osp.join(run.work_dir, 'run_config.py')
    if gpus > 1:
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


def command(run: Run, state: str, gpus: int):
    return evaluate_command(run) if state == 'evaluate' else train_command(run, gpus, resume=state == 'interrupted')


class RunProcess:
    """One training subprocess; its output goes to train.log and, filtered when several run, to the console."""

    def __init__(self, run: Run, cmd, env, verbose: bool, label: str, metric_key: str, gpu=None):
        self.run, self.label, self.verbose, self.gpu = run, label, verbose, gpu  # gpu: the id it is pinned to
        self.metric_key = metric_key
        self.start = time.time()
        self.log = open(osp.join(run.work_dir, 'train.log'), 'a')
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        for line in self.proc.stdout:
            self.log.write(line)
            if self.verbose or 'Iter(train)' in line or 'Iter(val)' in line and self.metric_key in line \
                    or 'Error' in line or 'error:' in line or 'StopAtDeadlineHook' in line:
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


def gpu_slots(args, scale):
    """Where each of the ``--parallel`` runs trains: a list of GPU ids (a run takes one and gives it back when
    it ends), ids repeated round-robin when more runs than GPUs train at once; None when runs are not pinned
    (a CPU-only scale, a scale where each run spans ``--gpus`` GPUs, or a single run)."""
    if scale.cpu_only or (not scale.one_run_per_gpu and args.gpus > 1):
        return None
    gpus = args.gpu_ids if args.gpu_ids is not None else visible_gpus()
    if args.parallel == 1 and args.gpu_ids is None or not gpus:
        return None
    return [gpus[i % len(gpus)] for i in range(args.parallel)]


def clear_work_dir(run: Run, keep: str = None) -> None:
    """Delete the run's work directory, or everything in it but the entry ``keep`` when it has one."""
    if keep is None or not osp.isdir(osp.join(run.work_dir, keep)):
        shutil.rmtree(run.work_dir, ignore_errors=True)
        return
    for name in os.listdir(run.work_dir):
        path = osp.join(run.work_dir, name)
        if name != keep:
            shutil.rmtree(path, ignore_errors=True) if osp.isdir(path) and not osp.islink(path) else os.remove(path)


def first_stage_state(run: Run, pre_config: str, ident_of, spec=None) -> str:
    """The state of the run's first stage (:func:`~reproduce.runner.runs.stage1_run`; ``spec``: the table, for
    an arm that shares another arm's): ``done`` (its final checkpoint is there), ``interrupted``, ``new``; a first
    stage started under another fingerprint is cleared (``new``)."""
    pre = stage1_run(run, pre_config, spec)
    state = run_state(pre, set(), False, ident_of[pre_config])
    if state == 'redo':
        clear_work_dir(pre)
        return 'new'
    if state == 'foreign':
        raise SystemExit(f'error: {pre.work_dir} holds a first stage started on another dataset; move it away')
    return 'done' if final_checkpoint(pre, ident_of[pre_config].schedule) else state


def split_late(queue, seconds_left: float, ident_of):
    """With less than ``--min-start-s`` left: the queued items (``(index, run, state, then)``) that still start,
    the interrupted runs whose own pace says they finish in ``seconds_left`` (``seconds_to_finish``), and the
    others, which wait for the next call. Returns (start, late)."""
    start, late = [], []
    for item in queue:
        run, state = item[1], item[2]
        need = seconds_to_finish(run, ident_of[run.config].schedule) if state == 'interrupted' else None
        (start if need is not None and need < seconds_left else late).append(item)
    return start, late


def execute(runs, args, scale, spec, stored_keys, ident_of, build_config, logs_dir, hardware_name,
            pre_config_of=None):
    """Train (or evaluate) what is not finished, at most ``args.parallel`` at a time (no run may be ``foreign``:
    the caller refuses those). Returns (rows, failed).

    ``ident_of[config]``: the runs' :class:`~reproduce.runner.runs.Identity`; ``build_config(run)``: the config
    a new run trains with. ``pre_config_of[run.config]``: the config of the run's first stage
    (``TableSpec.pre_stage``), trained first in ``<work_dir>/stage1/``; the run then starts from its final
    checkpoint. A first stage that several runs start from (``Arm.first_stage_from``) trains once, in the work
    directory of the run that owns it, and all of them start when it ends."""
    pre_config_of = pre_config_of or {}
    todo = []
    first_stages = {}  # a first stage's work directory -> its item in todo (its last entry: the runs waiting on it)
    index_of = {run.name: i for i, run in enumerate(runs, 1)}
    states = [run_state(run, stored_keys, args.force, ident_of[run.config]) for run in runs]
    for k, run in enumerate(runs):  # (every clearing first: a first stage cleared with its run is then seen as new)
        if states[k] == 'redo':
            # --force trains both stages again; a changed config keeps the first stage, whose own fingerprint then
            # decides whether it trains again (a run that shares it keeps a first stage that did not change)
            clear_work_dir(run, keep=None if args.force else STAGE1_DIR)
            states[k] = 'new'
    for i, (run, state) in enumerate(zip(runs, states), 1):
        if state == 'finished':
            print(f'[{i}/{len(runs)}] {run.name}: finished, skipped')
            continue
        pre_config = pre_config_of.get(run.config)
        if state == 'new' and pre_config is not None:
            pre = stage1_run(run, pre_config, spec)
            if pre.work_dir in first_stages:  # (shared with a run already waiting on it)
                first_stages[pre.work_dir][3].append(run)
                continue
            first = first_stage_state(run, pre_config, ident_of, spec)
            if first != 'done':
                first_stages[pre.work_dir] = (i, pre, first, [run])
                todo.append(first_stages[pre.work_dir])
                continue
        todo.append((i, run, state, None))
    todo.sort(key=lambda item: item[2] != 'interrupted')  # resume first: they hold checkpoints of this machine
    rows, running, failed = [], [], []
    slots = gpu_slots(args, scale)  # one entry per run that may train at once; None: the processes share the GPUs
    deadline = time.time() + args.deadline if args.deadline else None
    env = dict(os.environ, PYTHON=sys.executable)
    if deadline:
        env['BF_DEADLINE'] = str(deadline)
    if scale.cpu_only:
        env['CUDA_VISIBLE_DEVICES'] = ''
    if args.parallel > 1:
        env.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 2) // (2 * args.parallel))))
    gpus_per_run = 1 if scale.one_run_per_gpu else args.gpus
    metric_key = spec.metrics[spec.primary]
    queue = list(todo)
    try:
        while queue or running:
            while queue and len(running) < args.parallel:
                if deadline and deadline - time.time() < args.min_start_s:
                    queue, late = split_late(queue, deadline - time.time(), ident_of)
                    if late:
                        count = sum(1 if item[3] is None else len(item[3]) for item in late)
                        print(f'deadline near: {count} run(s) not started; call again to continue')
                    if not queue:
                        break
                i, run, state, then = queue.pop(0)  # then: the runs that start from this first stage (or None)
                ident = ident_of[run.config]
                os.makedirs(run.work_dir, exist_ok=True)
                if state == 'new' or not osp.isfile(osp.join(run.work_dir, 'run_config.py')):
                    cfg = build_config(run)
                    if then is None and run.config in pre_config_of:  # start from the first stage's end
                        pre = stage1_run(run, pre_config_of[run.config], spec)
                        start_from = final_checkpoint(pre, ident_of[pre.config].schedule)
                        if start_from is None:  # (gone since planning, e.g. another process cleared it: never
                            # start without it)
                            print(f'{run.name}: FAILED: its first stage has no final checkpoint in {pre.work_dir}; '
                                  'call again to train it')
                            failed.append(run.name)
                            continue
                        cfg.load_from = osp.abspath(start_from)
                    cfg.dump(osp.join(run.work_dir, 'run_config.py'))
                    mark_started(run, ident)
                cmd = command(run, state, gpus_per_run)
                verb = {'interrupted': 'resuming', 'evaluate': 'evaluating its last checkpoint'}.get(state, 'starting')
                run_env, gpu = env, None
                if slots:
                    gpu = slots.pop(0)
                    run_env = dict(env, CUDA_VISIBLE_DEVICES=gpu)
                    verb += f' on GPU {gpu}'
                name = run.name if then is None else f'{run.name} stage 1'
                print(f'[{i}/{len(runs)}] {name}: {verb} ({run.config}, seed {run.seed})', flush=True)
                rp = RunProcess(run, cmd, run_env, verbose=args.parallel == 1, label=f'[{name}]',
                                metric_key=metric_key, gpu=gpu)
                rp.then = then
                running.append(rp)
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
                    failed += [rp.run.name] if rp.then is None else [then.name for then in rp.then]
                    label = rp.run.name if rp.then is None else f'{rp.run.name} stage 1'
                    print(f'{label}: FAILED (exit {rc}); see {osp.join(rp.run.work_dir, "train.log")}')
                    continue
                if rp.then is not None:  # a first stage ended: at its end, the runs that start from it come next
                    names = ', '.join(then.name for then in rp.then)
                    if final_checkpoint(rp.run, ident_of[rp.run.config].schedule):
                        print(f'{names}: stage 1 finished', flush=True)
                        queue[0:0] = [(index_of[then.name], then, 'new', None) for then in rp.then]
                    else:
                        print(f'{names}: stage 1 stopped before its last iteration (deadline); it resumes on the '
                              'next call')
                    continue
                row = finish_run(rp.run, spec, ident_of[rp.run.config], args.scale, logs_dir, hardware_name)
                if row is None:
                    print(f'{rp.run.name}: stopped before its last iteration (deadline); it resumes on the next call')
                else:
                    print(f'{rp.run.name}: finished, {spec.primary} {row[spec.primary]:.2f}')
                    rows.append(row)
    except KeyboardInterrupt:
        for rp in running:  # stop the training processes too; their checkpoints let the next call resume
            rp.proc.terminate()
        raise
    return rows, failed
