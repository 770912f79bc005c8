"""What each stream of a trained BatchFormerV2 DeiT predicts: the plain model (module off, as evaluated) against the
module's stream, on the test split and on the long-tailed training split.

    python analysis/stream_accuracy.py CONFIG CHECKPOINT [--batch-size 256] [--out JSON] [--max-items N]
    python analysis/stream_accuracy.py --render JSON ... [--table MD]     (a markdown table of stored analyses)

For a classification config (``configs/deit/mini/*.py``) and its checkpoint, over the test split in its order and
the training split in a seeded random order (the long-tailed batches the module saw in training), batches of
``--batch-size`` images, no augmentation:

- ``eval``: the model in eval mode, what validation measures (the module skipped);
- ``module``: the backbone in training mode with every dropout and drop-path switched off, so the module runs
  deterministically: for ``two_stream`` the second stream (the first must equal ``eval``; the largest logit
  difference is reported), for ``released`` the whole batch (the module's output replaced it);
- ``token_norm``: the mean L2 norm of a token entering the module (the output of block k) and of a token leaving
  it, the scale the later, shared blocks see in each stream.

Accuracy is top-1 overall and the mean per-class accuracy of the many-, medium- and few-shot classes (the
``LongTailAccuracy`` groups). Writes a JSON with provenance.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)


def group_accuracy(pred, labels, train_counts, many_min: int = 1000, few_max: int = 200) -> dict:
    """``LongTailAccuracy``'s numbers (top-1 and the many/medium/few-shot means, %) and each class's accuracy (%,
    NaN for a class without samples), rounded to 3 decimals.

    Args: ``pred`` and ``labels`` (N,) int tensors; ``train_counts`` training images per class."""
    from mmdet_plugins.classification.long_tail_metric import long_tail_accuracy
    pred, labels = pred.numpy(), labels.numpy()
    out = long_tail_accuracy(pred, labels, train_counts, many_min, few_max)
    out['per_class'] = [100.0 * float((pred[labels == c] == c).mean()) if (labels == c).any() else float('nan')
                        for c in range(len(train_counts))]
    return {k: (round(v, 3) if isinstance(v, float) else [round(x, 3) for x in v]) for k, v in out.items()}


def _deterministic_train_mode(model):
    """The model in training mode (so the backbone runs its module) with dropout and drop-path off."""
    from torch import nn
    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout) or type(m).__name__ == 'DropPath':
            m.eval()


def stream_predictions(model, dataset, order, batch_size: int):
    """Run ``model`` over ``dataset[order]`` in batches. Returns a dict of (N,) tensors ``labels``, ``eval``,
    ``module`` (None for a model without the module), the largest |logit| difference between the two-stream
    forward's plain stream and the eval forward, and the mean token norms entering and leaving the module."""
    import torch
    backbone = model.backbone
    mode = getattr(backbone, 'bf_mode', 'off')
    norms = {'in': [], 'out': []}
    handles = []
    if mode != 'off':
        k = backbone.bf_insert_idx[0]
        handles.append(backbone.layers[k].register_forward_hook(
            lambda mod, a, y: norms['in'].append(float(y.detach().norm(dim=-1).mean())) if mod.training else None))
        bf = backbone.batchformer if backbone.bf_shared else backbone.batchformer[0]
        handles.append(bf.register_forward_hook(
            lambda mod, a, y: norms['out'].append(float(y.detach().norm(dim=-1).mean()))))
    labels, ev, mo, diff = [], [], [], 0.0
    try:
        with torch.no_grad():
            for s in range(0, len(order), batch_size):
                batch = dataset.__getitems__([int(i) for i in order[s:s + batch_size]])
                data = model.data_preprocessor(batch, training=False)
                x = data['inputs']
                labels.append(torch.cat([d.gt_label.reshape(-1) for d in data['data_samples']]).cpu())
                model.eval()
                logits = model(x, mode='tensor')
                ev.append(logits.argmax(1).cpu())
                if mode == 'off':
                    continue
                _deterministic_train_mode(model)
                both = model(x, mode='tensor')
                if mode == 'two_stream':
                    b = x.size(0)
                    diff = max(diff, float((both[:b] - logits).abs().max()))
                    both = both[b:]
                mo.append(both.argmax(1).cpu())
    finally:
        for h in handles:
            h.remove()
        model.eval()
    mean = (lambda v: round(sum(v) / len(v), 4) if v else None)
    return dict(labels=torch.cat(labels), eval=torch.cat(ev), module=torch.cat(mo) if mo else None,
                plain_vs_eval_max_abs_logit_diff=diff if mode == 'two_stream' else None,
                token_norm=dict(entering_module=mean(norms['in']), leaving_module=mean(norms['out'])))


def analyse(cfg, checkpoint: str, batch_size: int = 256, max_items=None, seed: int = 0, device=None) -> dict:
    """The JSON-ready analysis of one trained classification model (module docstring)."""
    import torch
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    import mmdet_plugins.classification  # noqa: F401  (registers the model and the dataset)
    from mmdet_plugins.runtime import apply_config_matmul_precision
    from mmpretrain.registry import DATASETS, MODELS
    init_default_scope('mmpretrain')
    device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    apply_config_matmul_precision(cfg)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    model.to(device)
    ev = cfg.get('val_evaluator', {})
    groups = dict(many_min=ev.get('many_min', 1000), few_max=ev.get('few_max', 200))  # the config's metric groups
    out = dict(mode=getattr(model.backbone, 'bf_mode', 'off'), batch_size=batch_size, splits={})
    g = torch.Generator().manual_seed(seed)
    for split, loader in (('test', cfg.test_dataloader), ('train', cfg.train_dataloader)):
        ds_cfg = dict(loader.dataset)
        if max_items is not None:
            ds_cfg['max_items'] = max_items
        ds = DATASETS.build(ds_cfg)
        counts = ds.metainfo['train_counts']
        order = torch.arange(len(ds)) if split == 'test' else torch.randperm(len(ds), generator=g)
        p = stream_predictions(model, ds, order.tolist(), batch_size)
        res = dict(images=len(order), eval=group_accuracy(p['eval'], p['labels'], counts, **groups),
                   token_norm=p['token_norm'])
        if p['module'] is not None:
            res['module'] = group_accuracy(p['module'], p['labels'], counts, **groups)
            res['plain_vs_eval_max_abs_logit_diff'] = p['plain_vs_eval_max_abs_logit_diff']
        out['splits'][split] = res
    return out


ARM_OF_MODE = {'off': 'baseline', 'two_stream': 'BF (two streams)', 'released': 'BF as released'}


def render(analyses) -> str:
    """A markdown table of analyses (the dicts ``analyse`` returns, with provenance), one line per run and split."""
    lines = ['| run | split | eval: top-1 / many / medium / few | module on: top-1 / many / medium / few | '
             'token norm into / out of the module |', '|---|---|---|---|---|']
    fmt = (lambda r: ' / '.join(f'{r[k]:.1f}' for k in ('top1', 'many', 'medium', 'few')) if r else '–')
    for a in analyses:
        for split in ('test', 'train'):
            r = a['splits'][split]
            n = r['token_norm']
            norms = f"{n['entering_module']:.1f} / {n['leaving_module']:.1f}" if n.get('entering_module') else '–'
            lines.append(f"| {ARM_OF_MODE.get(a['mode'], a['mode'])} (`{osp.basename(a['config'])}`) | {split} "
                         f"({r['images']} images) | {fmt(r['eval'])} | {fmt(r.get('module'))} | {norms} |")
    prov = sorted({f"{a['hardware']}, commit {a['commit']}, {a['date']}" for a in analyses})
    lines += ['', 'Accuracy in % (`analysis/stream_accuracy.py`): eval = the model as validated (module off); module on '
              '= the module\'s stream with dropout and drop-path off (two streams: the second; released: the whole '
              'batch), in batches of ' + ', '.join(sorted({str(a['batch_size']) for a in analyses})) + ' images, the '
              'training split in a random order. Token norm: the mean L2 norm of a token entering the module (block '
              'k\'s output) and leaving it. Measured on: ' + '; '.join(prov), '']
    return '\n'.join(lines)


def main_render(paths, table) -> int:
    from mmdet_plugins.utils.provenance import atomic_write_text
    analyses = []
    for path in paths:
        try:
            with open(path) as f:
                a = json.load(f)
            missing = [k for k in ('mode', 'config', 'batch_size', 'hardware', 'commit', 'date') if k not in a]
            missing += [f'splits.{s}.eval' for s in ('test', 'train') if 'eval' not in a.get('splits', {}).get(s, {})]
            if missing:
                raise KeyError(', '.join(missing))
            analyses.append(a)
        except FileNotFoundError:
            print(f'error: {path} not found', file=sys.stderr)
            return 2
        except (ValueError, KeyError, TypeError) as e:
            print(f'error: {path} is not an analysis written by this script ({type(e).__name__}: {e}); '
                  'write it with CONFIG CHECKPOINT --out', file=sys.stderr)
            return 2
    text = render(analyses)
    if table:
        atomic_write_text(table, text)
        print(f'wrote {table}')
    else:
        print(text)
    return 0


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if '--render' in argv:
        p = argparse.ArgumentParser(description='render stored analyses as a markdown table')
        p.add_argument('--render', nargs='+', required=True, metavar='JSON')
        p.add_argument('--table', default=None, help='markdown file to write (default: print)')
        args = p.parse_args(argv)
        return main_render(args.render, args.table)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--batch-size', type=int, default=256)
    p.add_argument('--max-items', type=int, default=None, help='use only the first N images of each split')
    p.add_argument('--seed', type=int, default=0, help='order of the training split')
    p.add_argument('--out', default=None, help='JSON to write (default: print)')
    args = p.parse_args(argv)
    if args.batch_size < 1:
        p.error('--batch-size must be at least 1')
    for what, path in (('config', args.config), ('checkpoint', args.checkpoint)):
        if not osp.isfile(path):
            print(f'error: {what} {path} not found', file=sys.stderr)
            return 2
    from mmengine.config import Config
    from mmdet_plugins.utils.provenance import atomic_write_text, git_commit, hardware, today
    cfg = Config.fromfile(args.config)
    try:
        res = analyse(cfg, args.checkpoint, args.batch_size, args.max_items, args.seed)
    except FileNotFoundError as e:  # a missing Fashion-MNIST: the dataset's own one-line message
        print(f'error: {e}', file=sys.stderr)
        return 2
    import torch
    res.update(config=osp.relpath(osp.abspath(args.config), REPO), checkpoint=osp.basename(args.checkpoint),
               hardware=hardware('cuda' if torch.cuda.is_available() else 'cpu'), torch=torch.__version__,
               commit=git_commit(), date=today())
    text = json.dumps(res, indent=1)
    if args.out:
        atomic_write_text(args.out, text + '\n')
        print(f'wrote {args.out}')
    else:
        print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
