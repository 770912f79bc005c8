"""Do the fast components match and score exactly as stock mmdet on the GPU, on real mini batches?

The CPU tests (tests/mmdet_plugins/fast_training/test_batched_matching.py) show bitwise-equal costs, matchings and losses on small
synthetic problems. This check repeats the comparison where training happens: the repository's mini configs at
their real size, real batches of the mini benchmark, on the GPU, in fp32 and under fp16 autocast (as training).

For every config and batch, the stock detector and the same detector with the batched head and assigner
(``reproduce/bench/benchmark_speed.py``'s ``fast`` options; same weights, dropout off) compute their losses on the
same inputs. Recorded per config and precision:

    targets_identical   fraction of (decoder layer, stream, image) target sets (labels and box targets of every
                        query, i.e. the matching) that are identical to stock
    max_rel_loss_diff   the largest |fast - stock| / max(|stock|, 1e-6) over all loss terms and batches

Writes a CSV with provenance (``--out``, default results/measured/fast_equivalence.csv) and exits 1 when a
fraction is below 1 or a loss differs by more than ``--rtol``.

    python reproduce/bench/check_fast_equivalence.py configs/mini/*-mini.py --data-root data/fashion_canvas

With ``--compiled`` the pair is instead the fast detector run eagerly and the same detector with its layers
compiled by ``torch.compile`` as the config's ``CompileLayersHook`` compiles them (its targets and mode: the encoder
and decoder layers by default, everything in CUDA graphs for configs/mini/cudagraphs/; Inductor,
mmdet_plugins/fast_training/compiled_layers.py): fused kernels round differently, so the check reports how far losses
and gradients move (``max_rel_grad_diff``: the largest |compiled - eager| / max|eager| over parameters) and how
many matchings stay the same, and passes at ``--rtol`` (give a looser one than for the bitwise-equal fast
components). Default ``--out`` then: results/measured/compiled_equivalence.csv.
"""
from __future__ import annotations

import argparse
import copy
import os.path as osp
import sys

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from mmdet_plugins.utils.model_utils import quiet_init_weights, without_dropout  # noqa: E402


class TargetRecorder:
    """Wraps a head's ``get_targets`` (called once per decoder layer and stream) and keeps what it returns:
    per image, the class label and the box target of every query."""

    def __init__(self, head):
        self.calls = []
        original = head.get_targets

        def recording(*args, **kwargs):
            out = original(*args, **kwargs)
            labels, _, bbox_targets = out[0], out[1], out[2]
            self.calls.append([(lab.detach().cpu(), box.detach().float().cpu())
                               for lab, box in zip(labels, bbox_targets)])
            return out
        head.get_targets = recording


def max_rel_diff(got, expected) -> float:
    """max |got - expected| / max(max |expected|, 1e-6), as a float."""
    return ((got - expected).abs().max() / expected.abs().max().clamp(min=1e-6)).item()


def hook_spec(cfg, hook_type: str) -> dict:
    """The first of ``cfg``'s custom hooks of type ``hook_type`` (its config dict), or ``{}``."""
    return next((h for h in cfg.get('custom_hooks') or [] if h.get('type') == hook_type), {})


def config_backward_dtype(cfg):
    """The deformable attention's backward dtype ``cfg`` chooses (its ``TraceableDeformAttnHook``'s
    ``backward_dtype``, read by the hook itself), or None."""
    from mmdet_plugins.fast_training.deform_attn_hook import TraceableDeformAttnHook
    spec = hook_spec(cfg, 'TraceableDeformAttnHook')
    return TraceableDeformAttnHook(backward_dtype=spec.get('backward_dtype')).backward_dtype


def config_compile_options(cfg) -> dict:
    """What ``cfg``'s ``CompileLayersHook`` compiles and how: its ``targets`` and ``mode`` (checked by the hook
    itself), or the hook's defaults when the config has none (as ``configs/mini/compiled/`` compile). The
    hook's other settings are not read: the backend comes from ``--compile-backend``, shapes are static, and
    both sides of the pair get the traceable deformable attention anyway."""
    from mmdet_plugins.fast_training.compiled_layers import CompileLayersHook
    spec = hook_spec(cfg, 'CompileLayersHook')
    hook = CompileLayersHook(**{k: v for k, v in spec.items() if k in ('targets', 'mode')})
    return dict(targets=hook.targets, mode=hook.compile_kwargs['mode'])


def build_pair(cfg, device, compiled=False, backend='inductor'):
    """The stock detector of ``cfg`` (mmdet's head and HungarianAssigner; initialised, seed 0) and the fast one
    (the batched head and assigner; deformable attention through the traceable operator, as
    ``TraceableDeformAttnHook`` does, with the config's backward dtype) with the same weights. ``cfg`` may name
    either. With ``compiled``: the fast detector (eager) and a copy of it whose layers are compiled as the
    config's ``CompileLayersHook`` compiles them (its targets and mode, :func:`config_compile_options`; by
    default the encoder and decoder layers), both with the config's deformable-attention backward."""
    from mmdet.registry import MODELS
    from mmdet_plugins.fast_training.compiled_layers import compile_submodules
    from mmdet_plugins.fast_training.heads import with_matching
    from mmdet_plugins.fast_training.deform_attn import make_deform_attn_traceable
    stock_cfg, fast_cfg = with_matching(cfg.model, batched=compiled), with_matching(cfg.model, batched=True)
    stock_cfg.backbone.init_cfg = None  # random weights: equality does not need a pretrained checkpoint
    fast_cfg.backbone.init_cfg = None
    torch.manual_seed(0)
    stock = MODELS.build(stock_cfg)
    quiet_init_weights(stock)
    fast = MODELS.build(fast_cfg)
    fast.load_state_dict(stock.state_dict(), strict=True)
    backward_dtype = config_backward_dtype(cfg)
    make_deform_attn_traceable(fast, backward_dtype=backward_dtype)
    if compiled:  # both sides as the config trains them; only the compilation differs
        make_deform_attn_traceable(stock, backward_dtype=backward_dtype)
        options = config_compile_options(cfg)
        compile_submodules(fast, options['targets'], backend=backend, mode=options['mode'], dynamic=False)
    return without_dropout(stock).to(device).train(), without_dropout(fast).to(device).train()


def compare_config(config: str, data_root: str, batches: int, batch_size: int, precisions, device,
                   compiled=False, backend='inductor'):
    """One config: a list of result rows, one per precision."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    from reproduce.runner.data import set_data_root
    cfg = Config.fromfile(osp.join(REPO, config))
    set_data_root(cfg, data_root)
    cfg.train_dataloader.batch_size = batch_size
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_dataloader.sampler = dict(type='DefaultSampler', shuffle=True, seed=0)
    cfg.train_dataloader.pop('batch_sampler', None)  # keep plain batches (no aspect-ratio grouping needed)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    stock, fast = build_pair(cfg, device, compiled=compiled, backend=backend)
    from mmdet_plugins.fast_training.compiled_layers import CUDAGRAPH_MODES
    cudagraphs = compiled and config_compile_options(cfg)['mode'] in CUDAGRAPH_MODES
    data = []
    for i, batch in enumerate(loader):
        if i == batches:
            break
        data.append(stock.data_preprocessor(batch, training=True))
    rows = []
    for precision in precisions:
        rec_stock, rec_fast = TargetRecorder(stock.bbox_head), TargetRecorder(fast.bbox_head)
        max_rel, max_rel_grad, same, total, keys = 0.0, 0.0, 0, 0, set()
        for d in data:
            losses, grads = [], []
            for model in (stock, fast):
                torch.manual_seed(1)  # the same denoising queries (DINO) for both
                if cudagraphs and model is fast:  # a new step: the graphs may overwrite the last one's outputs
                    torch.compiler.cudagraph_mark_step_begin()
                with torch.autocast(device.type, dtype=torch.float16, enabled=precision == 'fp16'):
                    out = {k: v for k, v in model.loss(d['inputs'], copy.deepcopy(d['data_samples'])).items()
                           if 'loss' in k}
                if compiled:  # the compiled backward too: gradients of the summed loss
                    model.zero_grad(set_to_none=True)
                    sum(out.values()).backward()
                    # copies: a CUDA graph's replay would overwrite what the graphs' memory holds
                    grads.append({n: p.grad.detach().float().clone() for n, p in model.named_parameters()
                                  if p.grad is not None})
                losses.append({k: v.detach().float().clone() for k, v in out.items()})
            expected, got = losses
            if compiled:
                if set(grads[0]) != set(grads[1]):
                    raise SystemExit(f'error: {config}: parameters with gradients differ: '
                                     f'{sorted(set(grads[0]) ^ set(grads[1]))[:5]}')
                max_rel_grad = max([max_rel_grad] + [max_rel_diff(grads[1][n], g) for n, g in grads[0].items()])
            if set(expected) != set(got):
                raise SystemExit(f'error: {config}: loss keys differ: {sorted(set(expected) ^ set(got))}')
            keys |= set(expected)
            max_rel = max([max_rel] + [max_rel_diff(got[k], v) for k, v in expected.items()])
        if len(rec_stock.calls) != len(rec_fast.calls):
            raise SystemExit(f'error: {config}: {len(rec_stock.calls)} stock target calls vs '
                             f'{len(rec_fast.calls)} fast ones')
        for a, b in zip(rec_stock.calls, rec_fast.calls):
            for (la, ba), (lb, bb) in zip(a, b):
                total += 1
                same += int(torch.equal(la, lb) and torch.allclose(ba, bb, rtol=1e-5, atol=1e-6))
        for head in (stock.bbox_head, fast.bbox_head):
            del head.get_targets  # back to the class's method
        row = dict(config=config, precision=precision, batches=len(data), batch_size=batch_size,
                   target_sets=total, targets_identical=round(same / total, 6) if total else float('nan'),
                   max_rel_loss_diff=float(f'{max_rel:.3g}'), loss_terms=len(keys))
        if compiled:
            row['max_rel_grad_diff'] = float(f'{max_rel_grad:.3g}')
        rows.append(row)
        print(f'{osp.basename(config)} [{precision}]: {same}/{total} target sets identical, '
              f'max relative loss difference {max_rel:.3g}'
              + (f', max relative gradient difference {max_rel_grad:.3g}' if compiled else ''), flush=True)
    return rows


def main(argv=None):
    import pandas as pd
    import mmdet_plugins  # noqa: F401
    from mmdet.utils import register_all_modules
    from mmdet_plugins.utils.provenance import atomic_write_text, git_commit, hardware, today
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('configs', nargs='+')
    p.add_argument('--data-root', default=osp.join(REPO, 'data', 'fashion_canvas'))
    p.add_argument('--batches', type=int, default=3)
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--precisions', nargs='+', choices=['fp32', 'fp16'], default=['fp32', 'fp16'])
    p.add_argument('--rtol', type=float, default=1e-4, help='largest relative loss difference that passes')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--compiled', action='store_true',
                   help='compare the fast detector eager against its compiled layers (see above)')
    p.add_argument('--compile-backend', default='inductor', help="torch.compile's backend with --compiled")
    p.add_argument('--out', default=None, help='default: results/measured/fast_equivalence.csv, '
                   'with --compiled results/measured/compiled_equivalence.csv')
    args = p.parse_args(argv)
    if args.out is None:
        args.out = osp.join(REPO, 'results', 'measured',
                            'compiled_equivalence.csv' if args.compiled else 'fast_equivalence.csv')
    if not osp.isdir(osp.join(args.data_root, 'annotations')):
        p.error(f'no dataset at --data-root {args.data_root}; make it with '
                f'python -m mmdet_plugins.datasets.fashion_canvas {args.data_root}')
    for config in args.configs:
        if not osp.isfile(osp.join(REPO, config)):
            p.error(f'no such config: {config}')
    if args.device == 'cpu' and 'fp16' in args.precisions:
        args.precisions = [x for x in args.precisions if x != 'fp16'] or p.error('fp16 needs a GPU')
    register_all_modules()
    device = torch.device(args.device)
    rows = []
    for config in args.configs:
        rows += compare_config(config, args.data_root, args.batches, args.batch_size, args.precisions, device,
                               compiled=args.compiled, backend=args.compile_backend)
    df = pd.DataFrame(rows)
    df['hardware'] = hardware(device if device.type == 'cuda' else None)
    df['torch'] = torch.__version__
    df['commit'], df['date'] = git_commit(), today()
    atomic_write_text(args.out, df.to_csv(index=False))
    print(f'wrote {args.out}')
    reference = 'the eager fast detector' if args.compiled else 'stock'
    failed = df[(df.targets_identical < 1) | (df.max_rel_loss_diff > args.rtol)]
    if len(failed):
        print(f'{len(failed)} of {len(df)} rows differ from {reference} beyond rtol {args.rtol}:')
        print(failed[['config', 'precision', 'targets_identical', 'max_rel_loss_diff']].to_string(index=False))
        return 1
    print(f'all {len(df)} rows identical to {reference} (targets) and within rtol {args.rtol} (losses)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
