"""Multi-scale deformable attention's backward on the GPU: mmcv's fp16 kernel against ways to compute the same
gradients, side by side in one run, at the mini Deformable DETR's shapes.

Under fp16 AMP, mmcv's ``MultiScaleDeformableAttention`` runs its CUDA kernels in fp16; the backward kernel adds
every sample's contribution to ``grad_value`` with fp16 atomics. It is the largest GPU kernel of a mini Deformable
DETR step (results/measured/profile_mini/traceable/). Backward ways timed here, each on the same fp16 inputs and
upstream gradient:

    mmcv-fp16   mmcv's backward kernel on the fp16 tensors (stock)
    mmcv-fp32   the same kernel on the tensors cast to fp32, the gradients cast back to fp16
    torch-fp32  the vector-Jacobian product of mmcv's pure-PyTorch reference (grid_sample) in fp32, cast back

The reference for the errors is mmcv's kernel in fp64 on the same inputs. Writes one row per shape and way:
milliseconds per backward, ratio to ``mmcv-fp16``, and each gradient's largest error relative to the largest
reference magnitude, with provenance, to ``--out``.

    python reproduce/bench/benchmark_msda.py --out results/measured/msda_backward.csv
    python reproduce/bench/benchmark_msda.py --render results/measured/msda_backward.csv   # the table, no GPU needed

Both write the markdown table to ``--table`` (default results/tables/msda_backward.md; a README block).
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

# (name, batch, (h, w) of each level, queries, reference points per query: 'grid' for the encoder (one query per
# feature-map cell), 'boxes' for the decoder)
SHAPES = {
    'encoder': (16, [(40, 40), (20, 20), (10, 10), (5, 5)], None),
    'encoder-bf': (32, [(40, 40), (20, 20), (10, 10), (5, 5)], None),
    'decoder': (16, [(40, 40), (20, 20), (10, 10), (5, 5)], 50),
}
WAYS = ('mmcv-fp16', 'mmcv-fp32', 'torch-fp32')
NUM_HEADS, HEAD_DIMS, NUM_POINTS = 8, 32, 4


def make_inputs(batch, levels, num_queries, device, seed=0):
    """fp16 inputs shaped as a Deformable DETR layer gives them: ``value`` (bs, keys, heads, dims), the levels'
    shapes and starts, ``locations`` (bs, queries, heads, levels, points, 2) near each query's reference point
    (a cell centre of the first level for the encoder, a random point for the decoder) and softmax-normalised
    ``weights`` (bs, queries, heads, levels, points)."""
    g = torch.Generator(device='cpu').manual_seed(seed)
    shapes = torch.tensor(levels, dtype=torch.long)
    starts = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    num_keys = int(shapes.prod(1).sum())
    num_levels = len(levels)
    if num_queries is None:  # the encoder: every cell of every level is a query at its own centre
        refs = []
        for h, w in levels:
            ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing='ij')
            refs.append(torch.stack([xs.reshape(-1) / w, ys.reshape(-1) / h], -1))
        ref = torch.cat(refs)[None].expand(batch, -1, -1)
    else:
        ref = torch.rand(batch, num_queries, 2, generator=g)
    q = ref.shape[1]
    # offsets of a few cells at each level, as trained sampling offsets are
    wh = shapes.flip(1).float()[None, None, None, :, None, :]
    offsets = torch.randn(batch, q, NUM_HEADS, num_levels, NUM_POINTS, 2, generator=g) * 2.0 / wh
    locations = ref[:, :, None, None, None, :] + offsets
    weights = torch.randn(batch, q, NUM_HEADS, num_levels * NUM_POINTS, generator=g).softmax(-1)
    weights = weights.view(batch, q, NUM_HEADS, num_levels, NUM_POINTS)
    value = torch.randn(batch, num_keys, NUM_HEADS, HEAD_DIMS, generator=g)
    grad_out = torch.randn(batch, q, NUM_HEADS * HEAD_DIMS, generator=g) * 1e-2
    half = dict(device=device, dtype=torch.float16)
    return dict(value=value.to(**half), shapes=shapes.to(device), starts=starts.to(device),
                locations=locations.to(**half), weights=weights.to(**half), grad_out=grad_out.to(**half))


def backward_mmcv(x, dtype):
    """mmcv's backward kernel run in ``dtype``, the gradients in that dtype. It calls the kernel as
    ``ms_deform_attn_backward`` (mmdet_plugins/fast_training/deform_attn.py) does on the GPU, but directly: the
    operator's Python dispatch would add to the timings, most to the decoder's 0.1-ms kernel."""
    from mmcv.ops.multi_scale_deform_attn import ext_module
    value, loc, w, go = (x[k].to(dtype) for k in ('value', 'locations', 'weights', 'grad_out'))
    grads = [torch.zeros_like(value), torch.zeros_like(loc), torch.zeros_like(w)]
    ext_module.ms_deform_attn_backward(value, x['shapes'], x['starts'], loc, w, go.contiguous(), *grads,
                                       im2col_step=64)
    return grads


def backward_torch(x, dtype):
    """The vector-Jacobian product of mmcv's pure-PyTorch reference in ``dtype``."""
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
    value, loc, w, go = (x[k].to(dtype) for k in ('value', 'locations', 'weights', 'grad_out'))
    _, vjp = torch.func.vjp(lambda v, l_, w_: multi_scale_deformable_attn_pytorch(v, x['shapes'], l_, w_),
                            value, loc, w)
    return list(vjp(go))


def run_way(way, x):
    if way == 'mmcv-fp16':
        return backward_mmcv(x, torch.float16)
    if way == 'mmcv-fp32':
        return [g.half() for g in backward_mmcv(x, torch.float32)]
    if way == 'torch-fp32':
        return [g.half() for g in backward_torch(x, torch.float32)]
    raise ValueError(f'unknown way {way!r}; known: {WAYS}')


def time_ms(fn, repeat):
    """Median milliseconds of ``fn()`` over ``repeat`` CUDA-event-timed calls, after 3 warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def render_table(df) -> str:
    """Markdown: one row per shape and way (milliseconds, speed-up over mmcv's fp16 kernel, each gradient's
    largest error relative to the largest float64 gradient), with the provenance."""
    lines = ['| shape | batch x queries | backward | ms | speed-up vs mmcv-fp16 | error: value | error: locations '
             '| error: weights |', '|---|---|---|---|---|---|---|---|']
    for r in df.itertuples():
        lines.append(f'| {r.shape} | {r.batch} x {r.queries} | {r.way} | {r.ms:.2f} | {r.speedup_vs_mmcv_fp16:.2f}x | '
                     f'{float(r.rel_err_value):.1e} | {float(r.rel_err_locations):.1e} | '
                     f'{float(r.rel_err_weights):.1e} |')
    provenance = sorted({f'{r.hardware}, torch {r.torch}, commit {r.commit}, {r.date}' for r in df.itertuples()})
    repeat = int(df['repeat'].iloc[0]) if 'repeat' in df else 20  # (the first stored CSV: the default then, 20)
    lines += ['', 'Multi-scale deformable attention\'s backward on the same fp16 inputs (8 heads of 32 channels, 4 '
              'levels of 40x40 to 5x5, 4 points; `reproduce/bench/benchmark_msda.py`): median of '
              f'{repeat} CUDA-event-timed calls '
              '(casts included). Errors: largest |gradient - float64 gradient| / largest |float64 gradient|, the '
              f'float64 gradients from the same mmcv kernel. Measured on: {"; ".join(provenance)}.']
    return '\n'.join(lines) + '\n'


def main(argv=None):
    import pandas as pd
    from mmdet_plugins.utils.provenance import atomic_write_text, git_commit, hardware, today
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--shapes', nargs='+', choices=sorted(SHAPES), default=list(SHAPES))
    p.add_argument('--ways', nargs='+', choices=WAYS, default=list(WAYS))
    p.add_argument('--repeat', type=int, default=20)
    p.add_argument('--out', default=osp.join(REPO, 'results', 'measured', 'msda_backward.csv'))
    p.add_argument('--table', default=osp.join(REPO, 'results', 'tables', 'msda_backward.md'))
    p.add_argument('--render', metavar='CSV', help='only write the table of this stored CSV (no GPU needed)')
    args = p.parse_args(argv)
    if args.render:
        if not osp.isfile(args.render):
            p.error(f'no CSV at --render {args.render}; make one on a GPU with this script')
        table = render_table(pd.read_csv(args.render))
        atomic_write_text(args.table, table)
        print(table)
        return 0
    if not torch.cuda.is_available():
        p.error('this benchmark times CUDA kernels: run it on a GPU machine')
    device = torch.device('cuda')
    rows = []
    for name in args.shapes:
        batch, levels, num_queries = SHAPES[name]
        x = make_inputs(batch, levels, num_queries, device)
        reference = backward_mmcv(x, torch.float64)
        for way in args.ways:
            ms = time_ms(lambda: run_way(way, x), args.repeat)
            grads = run_way(way, x)
            errors = {f'rel_err_{g}': float((got.double() - ref).abs().max() / ref.abs().max())
                      for g, got, ref in zip(('value', 'locations', 'weights'), grads, reference)}
            rows.append(dict(shape=name, batch=batch, queries=x['locations'].shape[1], way=way, ms=round(ms, 3),
                             **{k: f'{v:.2e}' for k, v in errors.items()}, repeat=args.repeat))
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    stock_ms = {r.shape: r.ms for r in df.itertuples() if r.way == 'mmcv-fp16'}  # (NaN where not timed)
    df.insert(5, 'speedup_vs_mmcv_fp16', [round(stock_ms[s] / ms, 2) if s in stock_ms else float('nan')
                                          for s, ms in zip(df['shape'], df.ms)])
    df['hardware'], df['torch'] = hardware(device), torch.__version__
    df['commit'], df['date'] = git_commit(), today()
    atomic_write_text(args.out, df.to_csv(index=False))
    atomic_write_text(args.table, render_table(df))
    print(df[['shape', 'way', 'ms', 'speedup_vs_mmcv_fp16', 'rel_err_value', 'rel_err_locations',
              'rel_err_weights']].to_string(index=False))
    print(f'wrote {args.out} and {args.table}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
