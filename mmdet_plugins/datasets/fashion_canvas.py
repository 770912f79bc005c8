"""Fashion-MNIST canvases: a small real-image detection (and panoptic) benchmark, generated deterministically.

Fashion-MNIST's 28x28 item images (Debian package ``dataset-fashion-mnist``) are resized, tinted and pasted,
1 to ``max_items`` per canvas, onto procedurally textured canvases. Each canvas's background is split into one
or two regions, each of a texture class (``stripes``, ``checks``, ``speckle``): the "stuff" of the panoptic
annotations. Items pasted later occlude earlier ones; an item whose visible pixels are less than
``min_visible`` of its own pixels is not a target (its visible pixels are void in the panoptic annotation).
Boxes are tight around each target's visible pixels.

The training split samples Fashion-MNIST's train images with a long-tailed class mix: class k (in Fashion-MNIST's
label order) has probability proportional to ``imbalance_ratio ** (-k / 9)``, so the most frequent class is
``imbalance_ratio`` times as frequent as the rarest. The validation split samples Fashion-MNIST's test images with
balanced classes. Same arguments, same bytes.

Output under ``out_dir``::

    train/*.png, val/*.png                      canvases
    annotations/instances_{train,val}.json      COCO detection (10 thing classes, ids 1..10)
    annotations/panoptic_{train,val}.json       COCO panoptic (things + 3 stuff classes, ids 11..13)
    annotations/panoptic_{train,val}/*.png      panoptic id maps (id = R + 256 G + 256^2 B)
    meta.json                                   the arguments and per-class counts

Command: ``python -m mmdet_plugins.datasets.fashion_canvas OUT_DIR [--scale mini|smoke] [...]``
(also installed as ``bf-make-fashion-canvas``).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import os.path as osp
import shutil
import struct
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from ..utils.provenance import atomic_write_text

# where the Debian package dataset-fashion-mnist puts the files; $FASHION_MNIST_DIR points elsewhere
FASHION_MNIST_DIR = os.environ.get('FASHION_MNIST_DIR', '/usr/share/datasets/fashion-mnist')
THING_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag',
                 'Ankle boot')
STUFF_CLASSES = ('stripes', 'checks', 'speckle')
SPLIT_FILES = {'train': 'train', 'val': 't10k'}


@dataclass
class CanvasSpec:
    """What to generate. ``mini`` and ``smoke`` presets: :data:`PRESETS`."""
    num_train: int = 4000
    num_val: int = 500
    canvas_size: int = 320
    min_item: int = 32
    max_item: int = 128
    max_items: int = 8
    imbalance_ratio: float = 16.0
    min_visible: float = 0.5
    seed: int = 0


PRESETS = {
    'mini': CanvasSpec(),
    'smoke': CanvasSpec(num_train=24, num_val=8, canvas_size=128, min_item=24, max_item=56, max_items=4),
}


class MissingFashionMNIST(FileNotFoundError):
    pass


def _read_idx(path: str) -> np.ndarray:
    with gzip.open(path, 'rb') as f:
        data = f.read()
    magic, = struct.unpack('>I', data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(split: str, root: str = None):
    """``(images (n, 28, 28) uint8, labels (n,) uint8)`` of Fashion-MNIST's ``train`` or ``val`` (= t10k) split."""
    root = root or FASHION_MNIST_DIR
    prefix = SPLIT_FILES[split]
    paths = [osp.join(root, f'{prefix}-images-idx3-ubyte.gz'), osp.join(root, f'{prefix}-labels-idx1-ubyte.gz')]
    missing = [p for p in paths if not osp.isfile(p)]
    if missing:
        raise MissingFashionMNIST(
            f'Fashion-MNIST files not found: {missing}. Install the Debian package: '
            f'`apt-get install dataset-fashion-mnist` (setup.sh does this as root), or pass --fashion-mnist DIR '
            f'holding the four *-ubyte.gz files.')
    images, labels = _read_idx(paths[0]), _read_idx(paths[1])
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise ValueError(f'Fashion-MNIST {split} files under {root} are malformed: images {images.shape}, '
                         f'labels {labels.shape}')
    return images, labels


def class_probabilities(imbalance_ratio: float, num_classes: int = 10) -> np.ndarray:
    """Exponential long-tail profile: p_k proportional to ratio^(-k/(C-1)); ratio 1 gives balanced classes."""
    if imbalance_ratio < 1:
        raise ValueError(f'imbalance_ratio must be >= 1, got {imbalance_ratio}')
    p = imbalance_ratio ** (-np.arange(num_classes) / (num_classes - 1))
    return p / p.sum()


def _texture(kind: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """(h, w, 3) float32 texture in [0, 1] of stuff class ``kind``, random colours and scale."""
    c1, c2 = rng.uniform(0.05, 0.6, size=3), rng.uniform(0.05, 0.6, size=3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if STUFF_CLASSES[kind] == 'stripes':
        angle, period = rng.uniform(0, np.pi), rng.uniform(6, 18)
        t = (np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) > 0).astype(np.float32)
    elif STUFF_CLASSES[kind] == 'checks':
        cell = rng.uniform(8, 24)
        t = ((np.floor(xx / cell) + np.floor(yy / cell)) % 2).astype(np.float32)
    else:  # speckle
        t = (rng.random((h, w)) > 0.5).astype(np.float32)
    return (c1[None, None] * (1 - t[..., None]) + c2[None, None] * t[..., None]).astype(np.float32)


def _resize(item: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(item).resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0


def _bbox(mask: np.ndarray):
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return [int(x0), int(y0), int(x1 - x0), int(y1 - y0)]


def make_canvas(images, pools, class_p, spec: CanvasSpec, rng: np.random.Generator):
    """One canvas.

    Returns:
        (rgb (S, S, 3) uint8, panoptic id map (S, S) int32 with 0 = void, segments: list of dicts with
        ``id``, ``category_id`` (1-based, things 1..10, stuff 11..13), ``isthing``, ``mask`` (S, S) bool).
    """
    S = spec.canvas_size
    # background: one or two texture regions (split along a random axis)
    stuff = np.zeros((S, S), np.int64)
    kinds = rng.integers(0, len(STUFF_CLASSES), size=2)
    if rng.random() < 0.5:
        cut = int(rng.integers(S // 4, 3 * S // 4))
        if rng.random() < 0.5:
            stuff[:, cut:] = 1
        else:
            stuff[cut:, :] = 1
    rgb = np.where((stuff == 0)[..., None], _texture(kinds[0], S, S, rng), _texture(kinds[1], S, S, rng))

    owner = np.full((S, S), -1, np.int64)  # index of the item that shows at each pixel
    items = []
    for _ in range(int(rng.integers(1, spec.max_items + 1))):
        label = int(rng.choice(10, p=class_p))
        index = int(pools[label][rng.integers(len(pools[label]))])
        size = int(rng.integers(spec.min_item, spec.max_item + 1))
        alpha = _resize(images[index], size)
        x0, y0 = int(rng.integers(0, S - size + 1)), int(rng.integers(0, S - size + 1))
        tint = rng.uniform(0.45, 1.0, size=3).astype(np.float32)
        region = rgb[y0:y0 + size, x0:x0 + size]
        a = alpha[..., None]
        region[:] = a * tint[None, None] + (1 - a) * region
        full = np.zeros((S, S), bool)
        full[y0:y0 + size, x0:x0 + size] = alpha > 0.2
        if not full.any():
            continue
        owner[full] = len(items)
        items.append(dict(label=label, full=full))

    pan = np.zeros((S, S), np.int32)
    segments = []
    next_id = 1
    for i, item in enumerate(items):
        visible = owner == i
        if visible.sum() < spec.min_visible * item['full'].sum():
            continue  # mostly hidden: not a target; its visible pixels stay void (0)
        pan[visible] = next_id
        segments.append(dict(id=next_id, category_id=item['label'] + 1, isthing=1, mask=visible))
        next_id += 1
    background = owner < 0
    for region in (0, 1):
        kind = int(kinds[region])
        mask = background & (stuff == region)
        if not mask.any():
            continue
        same = [s for s in segments if not s['isthing'] and s['category_id'] == len(THING_CLASSES) + 1 + kind]
        if same:  # both regions of one texture class: one segment
            same[0]['mask'] |= mask
            pan[mask] = same[0]['id']
            continue
        pan[mask] = next_id
        segments.append(dict(id=next_id, category_id=len(THING_CLASSES) + 1 + kind, isthing=0, mask=mask))
        next_id += 1
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8), pan, segments


def _id_to_rgb(pan: np.ndarray) -> np.ndarray:
    return np.stack([pan % 256, pan // 256 % 256, pan // 65536], -1).astype(np.uint8)


_WORKER_STATE = {}


def _canvas_job(i: int):
    """Generate and save canvas ``i`` of the split set up in ``_WORKER_STATE``; returns its segments' info.

    Each canvas has its own random stream (seeded by the dataset seed, the split and ``i``), so the output
    does not depend on the number of processes or the order they run in.
    """
    st = _WORKER_STATE
    spec, split = st['spec'], st['split']
    rng = np.random.default_rng([spec.seed, 0 if split == 'train' else 1, i])
    rgb, pan, segments = make_canvas(st['images'], st['pools'], st['class_p'], spec, rng)
    name = f'{split}_{i:06d}.png'
    Image.fromarray(rgb).save(osp.join(st['img_dir'], name))
    Image.fromarray(_id_to_rgb(pan)).save(osp.join(st['pan_dir'], name))
    return name, [dict(id=seg['id'], category_id=seg['category_id'], isthing=seg['isthing'],
                       bbox=_bbox(seg['mask']), area=int(seg['mask'].sum())) for seg in segments]


def generate_split(split: str, out_dir: str, spec: CanvasSpec, images, labels, workers: int = 0, log=print):
    """Generate one split (``train`` or ``val``); returns the number of boxes per class."""
    count = spec.num_train if split == 'train' else spec.num_val
    img_dir, pan_dir = osp.join(out_dir, split), osp.join(out_dir, 'annotations', f'panoptic_{split}')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(pan_dir, exist_ok=True)
    _WORKER_STATE.update(
        spec=spec, split=split, images=images, img_dir=img_dir, pan_dir=pan_dir,
        pools=[np.flatnonzero(labels == k) for k in range(10)],
        class_p=class_probabilities(spec.imbalance_ratio if split == 'train' else 1.0))
    workers = workers or min(16, os.cpu_count() or 1)
    if workers > 1:
        import multiprocessing
        with multiprocessing.get_context('fork').Pool(workers) as pool:
            results = pool.map(_canvas_job, range(count), chunksize=16)
    else:
        results = [_canvas_job(i) for i in range(count)]
    det_images, det_anns, pan_anns = [], [], []
    for i, (name, segments) in enumerate(results):
        image_id = i + 1
        det_images.append(dict(id=image_id, file_name=name, height=spec.canvas_size, width=spec.canvas_size))
        infos = []
        for seg in segments:
            infos.append(dict(id=seg['id'], category_id=seg['category_id'], iscrowd=0, bbox=seg['bbox'],
                              area=seg['area']))
            if seg['isthing']:
                det_anns.append(dict(id=len(det_anns) + 1, image_id=image_id, category_id=seg['category_id'],
                                     bbox=seg['bbox'], area=seg['area'], iscrowd=0))
        pan_anns.append(dict(image_id=image_id, file_name=name, segments_info=infos))
    if log:
        log(f'[fashion_canvas] {split}: {count} canvases, {len(det_anns)} boxes')
    things = [dict(id=k + 1, name=n, supercategory='item', isthing=1) for k, n in enumerate(THING_CLASSES)]
    stuffs = [dict(id=len(THING_CLASSES) + 1 + k, name=n, supercategory='texture', isthing=0)
              for k, n in enumerate(STUFF_CLASSES)]
    ann_dir = osp.join(out_dir, 'annotations')
    _dump(osp.join(ann_dir, f'instances_{split}.json'),
          dict(images=det_images, annotations=det_anns,
               categories=[{k: v for k, v in c.items() if k != 'isthing'} for c in things]))
    _dump(osp.join(ann_dir, f'panoptic_{split}.json'),
          dict(images=det_images, annotations=pan_anns, categories=things + stuffs))
    counts = np.bincount([a['category_id'] - 1 for a in det_anns], minlength=10)
    return {THING_CLASSES[k]: int(c) for k, c in enumerate(counts)}


def _dump(path, obj):
    atomic_write_text(path, json.dumps(obj, separators=(',', ':')))


def generate(out_dir: str, spec: CanvasSpec, fashion_mnist: str = None, workers: int = 0,
             log=print, replace: bool = False) -> dict:
    """Generate both splits into ``out_dir`` (built in ``out_dir + '.partial'``, then renamed, so an
    interrupted run leaves no half-written dataset). Returns the meta dict (also written to meta.json).

    ``out_dir`` must be absent or empty; with ``replace=True`` it may also hold a canvas dataset (a
    ``meta.json`` of this generator), which is replaced. Anything else is never written into.

    Raises:
        FileExistsError: ``out_dir`` holds something else.
        MissingFashionMNIST: the Fashion-MNIST files are not found.
    """
    held = sorted(os.listdir(out_dir)) if osp.isdir(out_dir) else []
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise FileExistsError(f'{out_dir} is a file, not a folder: choose another output folder')
    if held and not (replace and read_spec(out_dir) is not None):
        what = 'a canvas dataset (pass --force to replace it)' if read_spec(out_dir) is not None else \
            f'other files ({", ".join(held[:5])}{", ..." if len(held) > 5 else ""}), so it is left as it is'
        raise FileExistsError(f'{out_dir} is not empty: it holds {what}; choose an absent or empty folder')
    data = {s: load_fashion_mnist(s, fashion_mnist) for s in ('train', 'val')}
    partial = out_dir.rstrip('/') + '.partial'
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    meta = dict(spec=asdict(spec), thing_classes=list(THING_CLASSES), stuff_classes=list(STUFF_CLASSES),
                source='Fashion-MNIST (Debian dataset-fashion-mnist): train split -> train, t10k -> val')
    for split in ('train', 'val'):
        meta[f'{split}_boxes_per_class'] = generate_split(split, partial, spec, *data[split], workers=workers,
                                                          log=log)
    _dump(osp.join(partial, 'meta.json'), meta)
    if held:  # a canvas dataset, replaced (replace=True)
        shutil.rmtree(out_dir)
    os.replace(partial, out_dir)  # (onto an empty folder too)
    return meta


def read_spec(out_dir: str):
    """The settings (a dict) the canvas dataset at ``out_dir`` was made with, from its ``meta.json``; None when
    ``out_dir`` holds no canvas dataset."""
    try:
        with open(osp.join(out_dir, 'meta.json')) as f:
            spec = json.load(f)['spec']
        return spec if isinstance(spec, dict) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_complete(out_dir: str, spec: CanvasSpec) -> bool:
    """True when ``out_dir`` holds a finished dataset generated with exactly ``spec``."""
    return read_spec(out_dir) == asdict(spec)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out_dir')
    parser.add_argument('--scale', choices=sorted(PRESETS), default='mini')
    parser.add_argument('--fashion-mnist', default=FASHION_MNIST_DIR, help='folder with the four *-ubyte.gz files')
    for field, default in asdict(CanvasSpec()).items():
        parser.add_argument('--' + field.replace('_', '-'), type=type(default), default=None,
                            help=f'override the preset (mini: {default})')
    parser.add_argument('--workers', type=int, default=0, help='processes (default: the CPU count, at most 16)')
    parser.add_argument('--force', action='store_true',
                        help='replace a canvas dataset that is there (a folder holding anything else is never '
                             'written into)')
    args = parser.parse_args(argv)
    spec = CanvasSpec(**{**asdict(PRESETS[args.scale]),
                         **{k: getattr(args, k) for k in asdict(CanvasSpec()) if getattr(args, k) is not None}})
    if not args.force and is_complete(args.out_dir, spec):
        print(f'[fashion_canvas] {args.out_dir} is complete for these settings; nothing to do (--force to redo)')
        return
    try:
        meta = generate(args.out_dir, spec, args.fashion_mnist, workers=args.workers, replace=args.force)
    except (MissingFashionMNIST, FileExistsError) as e:
        raise SystemExit(f'error: {e}')
    print(f'[fashion_canvas] wrote {args.out_dir}: train boxes per class {meta["train_boxes_per_class"]}')


if __name__ == '__main__':
    main()
