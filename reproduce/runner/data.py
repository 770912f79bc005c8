"""A table's data: what a dataset folder holds, its identity, making the canvases, and clear errors.

The runner writes a dataset only into a folder that is absent or empty. A folder that holds a dataset the
configs can read (a canvas dataset of any settings, or the user's own COCO-format data) is used as it is and never
written into; a folder that holds anything else is refused with one line saying what it found and what to do.

A dataset's identity (the CSV column ``dataset``, part of a run's identity beside its config fingerprint):
``canvas-<12 hex>`` for a canvas dataset (a hash of its generation settings, ``meta.json``), ``ann-<12 hex>`` for
any other (a hash of the annotation files the configs read).
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Optional

from mmdet_plugins.datasets.data_files import (CANVAS_COMMAND, COCO_HINT, dataset_files,  # noqa: F401
                                               missing_dataset_files, set_data_root)


def fail(message: str):
    """Stop the command with one line on stderr, ``error: <message>`` (exit status 1), not a traceback."""
    raise SystemExit(f'error: {message}')


# ---------------------------------------------------------------------------------------------- identity
def canvas_id(canvas_spec: dict) -> str:
    return 'canvas-' + hashlib.sha1(json.dumps(canvas_spec, sort_keys=True).encode()).hexdigest()[:12]


def annotation_id(paths) -> str:
    h = hashlib.sha1()
    for path in sorted(paths):
        h.update(osp.basename(path).encode())
        with open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                h.update(chunk)
    return 'ann-' + h.hexdigest()[:12]


@dataclass
class Dataset:
    """A table's dataset folder as the runner found it.

    Attributes:
        root: the folder (absolute).
        id: its identity (``canvas-...`` or ``ann-...``).
        preset: True when it is (or will be made as) the scale's preset canvases.
        to_make: the folder is absent or empty: the runner generates the preset canvases there.
        description: for messages.
    """
    root: str
    id: str
    preset: bool
    to_make: bool
    description: str


def default_data_root(scale, repo: str) -> str:
    """A scale's dataset folder when ``--data-root`` is not given."""
    if scale.data == 'fashion_mnist' and not scale.data_root:
        from mmdet_plugins.classification.fashion_mnist_lt import default_root
        return default_root()
    return osp.join(repo, scale.data_root)


def fashion_mnist_id(root: str, cfg) -> str:
    """``fmnist-<12 hex>``: a hash of Fashion-MNIST's files and of the training dataset's settings (the
    long-tail profile and its subsample seed, which decide the images a run trains on)."""
    from mmdet_plugins.classification.fashion_mnist_lt import fashion_mnist_files
    h = hashlib.sha1(annotation_id(fashion_mnist_files(root, 'train') + fashion_mnist_files(root, 'test')).encode())
    settings = {k: v for k, v in cfg.train_dataloader.dataset.items() if k != 'data_root'}
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return 'fmnist-' + h.hexdigest()[:12]


def inspect_classification_data(root: str, scale, cfg) -> 'Dataset':
    """Fashion-MNIST (read where it is installed, never written) or the user's ImageNet; one line when missing."""
    missing = missing_dataset_files(cfg)
    if scale.data == 'fashion_mnist':
        from mmdet_plugins.classification.fashion_mnist_lt import INSTALL_HINT
        if missing:
            fail(f'Fashion-MNIST not found at {root} (missing {osp.basename(missing[0])}): {INSTALL_HINT}, or pass '
                 f'--data-root DIR')
        ident = fashion_mnist_id(root, cfg)
        return Dataset(root, ident, False, False, f'Fashion-MNIST at {root}')
    if missing:
        fail(f'ImageNet not found at {root}: missing {[osp.relpath(p, root) for p in missing]}; put ImageNet-1k '
             f'there in mmpretrain\'s layout (train/<class>/*.JPEG, val/..., optionally meta/train.txt and '
             f'meta/val.txt; docs/classification.md), or pass --data-root DIR')
    anns, folders = dataset_files(cfg)
    # (mmpretrain's ImageNet reads meta/<split>.txt by itself when the config names no ann_file)
    metas = sorted({p for p in anns if osp.isfile(p)}
                   | {osp.join(root, 'meta', f) for f in ('train.txt', 'val.txt') if osp.isfile(osp.join(root, 'meta', f))})
    ident = annotation_id(metas) if metas else 'folders-' + hashlib.sha1(
        ' '.join(sorted(os.listdir(folders[0]))).encode()).hexdigest()[:12]
    return Dataset(root, ident, False, False, f'ImageNet at {root}')


def preset_id(scale) -> Optional[str]:
    """The identity of a scale's preset data (its canvases), or None (COCO, ImageNet and Fashion-MNIST scales have
    no preset: their rows always record their dataset)."""
    if scale.data != 'canvas':
        return None
    from mmdet_plugins.datasets.fashion_canvas import PRESETS
    return canvas_id(asdict(PRESETS[scale.canvas_preset]))


def inspect_dataset(root: str, scale, scale_name: str, cfg) -> Dataset:
    """What ``root`` holds for a table at ``scale`` whose runs read what ``cfg`` (data root set) reads.

    Raises SystemExit with one line for a folder that holds something else (it is not written into) and, at a
    COCO scale, for a missing dataset.
    """
    root = osp.abspath(root)
    if scale.data in ('fashion_mnist', 'imagenet'):
        return inspect_classification_data(root, scale, cfg)
    entries = sorted(os.listdir(root)) if osp.isdir(root) else None
    if osp.exists(root) and entries is None:
        fail(f'--data-root {root} is a file, not a folder')
    if scale.data == 'canvas' and not entries:
        return Dataset(root, preset_id(scale), True, True,
                       f'the {scale.canvas_preset} canvas preset, to be made at {root}')
    anns, _ = dataset_files(cfg)
    missing = missing_dataset_files(cfg)
    if scale.data == 'canvas':
        from mmdet_plugins.datasets.fashion_canvas import read_spec
        canvas = read_spec(root)
        if canvas is not None and not missing:
            ident = canvas_id(canvas)
            preset = ident == preset_id(scale)
            what = f'the {scale.canvas_preset} preset' if preset else f'other settings than the ' \
                f'{scale.canvas_preset} preset (seed {canvas.get("seed")}, {canvas.get("num_train")} training canvases)'
            return Dataset(root, ident, preset, False, f'the canvas dataset at {root}, made with {what}')
        if not missing:
            return Dataset(root, annotation_id(anns), False, False, f'the COCO-format dataset at {root}')
        shown = ', '.join(entries[:5]) + (f', ... ({len(entries)} entries)' if len(entries) > 5 else '')
        needed = ', '.join(osp.relpath(p, root) for p in missing[:4])
        fail(f'--data-root {root} is not empty and holds no dataset the {scale_name} configs can read: it has '
             f'{shown}, and lacks {needed}. It is left as it is. Pass --data-root to an absent or empty folder '
             f'to have the canvases made there, or make them yourself with '
             f'{CANVAS_COMMAND.format(root=root, preset=scale.canvas_preset)} into an empty folder')
    if missing:
        fail(f'COCO 2017 not found at {root}: missing {[osp.relpath(p, root) for p in missing]}; {COCO_HINT}')
    return Dataset(root, annotation_id(anns), False, False, f'the COCO-format dataset at {root}')


def make_canvases(dataset: Dataset, scale) -> None:
    """Generate the scale's preset canvases into ``dataset.root`` (absent or empty; checked again)."""
    from mmdet_plugins.datasets.fashion_canvas import PRESETS, MissingFashionMNIST, generate
    print(f'generating the {scale.canvas_preset} canvas dataset at {dataset.root} ...', flush=True)
    try:
        generate(dataset.root, PRESETS[scale.canvas_preset])
    except (MissingFashionMNIST, FileExistsError) as e:
        fail(str(e))


def ensure_pretrained_backbones(config_paths, repo: str) -> None:
    """Make the Fashion-MNIST-pretrained backbone checkpoint that configs load, where it is missing."""
    from mmengine.config import Config
    from mmdet_plugins.pretrain import fashion_mnist_backbone as pretrain
    needed = set()
    for config in config_paths:
        init = Config.fromfile(osp.join(repo, config)).model.backbone.get('init_cfg') or {}
        checkpoint = init.get('checkpoint') or ''
        if init.get('type') == 'Pretrained' and osp.basename(checkpoint) == osp.basename(pretrain.DEFAULT_CHECKPOINT):
            path = osp.join(repo, checkpoint)  # runs train with the repository as cwd
            if not osp.isfile(path):
                needed.add(path)
    for path in sorted(needed):
        print(f'pretraining the backbone checkpoint {path} (python -m mmdet_plugins.pretrain.'
              f'fashion_mnist_backbone {path}) ...', flush=True)
        try:
            pretrain.main([path])
        except FileNotFoundError as e:  # Fashion-MNIST missing
            fail(str(e))


def check_writable(folder: str, what: str) -> None:
    """Fail with one line unless ``folder`` can be created and written to."""
    import tempfile
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix='.write-test-'):
            pass
    except OSError as e:
        fail(f'cannot write to {what} {folder} ({e.strerror or e}): pass a writable folder')
