"""The panoptic figure: the same validation images, DETR and DETR + BatchFormerV2 side by side, drawn from stored
predictions (``panoptic_predictions.json``: mmdet_plugins/analysis/panoptic_predictions_hook.py), no checkpoint or
data needed.

    python analysis/plot_panoptic.py BASELINE.json BATCHFORMER.json -o results/figures/panoptic_mini.png
        [--images N] [--labels A B] [--title T]

One row per image; columns: the image, its ground truth (when the file has it), then each file's prediction, drawn
by mmdet's ``DetLocalVisualizer`` (segment outlines, a colour per class, every segment labelled with its class;
things and stuff alike). Under each prediction: its number of segments and the fraction of pixels left void. The
files must hold the same images (the hook keeps the first images of the validation set, so runs of one table do).
"""
from __future__ import annotations

import argparse
import base64
import json
import os.path as osp
import sys

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from analysis.figure_io import finish_figure  # noqa: E402
from mmdet_plugins.analysis.panoptic_predictions_hook import FORMAT, decode_map  # noqa: E402


def read_predictions(path: str) -> dict:
    """A ``panoptic_predictions.json``, checked; a one-line SystemExit saying what is wrong otherwise."""
    if not osp.isfile(path):
        raise SystemExit(f'error: no such file: {path} (PanopticPredictionsHook writes it in a stage-2 run\'s work '
                         'directory; the panoptic table keeps it as results/logs/panoptic_<scale>/<run>.'
                         'panoptic_predictions.json)')
    try:
        with open(path) as f:
            data = json.load(f)
    except ValueError as e:
        raise SystemExit(f'error: {path}: not json ({e})')
    if not isinstance(data, dict) or data.get('format') != FORMAT:
        raise SystemExit(f'error: {path}: not a panoptic predictions file (no "format": "{FORMAT}")')
    missing = [k for k in ('classes', 'thing_classes', 'instance_offset', 'images') if k not in data]
    if missing or not data['images']:
        raise SystemExit(f'error: {path}: ' + (f'missing {", ".join(missing)}' if missing else 'holds no image'))
    from mmdet.evaluation.functional import INSTANCE_OFFSET
    if data['instance_offset'] != INSTANCE_OFFSET:
        raise SystemExit(f'error: {path}: instance_offset {data["instance_offset"]}, but mmdet draws with '
                         f'{INSTANCE_OFFSET}; the file was written by another mmdet')
    return data


def decoded(path: str, index: int, entry: dict, key: str):
    """An image entry's ``image`` (RGB array) or map (``pred``, ``gt``), or a one-line SystemExit."""
    try:
        return decode_image(entry) if key == 'image' else decode_map(entry[key])
    except (KeyError, TypeError, ValueError) as e:
        raise SystemExit(f'error: {path}: image {index}: its {key!r} cannot be read ({type(e).__name__}: {e})')


def decode_image(entry: dict) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a stored image file."""
    import mmcv
    img = mmcv.imfrombytes(base64.b64decode(entry['image'], validate=True), flag='color', channel_order='rgb')
    if img is None:
        raise ValueError('not an image file')
    return np.ascontiguousarray(img)


def palette(num_classes: int):
    """A fixed colour per class (matplotlib's tab20), so that every panel and every figure agrees."""
    import matplotlib
    cmap = matplotlib.colormaps['tab20']
    return [tuple(int(255 * c) for c in cmap(i % 20)[:3]) for i in range(num_classes)]


def draw_panoptic(image: np.ndarray, seg: np.ndarray, classes, colours) -> np.ndarray:
    """``image`` with the panoptic map ``seg`` (mmdet's encoding) drawn by mmdet's DetLocalVisualizer."""
    import torch
    from mmengine.structures import PixelData
    from mmdet.structures import DetDataSample
    from mmdet.visualization import DetLocalVisualizer
    name = 'bf_panoptic_figure'  # (one visualizer per process, made at the first call)
    vis = DetLocalVisualizer.get_instance(name) if DetLocalVisualizer.check_instance_created(name) else \
        DetLocalVisualizer.get_instance(name, alpha=0.55)
    vis.dataset_meta = dict(classes=tuple(classes), palette=list(colours))
    sample = DetDataSample()
    sample.pred_panoptic_seg = PixelData(sem_seg=torch.as_tensor(seg[None]))
    vis.add_datasample('panel', image, data_sample=sample, draw_gt=False, draw_pred=True, show=False)
    return vis.get_image()


def summary(seg: np.ndarray, num_classes: int) -> str:
    ids = np.unique(seg)
    return f'{int((ids != num_classes).sum())} segments, {100 * float((seg == num_classes).mean()):.0f}% void'


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('files', nargs='+', metavar='JSON', help='panoptic_predictions.json files (one column each)')
    p.add_argument('-o', '--out', required=True, help='PNG to write')
    p.add_argument('--images', type=int, default=None, help='rows: the first N images (default: all)')
    p.add_argument('--labels', nargs='+', default=None, help='column titles (default: the files\' names)')
    p.add_argument('--title', default=None)
    args = p.parse_args(argv)
    if args.labels and len(args.labels) != len(args.files):
        raise SystemExit(f'error: {len(args.labels)} labels for {len(args.files)} files; give one label per file')
    if args.images is not None and args.images < 1:
        raise SystemExit(f'error: --images {args.images}: give at least 1')
    runs = [read_predictions(path) for path in args.files]
    first = runs[0]
    for path, run in zip(args.files[1:], runs[1:]):
        if run['classes'] != first['classes']:
            raise SystemExit(f'error: {path}: its classes differ from {args.files[0]}\'s; plot runs of one dataset')
        if [im['img_id'] for im in run['images']] != [im['img_id'] for im in first['images']]:
            raise SystemExit(f'error: {path} and {args.files[0]} hold different images; plot runs of one table')
    n = len(first['images']) if args.images is None else args.images
    if n > len(first['images']):
        raise SystemExit(f'error: --images {n}: the files hold {len(first["images"])} images')

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    classes, num_classes = first['classes'], len(first['classes'])
    colours = palette(num_classes)
    with_gt = all(im.get('gt') for im in first['images'][:n])
    labels = args.labels or [osp.basename(f).split('.')[0] for f in args.files]
    titles = ['image'] + (['ground truth'] if with_gt else []) + labels
    fig, axes = plt.subplots(n, len(titles), figsize=(2.6 * len(titles), 2.75 * n), squeeze=False)
    for r in range(n):
        entry = first['images'][r]
        image = decoded(args.files[0], r, entry, 'image')
        panels = [(image, entry.get('file_name', ''))]
        maps = ([decoded(args.files[0], r, entry, 'gt')] if with_gt else []) + \
            [decoded(path, r, run['images'][r], 'pred') for path, run in zip(args.files, runs)]
        for seg in maps:
            if seg.shape != image.shape[:2]:
                raise SystemExit(f'error: image {r}: a map of {seg.shape[0]}x{seg.shape[1]} for an image of '
                                 f'{image.shape[0]}x{image.shape[1]}; the file is inconsistent')
            panels.append((draw_panoptic(image, seg, classes, colours), summary(seg, num_classes)))
        for c, (picture, caption) in enumerate(panels):
            ax = axes[r][c]
            ax.imshow(picture)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(caption, fontsize=8)
            if r == 0:
                ax.set_title(titles[c], fontsize=10)
    if args.title:
        fig.suptitle(args.title, fontsize=10)
    finish_figure(fig, args.out)
    print(f'wrote {args.out} ({n} images, {len(runs)} runs)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
