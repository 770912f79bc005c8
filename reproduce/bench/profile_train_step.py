"""Where a training iteration's time goes: mmengine's own training loop on a config, with its parts timed.

For each config: ``--warmup`` iterations, then ``--iters`` timed iterations (wall clock, no profiler: seconds per
iteration and, where ``nvidia-smi`` exists, the GPU's mean utilisation), then ``--profile-iters`` iterations under
``torch.profiler`` that attribute host (CPU) time and GPU kernel time to the parts of the step:

    data        the dataloader's next batch (what the training process waits for)
    preprocess  the data preprocessor (host-to-GPU copy, normalisation, padding)
    backbone    backbone + neck (``extract_feat``)
    transformer encoder, BatchFormerV2, decoder (``forward_transformer``)
    head.loss   the head's losses, all decoder layers, of which:
      assign      Hungarian matching (``assigner.assign``, once per image and decoder layer)
      targets     per-image targets (``get_targets``, includes ``assign``)
    parse       summing the losses (``parse_losses``)
    backward    ``loss.backward()`` (through the optimiser wrapper: AMP scaling included)
    step        gradient clipping and the optimiser step
    hooks       mmengine's hooks after the iteration (logging: one ``.item()`` per logged loss)

plus the number of host-device synchronisations (``cudaStreamSynchronize``, ``.item()``) per iteration. With
``--sync-trace`` (GPU only) the last warm-up iteration runs under ``torch.cuda.set_sync_debug_mode('warn')`` and
each synchronising call is attributed to the Python line that made it (:class:`SyncTracer`); the counts are
written to ``--trace-dir`` as ``<config>_syncs.csv``. Syncs made inside autograd's backward thread are not seen.

    python reproduce/bench/profile_train_step.py CONFIG [CONFIG ...] --data-root data/fashion_canvas \\
        --out results/measured/profile_mini.csv --summary results/tables/profile_mini.md

Runs on the CPU too (``--device cpu``, for a check); its numbers mean something only on the GPU.
"""
from __future__ import annotations

import argparse
import functools
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from reproduce.bench.benchmark_overhead import sync  # noqa: E402

PARTS = ['data', 'preprocess', 'backbone', 'transformer', 'head.loss', 'targets', 'assign', 'parse', 'backward',
         'step', 'hooks']
SYNC_EVENTS = ('cudaStreamSynchronize', 'cudaDeviceSynchronize', 'aten::_local_scalar_dense')


def labelled(label, fn):
    """``fn`` run inside ``torch.profiler.record_function(label)``."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.profiler.record_function(label):
            return fn(*args, **kwargs)
    return wrapper


def instrument(runner):
    """Label the parts of a training step (on this runner's objects only; mmdet's classes stay untouched)."""
    from mmengine.runner.loops import _InfiniteDataloaderIterator
    from mmdet_plugins.utils.model_utils import unwrap_model
    model = unwrap_model(runner.model)
    model.data_preprocessor.forward = labelled('preprocess', model.data_preprocessor.forward)
    model.extract_feat = labelled('backbone', model.extract_feat)
    model.forward_transformer = labelled('transformer', model.forward_transformer)
    model.parse_losses = labelled('parse', model.parse_losses)
    head = model.bbox_head
    head.loss = labelled('head.loss', head.loss)
    head.get_targets = labelled('targets', head.get_targets)
    assigner = getattr(head, 'assigner', None)
    if assigner is not None:
        assigner.assign = labelled('assign', assigner.assign)
    ow = runner.optim_wrapper
    ow.backward = labelled('backward', ow.backward)
    ow.step = labelled('step', ow.step)
    if not getattr(_InfiniteDataloaderIterator.__next__, '_bf_labelled', False):
        _InfiniteDataloaderIterator.__next__ = labelled('data', _InfiniteDataloaderIterator.__next__)
        _InfiniteDataloaderIterator.__next__._bf_labelled = True
    call_hook = runner.call_hook

    def call_hook_labelled(fn_name, **kwargs):
        if fn_name == 'after_train_iter':
            with torch.profiler.record_function('hooks'):
                return call_hook(fn_name, **kwargs)
        return call_hook(fn_name, **kwargs)
    runner.call_hook = call_hook_labelled


class SyncTracer:
    """Counts the synchronising CUDA calls made while active, by the Python line that made them.

    ``torch.cuda.set_sync_debug_mode('warn')`` makes each synchronising call issue a warning; the warning's
    Python stack gives the innermost frame outside torch (the caller's line) and the innermost frame in this
    repository or the OpenMMLab packages (what called it there)."""

    OWN = ('mmdet_plugins', 'mmdet', 'mmcv', 'mmengine', 'reproduce')

    def __init__(self):
        self.counts = {}
        self._saved = None

    def start(self):
        import warnings
        self._saved = (warnings.showwarning, warnings.filters[:])
        warnings.simplefilter('always')
        warnings.showwarning = self._record
        torch.cuda.set_sync_debug_mode('warn')

    def stop(self):
        import warnings
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode('default')
        warnings.showwarning, warnings.filters[:] = self._saved

    def _record(self, message, category, filename, lineno, file=None, line=None):
        import traceback
        if 'synchronizing' not in str(message):
            return self._saved[0](message, category, filename, lineno, file, line)
        stack = traceback.extract_stack()[:-1]
        caller = next((f for f in reversed(stack) if f'{osp.sep}torch{osp.sep}' not in f.filename
                       and not f.filename.endswith('warnings.py')), None)
        own = next((f for f in reversed(stack) if any(f'{osp.sep}{p}{osp.sep}' in f.filename for p in self.OWN)),
                   None)
        key = (_where(caller), _where(own))
        self.counts[key] = self.counts.get(key, 0) + 1

    def rows(self):
        return [dict(caller=c, in_package=o, syncs=n)
                for (c, o), n in sorted(self.counts.items(), key=lambda kv: -kv[1])]


def _where(frame):
    if frame is None:
        return ''
    parts = frame.filename.split(osp.sep)
    return f'{"/".join(parts[-3:])}:{frame.lineno} ({frame.name})'


class GpuUtilSampler:
    """``nvidia-smi`` utilisation samples (percent) of the GPU in use, in the background; empty without it."""

    def __init__(self, device):
        self.proc, self.samples = None, []
        if device.type != 'cuda' or not shutil.which('nvidia-smi'):
            return
        index = os.environ.get('CUDA_VISIBLE_DEVICES', '').split(',')[0].strip() or str(device.index or 0)
        self.proc = subprocess.Popen(['nvidia-smi', '-i', index, '--query-gpu=utilization.gpu',
                                      '--format=csv,noheader,nounits', '-lms', '100'],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def stop(self):
        if self.proc is None:
            return float('nan')
        self.proc.terminate()
        out, _ = self.proc.communicate()
        self.samples = [float(x) for x in out.split() if x.strip().replace('.', '', 1).isdigit()]
        return sum(self.samples) / len(self.samples) if self.samples else float('nan')


def profile_config(config, args, device):
    """One config: returns (summary dict, [part rows])."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    from tools.train import load_config
    from reproduce.runner.data import set_data_root
    import mmdet_plugins  # noqa: F401

    cfg = load_config(osp.join(REPO, config), 'none', work_dir=tempfile.mkdtemp(prefix='bf-profile-'))
    set_data_root(cfg, args.data_root)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    total = args.warmup + args.iters + args.profile_iters
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=total, val_interval=10 ** 9)
    cfg.param_scheduler = None
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None  # no validation at the end
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10 ** 9, save_last=False)
    cfg.default_hooks.logger.interval = 50
    cfg.randomness = dict(seed=0)
    cfg.model.backbone.init_cfg = None  # timing only: no pretrained checkpoint needed
    if device.type == 'cpu':
        cfg.optim_wrapper.type = 'OptimWrapper'
        cfg.optim_wrapper.pop('loss_scale', None)
        cfg.train_dataloader.num_workers = 0
        cfg.train_dataloader.persistent_workers = False
    if args.batch_size:
        cfg.train_dataloader.batch_size = args.batch_size
    result = {}

    tracer = SyncTracer() if getattr(args, 'sync_trace', False) and device.type == 'cuda' else None

    class Window(Hook):
        priority = 'VERY_LOW'

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if tracer is not None and batch_idx == args.warmup - 1:
                tracer.start()
            if batch_idx == args.warmup:
                if tracer is not None:
                    tracer.stop()
                sync(device)
                result['sampler'] = GpuUtilSampler(device)
                result['t0'] = time.perf_counter()
            elif batch_idx == args.warmup + args.iters:
                sync(device)
                result['timed_s'] = time.perf_counter() - result['t0']
                result['gpu_util'] = result['sampler'].stop()
                if device.type == 'cuda':
                    torch.cuda.reset_peak_memory_stats(device)
                acts = [torch.profiler.ProfilerActivity.CPU]
                if device.type == 'cuda':
                    acts.append(torch.profiler.ProfilerActivity.CUDA)
                result['prof'] = torch.profiler.profile(activities=acts)
                result['prof'].__enter__()
                result['t1'] = time.perf_counter()

        def after_run(self, runner):
            sync(device)
            result['prof_s'] = time.perf_counter() - result['t1']
            result['prof'].__exit__(None, None, None)
            if device.type == 'cuda':
                result['peak_gib'] = torch.cuda.max_memory_allocated(device) / 2 ** 30

    cfg.custom_hooks = list(cfg.get('custom_hooks', []))
    runner = Runner.from_cfg(cfg)
    runner.register_hook(Window())
    runner._train_loop = runner.build_train_loop(runner._train_loop)  # noqa: SLF001 (so the optimiser exists)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    instrument(runner)
    runner.train()  # (reuses the loop and optimiser built above)

    prof = result['prof']
    averages = {e.key: e for e in prof.key_averages()}
    n = args.profile_iters
    rows = []
    for part in PARTS:
        e = averages.get(part)
        rows.append(dict(part=part, calls_per_iter=round(e.count / n, 2) if e else 0.0,
                         host_ms_per_iter=round(e.cpu_time_total / 1e3 / n, 2) if e else 0.0,
                         gpu_ms_per_iter=round(_device_time(e) / 1e3 / n, 2) if e else 0.0))
    kernel_us = sum(_self_device_time(e) for e in prof.key_averages() if _is_kernel(e))
    syncs = {k: round(averages[k].count / n, 1) if k in averages else 0.0 for k in SYNC_EVENTS}
    summary = dict(
        s_per_iter=round(result['timed_s'] / args.iters, 4),
        profiled_s_per_iter=round(result['prof_s'] / n, 4),
        gpu_kernel_ms_per_iter=round(kernel_us / 1e3 / n, 2),
        gpu_busy=round(min(1.0, kernel_us / 1e6 / result['prof_s']), 3) if result['prof_s'] else float('nan'),
        gpu_util_smi=round(result['gpu_util'], 1),
        stream_syncs_per_iter=syncs['cudaStreamSynchronize'] + syncs['cudaDeviceSynchronize'],
        item_calls_per_iter=syncs['aten::_local_scalar_dense'],
        peak_gib=round(result.get('peak_gib', float('nan')), 2),
        batch_size=cfg.train_dataloader.batch_size)
    if args.trace_dir:
        os.makedirs(args.trace_dir, exist_ok=True)
        stem = osp.join(args.trace_dir, osp.splitext(osp.basename(config))[0])
        table = prof.key_averages().table(sort_by='cpu_time_total', row_limit=60)
        with open(stem + '.txt', 'w') as f:
            f.write(table)
        if getattr(args, 'chrome_trace', False):  # the profiled iterations' timeline, for chrome://tracing
            prof.export_chrome_trace(stem + '_trace.json.gz')  # (torch gzips a .gz path)
        if tracer is not None:
            import pandas as pd
            from mmdet_plugins.utils.provenance import atomic_write_text
            atomic_write_text(stem + '_syncs.csv', pd.DataFrame(tracer.rows(), columns=['caller', 'in_package', 'syncs'])
                              .to_csv(index=False))
    return summary, rows


def _device_time(e):
    return getattr(e, 'device_time_total', None) or getattr(e, 'cuda_time_total', 0.0)


def _self_device_time(e):
    return getattr(e, 'self_device_time_total', None) or getattr(e, 'self_cuda_time_total', 0.0)


def _is_kernel(e):
    """A GPU kernel (or memcpy/memset) event; not a GPU-side copy of a ``record_function`` range, whose
    duration spans the whole range (as torch's own profiler table counts 'Self CUDA time total')."""
    device_type = getattr(e, 'device_type', None)
    return (device_type is not None and str(device_type).endswith('CUDA')
            and not getattr(e, 'is_user_annotation', False))


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('configs', nargs='+', help='repository-relative config files')
    p.add_argument('--data-root', default=osp.join(REPO, 'data', 'fashion_canvas'))
    p.add_argument('--warmup', type=int, default=10)
    p.add_argument('--iters', type=int, default=30, help='timed iterations (no profiler)')
    p.add_argument('--profile-iters', type=int, default=10, help='iterations under torch.profiler')
    p.add_argument('--batch-size', type=int, default=None, help='override the config\'s batch size')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='applied to every config')
    p.add_argument('--out', default=None, help='CSV: one row per config and part')
    p.add_argument('--summary', default=None, help='markdown summary')
    p.add_argument('--trace-dir', default=None, help='also write each config\'s full profiler table here')
    p.add_argument('--sync-trace', action='store_true',
                   help='attribute the last warm-up iteration\'s syncs to Python lines (GPU; needs --trace-dir)')
    p.add_argument('--chrome-trace', action='store_true',
                   help='also write the profiled iterations\' timeline (<config>_trace.json.gz; needs --trace-dir)')
    args = p.parse_args(argv)
    if args.chrome_trace and not args.trace_dir:
        p.error('--chrome-trace writes to --trace-dir: give it')
    if args.sync_trace and (not args.trace_dir or args.warmup < 1):
        p.error('--sync-trace writes to --trace-dir and traces the last warm-up iteration: give --trace-dir and '
                '--warmup of at least 1')
    if min(args.iters, args.profile_iters) < 1 or args.warmup < 0:
        p.error('--iters and --profile-iters must be at least 1, --warmup at least 0')
    if not osp.isdir(osp.join(args.data_root, 'annotations')):
        p.error(f'no dataset at --data-root {args.data_root} (no annotations/ folder); make it with '
                f'python -m mmdet_plugins.datasets.fashion_canvas {args.data_root}')
    return args


def main(argv=None):
    import pandas as pd
    from mmdet_plugins.utils.provenance import atomic_write_text, git_commit, hardware, today
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.cuda.set_device(device.index or 0)
    prov = dict(hardware=hardware(device if device.type == 'cuda' else None), commit=git_commit(), date=today(),
                torch=torch.__version__)
    summaries, part_rows = [], []
    for config in args.configs:
        summary, rows = profile_config(config, args, device)
        name = osp.splitext(osp.basename(config))[0]
        summaries.append(dict(config=config, **summary))
        part_rows += [dict(config=config, **r) for r in rows]
        print(f'{name}: {summary["s_per_iter"]:.3f} s/iter, GPU kernels {summary["gpu_kernel_ms_per_iter"]:.0f} '
              f'ms/iter (busy {summary["gpu_busy"]:.0%}), {summary["stream_syncs_per_iter"]:.0f} syncs/iter',
              flush=True)
        # written after every config, so that a run cut short keeps what it measured
        parts = pd.DataFrame(part_rows).merge(pd.DataFrame(summaries), on='config')
        for k, v in prov.items():
            parts[k] = v
        if args.out:
            atomic_write_text(args.out, parts.to_csv(index=False))
        text = render_summary(pd.DataFrame(summaries), pd.DataFrame(part_rows), prov, args)
        if args.summary:
            atomic_write_text(args.summary, text)
    print(text)
    return 0


def render_summary(summaries, parts, prov, args):
    lines = [f'Training-step profile: {prov["hardware"]}, torch {prov["torch"]}, commit {prov["commit"]}, '
             f'{prov["date"]}; {args.iters} timed and {args.profile_iters} profiled iterations after '
             f'{args.warmup} warm-up ({osp.basename(__file__)}).', '',
             '| config | s/iter | GPU kernels ms/iter | GPU busy | nvidia-smi util % | syncs/iter | .item()/iter | '
             'peak GiB |', '|---|---|---|---|---|---|---|---|']
    for r in summaries.itertuples():
        lines.append(f'| {osp.basename(r.config)} | {r.s_per_iter:.3f} | {r.gpu_kernel_ms_per_iter:.1f} | '
                     f'{r.gpu_busy:.0%} | {r.gpu_util_smi} | {r.stream_syncs_per_iter:.0f} | '
                     f'{r.item_calls_per_iter:.0f} | {r.peak_gib} |')
    lines += ['', 'Host (CPU) milliseconds per iteration by part, under the profiler (parts nest: `assign` is in '
              '`targets`, which is in `head.loss`); GPU ms in brackets.', '']
    configs = list(summaries.config)
    lines.append('| part | ' + ' | '.join(osp.basename(c) for c in configs) + ' |')
    lines.append('|---|' + '---|' * len(configs))
    for part in PARTS:
        cells = []
        for c in configs:
            r = parts[(parts.config == c) & (parts.part == part)].iloc[0]
            cells.append(f'{r.host_ms_per_iter:.1f} ({r.gpu_ms_per_iter:.1f}) x{r.calls_per_iter:g}')
        lines.append(f'| {part} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    sys.exit(main())
