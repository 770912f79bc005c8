"""Training speed of stock mmdet 3.3.0 components against this repository's fast ones, side by side in one run.

For each config and variant, mmengine's own training loop runs ``--warmup`` iterations and then ``--iters``
timed ones (``reproduce/bench/profile_train_step.py``'s measurement: wall clock, ``nvidia-smi`` utilisation, peak
memory, host-device synchronisations per iteration from a short profiled window). Variants:

    stock      stock mmdet 3.3.0 components: mmdet's heads, HungarianAssigner, one optimiser group per
               parameter, blocking copies from pageable memory, mmcv's deformable attention module (the mini
               configs' components are switched back)
    fast       the batched matching heads with the sync-free per-layer loss and BatchedHungarianAssigner
               (mmdet_plugins/fast_training/), merged optimiser groups (mmdet_plugins/fast_training/merged_param_groups.py),
               pinned, non-blocking image copies, deformable attention without a host wait per layer
               (TraceableDeformAttnHook): same matchings, same losses (the mini configs' default). The mini
               Deformable DETR and DINO configs also choose the attention's backward in fp32, which changes the
               gradients (a training choice, judged by AP; stock runs mmcv's fp16 backward).
    fast-mmcv-backward  fast with the deformable attention's backward left in mmcv's (fp16 under AMP) dtype:
               the fast components alone, bitwise stock's forward and stock's backward kernel (configs with
               deformable attention only)
    fast-bf16  + bf16 autocast instead of fp16 (not bitwise equal: judged by a mini run's AP). DETR only:
               mmcv 2.1.0 has no bf16 kernel for multi-scale deformable attention (Deformable DETR, DINO) nor
               for sigmoid_focal_loss (Conditional DETR, DAB-DETR, and those two).
    fast-compile  fast + the encoder and decoder layers compiled by torch.compile (CompileLayersHook,
               mmdet_plugins/fast_training/compiled_layers.py; not bitwise equal: reproduce/bench/check_fast_equivalence.py
               --compiled and a mini run's AP judge it). Its warm-up iterations include the compilation.
    fast-compile-all  fast-compile with the backbone, the neck and the head's forward compiled too.
    fast-compile-all-cudagraphs  fast-compile-all in torch.compile's ``reduce-overhead`` mode: each compiled
               module's kernels replayed as a CUDA graph.
    ...-fused  (suffix to fast, fast-compile, fast-compile-all) AdamW's fused CUDA kernel (``fused=True``)
               instead of its multi-tensor (``foreach``) one: the same update rule in one kernel per group,
               without the per-parameter host work; not bitwise equal (rounding order).

Deformable attention in the compiled variants runs through the traceable custom operator
(mmdet_plugins/fast_training/deform_attn.py), as ``CompileLayersHook`` does by default.

Writes one row per config and variant (seconds and iterations per second, GPU utilisation, peak memory,
speed-up over ``stock`` of the same config, BatchFormerV2's step-time ratio over the baseline config of the same
variant where both are given) with the provenance, to ``--out`` (default ``results/measured/speed.csv``).

    python reproduce/bench/benchmark_speed.py configs/mini/deformable-detr_r18_1xb16-mini.py \\
        configs/mini/bf-deformable-detr_r18_1xb16-mini.py --data-root data/fashion_canvas
"""
from __future__ import annotations

import argparse
import math
import os.path as osp
import sys
import time

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from mmdet_plugins.fast_training.heads import with_matching  # noqa: E402

VARIANTS = ('stock', 'fast', 'fast-mmcv-backward', 'fast-bf16', 'fast-compile', 'fast-compile-all',
            'fast-compile-all-cudagraphs', 'fast-fused', 'fast-compile-fused', 'fast-compile-all-fused')
FAST_HOOKS = ('TraceableDeformAttnHook', )  # the mini configs' hooks that belong to the fast components
COMPILE_ALL_TARGETS = ['backbone', 'neck', 'encoder.layers', 'decoder.layers', 'bbox_head']


def variant_options(config: str, variant: str) -> dict:
    """The ``--cfg-options`` that turn ``config`` into ``variant``."""
    from mmengine.config import Config
    if variant not in VARIANTS:
        raise ValueError(f'unknown variant {variant!r}; known: {VARIANTS}')
    cfg = Config.fromfile(osp.join(REPO, config))
    try:
        model = with_matching(cfg.model, batched=variant != 'stock')
    except ValueError as e:
        raise SystemExit(f'error: {config}: {e}')
    options = {'model.bbox_head.type': model.bbox_head.type,
               'model.train_cfg.assigner.type': model.train_cfg.assigner.type}
    hooks = list(cfg.get('custom_hooks', []))
    if variant == 'stock':
        return dict(options, **{'custom_hooks': [h for h in hooks if h.get('type') not in FAST_HOOKS],
                                'optim_wrapper.constructor': 'DefaultOptimWrapperConstructor',
                                'train_dataloader.pin_memory': False,
                                'model.data_preprocessor.non_blocking': False})
    fused = variant.endswith('-fused')
    if fused:
        variant = variant[:-len('-fused')]
        options['optim_wrapper.optimizer.fused'] = True
    options.update({'optim_wrapper.constructor': 'MergedGroupsOptimWrapperConstructor',
                    # images copied to the GPU from pinned memory without blocking the host
                    'train_dataloader.pin_memory': True,
                    'model.data_preprocessor.non_blocking': True})
    if variant == 'fast-mmcv-backward':
        if not any(h.get('type') == 'TraceableDeformAttnHook' for h in hooks):
            raise ValueError(f'{config}: fast-mmcv-backward needs a config with TraceableDeformAttnHook '
                             f'(deformable attention)')
        options['custom_hooks'] = [dict(h, backward_dtype=None) if h.get('type') == 'TraceableDeformAttnHook'
                                   else h for h in hooks]
    if variant == 'fast-bf16':
        if uses_deformable_attention(cfg.model.type):
            raise ValueError(f'{config}: fast-bf16 is not available for {cfg.model.type}: mmcv 2.1.0 has no '
                             f'bf16 kernel for multi-scale deformable attention')
        if cfg.model.bbox_head.get('loss_cls', {}).get('type') == 'FocalLoss':
            raise ValueError(f'{config}: fast-bf16 is not available with FocalLoss: mmcv 2.1.0\'s '
                             f'sigmoid_focal_loss has no bf16 kernel')
        options['optim_wrapper.dtype'] = 'bfloat16'
    if variant.startswith('fast-compile'):
        hook = dict(type='CompileLayersHook')
        if variant.startswith('fast-compile-all'):
            hook['targets'] = COMPILE_ALL_TARGETS
        if variant.endswith('-cudagraphs'):
            hook['mode'] = 'reduce-overhead'
        options['custom_hooks'] = hooks + [hook]
    return options


def uses_deformable_attention(model_type: str) -> bool:
    """Whether the registered detector ``model_type`` is Deformable DETR or derives from it (DINO)."""
    import mmdet_plugins  # noqa: F401
    from mmdet.models.detectors import DeformableDETR
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cls = MODELS.get(model_type)
    return cls is not None and issubclass(cls, DeformableDETR)


def is_bf_config(config: str) -> bool:
    return osp.basename(config).startswith('bf-')


def baseline_of(config: str) -> str:
    return osp.join(osp.dirname(config), osp.basename(config)[len('bf-'):])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('configs', nargs='+')
    p.add_argument('--variants', nargs='+', choices=VARIANTS, default=['stock', 'fast'])
    p.add_argument('--data-root', default=osp.join(REPO, 'data', 'fashion_canvas'))
    p.add_argument('--warmup', type=int, default=15)
    p.add_argument('--iters', type=int, default=40)
    p.add_argument('--profile-iters', type=int, default=3, help='a short profiled window, to count syncs')
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--out', default=osp.join(REPO, 'results', 'measured', 'speed.csv'))
    p.add_argument('--trace-dir', help="also write each run's profiler table (key averages) here")
    p.add_argument('--sync-trace', action='store_true',
                   help="with --trace-dir: each run's syncs by Python line (profile_train_step.py --sync-trace)")
    p.add_argument('--chrome-trace', action='store_true',
                   help="with --trace-dir: each run's profiled timeline (profile_train_step.py --chrome-trace)")
    p.add_argument('--rounds', type=int, default=1,
                   help='measure every config and variant this many times, interleaved (round 1 of all, then round '
                        '2, ...); the CSV holds the median and the range of the seconds per iteration')
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error('--rounds must be at least 1')
    if (args.sync_trace or args.chrome_trace) and not args.trace_dir:
        p.error('--sync-trace and --chrome-trace write to --trace-dir: give it')
    if not osp.isdir(osp.join(args.data_root, 'annotations')):
        p.error(f'no dataset at --data-root {args.data_root}; make it with '
                f'python -m mmdet_plugins.datasets.fashion_canvas {args.data_root}')
    if args.device == 'cpu' and 'fast-bf16' in args.variants:
        p.error('fast-bf16 needs a GPU (it changes the AMP dtype; the CPU runs fp32)')
    device = torch.device(args.device)
    measured, failures, skipped = {}, [], set()  # (config, variant) -> one row per round
    for round_ in range(1, args.rounds + 1):
        if args.rounds > 1:
            print(f'round {round_}/{args.rounds}', flush=True)
        for config in args.configs:
            for variant in args.variants:
                if (config, variant) in skipped:
                    continue
                try:
                    options = variant_options(config, variant)
                except ValueError as e:
                    print(f'skipped: {e}', flush=True)
                    skipped.add((config, variant))
                    continue
                row = measure(config, variant, options, args, device, failures)
                if row is not None:
                    measured.setdefault((config, variant), []).append(dict(row, round=round_))
                    # after every run: a time limit loses only the run under way
                    write_speed_csv(combine_rounds(measured), args, device)
    rows = combine_rounds(measured)
    if not rows:
        print(f'error: no run finished ({len(failures)} failed)', flush=True)
        return 1
    df = write_speed_csv(rows, args, device)
    print(df[['config', 'variant', 's_per_iter', 'speedup_vs_stock', 'bf_over_baseline', 'gpu_util_smi',
              'peak_gib']].to_string(index=False))
    print(f'wrote {args.out}')
    if failures:
        print(f'error: {len(failures)} runs failed: {", ".join(failures)}', flush=True)
        return 1
    return 0


def measure(config, variant, options, args, device, failures):
    """One measurement of ``config`` as ``variant`` (a dict row), or None when it failed (recorded in
    ``failures``: one failing variant must not lose the others' rows)."""
    import pandas as pd
    from mmdet_plugins.utils.provenance import atomic_write_text
    from reproduce.bench.profile_train_step import profile_config
    run_args = argparse.Namespace(data_root=args.data_root, warmup=args.warmup, iters=args.iters,
                                  profile_iters=args.profile_iters, batch_size=args.batch_size,
                                  cfg_options=options, sync_trace=args.sync_trace,
                                  chrome_trace=args.chrome_trace,
                                  trace_dir=osp.join(args.trace_dir, variant) if args.trace_dir else None)
    started = time.perf_counter()
    try:
        summary, parts = profile_config(config, run_args, device)
    except Exception as e:  # noqa: BLE001  (one failing variant must not lose the others' rows)
        print(f'error: {osp.basename(config)} [{variant}] failed: {type(e).__name__}: {e}', flush=True)
        failures.append(f'{config} [{variant}]')
        return None
    if run_args.trace_dir:  # where the step's host and GPU time go, by labelled part
        name = osp.splitext(osp.basename(config))[0]
        atomic_write_text(osp.join(run_args.trace_dir, f'{name}_parts.csv'),
                          pd.DataFrame(parts).to_csv(index=False))
    print(f'{osp.basename(config)} [{variant}]: {summary["s_per_iter"]:.3f} s/iter '
          f'({time.perf_counter() - started:.0f} s for the whole measurement)', flush=True)
    return dict(config=config, variant=variant, s_per_iter=summary['s_per_iter'],
                gpu_util_smi=summary['gpu_util_smi'], gpu_busy_profiled=summary['gpu_busy'],
                syncs_per_iter=summary['stream_syncs_per_iter'], peak_gib=summary['peak_gib'],
                batch_size=summary['batch_size'])


def combine_rounds(measured) -> list:
    """One row per (config, variant) from its rounds' rows (each with its ``round``, from 1): the median seconds
    per iteration (the lower middle value for an even count, so it is a measured one) and the range, the other
    columns of that round, and the seconds of every round so far in round order (``s_per_iter_rounds``,
    ';'-separated, ``nan`` for a round whose measurement failed), to pair rounds across variants."""
    last_round = max((r['round'] for rounds in measured.values() for r in rounds), default=0)
    rows = []
    for rounds in measured.values():
        ordered = sorted(rounds, key=lambda r: r['s_per_iter'])
        middle = dict(ordered[(len(ordered) - 1) // 2])
        middle.pop('round')
        by_round = {r['round']: r['s_per_iter'] for r in rounds}
        middle.update(it_per_s=round(1.0 / middle['s_per_iter'], 3), rounds=len(ordered),
                      s_per_iter_min=ordered[0]['s_per_iter'], s_per_iter_max=ordered[-1]['s_per_iter'],
                      s_per_iter_rounds=';'.join(f'{by_round[k]:.4f}' if k in by_round else 'nan'
                                                 for k in range(1, last_round + 1)))
        rows.append(middle)
    return rows


def paired_speedups(stock_rounds: str, variant_rounds: str) -> list:
    """Stock's seconds over the variant's, round by round (both ';'-separated, in round order, ``nan`` for a
    failed measurement; the measurements of one round ran minutes apart, under the same host conditions). Rounds
    missing on either side are left out."""
    stock = [float(x) for x in str(stock_rounds).split(';')]
    variant = [float(x) for x in str(variant_rounds).split(';')]
    return [s / v for s, v in zip(stock, variant) if not (math.isnan(s) or math.isnan(v))]


def write_speed_csv(rows, args, device):
    """The CSV of the runs so far, with the ratios and provenance (atomically replaced)."""
    import pandas as pd
    from mmdet_plugins.utils.provenance import atomic_write_text, git_commit, hardware, today
    df = pd.DataFrame(rows)
    stock = {r.config: r for r in df.itertuples() if r.variant == 'stock'}
    df['speedup_vs_stock'] = [round(stock[c].s_per_iter / s, 2) if c in stock else float('nan')
                              for c, s in zip(df.config, df.s_per_iter)]
    # the speed-up's range over rounds, each round's stock against the same round's variant
    paired = [paired_speedups(stock[c].s_per_iter_rounds, v) if c in stock else []
              for c, v in zip(df.config, df.s_per_iter_rounds)]
    df['speedup_rounds_min'] = [round(min(p), 2) if p else float('nan') for p in paired]
    df['speedup_rounds_max'] = [round(max(p), 2) if p else float('nan') for p in paired]
    base = {(r.config, r.variant): r.s_per_iter for r in df.itertuples()}
    df['bf_over_baseline'] = [round(s / base[(baseline_of(c), v)], 2) if is_bf_config(c)
                              and (baseline_of(c), v) in base else float('nan')
                              for c, v, s in zip(df.config, df.variant, df.s_per_iter)]
    df['warmup'], df['iters'] = args.warmup, args.iters
    df['hardware'] = hardware(device if device.type == 'cuda' else None)
    df['torch'] = torch.__version__
    df['commit'], df['date'] = git_commit(), today()
    atomic_write_text(args.out, df.to_csv(index=False))
    return df


if __name__ == '__main__':
    sys.exit(main())
