"""Which dataset files a config reads, and a clear error (what is missing, how to make it) when they are not there.

Used by ``tools/train.py`` and ``tools/test.py`` before mmengine starts (whose own error for a missing
annotation file is a pycocotools traceback) and by the table runner.
"""
from __future__ import annotations

import os.path as osp
from typing import List

CANVAS_COMMAND = 'python -m mmdet_plugins.datasets.fashion_canvas {root} --scale {preset}'
COCO_HINT = ('download COCO 2017 (cocodataset.org) into that folder in mmdet\'s layout (annotations/'
             'instances_{train,val}2017.json, train2017/, val2017/), or pass --data-root DIR')
PANOPTIC_HINT = ('a panoptic config needs COCO panoptic 2017 (cocodataset.org, panoptic_annotations_trainval2017.zip) '
                 'in mmdet\'s layout: annotations/panoptic_{train,val}2017.json, their PNG folders '
                 'annotations/panoptic_{train,val}2017/, and train2017/, val2017/')
CANVAS_FILES = ('instances_train.json', 'instances_val.json', 'panoptic_train.json', 'panoptic_val.json',
                'train', 'val')


class MissingDataError(FileNotFoundError):
    """A dataset file or folder a config reads is missing; the message says which and how to make it."""


def _datasets(cfg):
    """The innermost dataset dict of each dataloader of ``cfg`` (through wrappers such as RepeatDataset)."""
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if not cfg.get(loader):
            continue
        dataset = cfg[loader].dataset
        while 'dataset' in dataset:
            dataset = dataset.dataset
        yield dataset


def set_data_root(cfg, data_root: str):
    """Point every dataloader's dataset and the evaluators' annotation files at ``data_root``."""
    data_root = osp.abspath(data_root).rstrip('/') + '/'
    for dataset in _datasets(cfg):
        dataset.data_root = data_root
    for evaluator in ('val_evaluator', 'test_evaluator'):
        if cfg.get(evaluator) and cfg[evaluator].get('ann_file'):
            cfg[evaluator].ann_file = data_root + 'annotations/' + osp.basename(cfg[evaluator].ann_file)
        if cfg.get(evaluator) and cfg[evaluator].get('seg_prefix'):  # CocoPanopticMetric's PNG folder
            cfg[evaluator].seg_prefix = data_root + 'annotations/' + osp.basename(
                cfg[evaluator].seg_prefix.rstrip('/')) + '/'


def dataset_files(cfg):
    """``(annotation files, image folders)`` that ``cfg``'s dataloaders and evaluators read, as absolute paths
    in a stable order, without repeats."""
    anns, imgs = [], []
    for dataset in _datasets(cfg):
        root = dataset.get('data_root') or ''
        if dataset.get('type') == 'FashionMNISTLT':  # Fashion-MNIST's own gzipped files
            from mmdet_plugins.classification.fashion_mnist_lt import default_root, fashion_mnist_files
            anns += [osp.abspath(p) for p in fashion_mnist_files(root or default_root(), dataset.get('split', 'train'))]
            continue
        if dataset.get('ann_file'):
            anns.append(osp.abspath(osp.join(root, dataset.ann_file)))
        prefix = dataset.get('data_prefix') or {}
        if isinstance(prefix, str):  # mmpretrain: one image folder
            prefix = dict(img=prefix)
        if not prefix and dataset.get('split') and dataset.get('type') == 'ImageNet':  # mmpretrain's split= layout
            prefix = dict(img=dataset.split)
        for folder in prefix.values():
            if isinstance(folder, str):
                imgs.append(osp.abspath(osp.join(root, folder)))
    for evaluator in ('val_evaluator', 'test_evaluator'):
        ev = cfg.get(evaluator)
        for e in (ev if isinstance(ev, (list, tuple)) else [ev]):
            if e and e.get('ann_file'):
                anns.append(osp.abspath(e.ann_file))
            if e and e.get('seg_prefix'):
                imgs.append(osp.abspath(e.seg_prefix))
    return list(dict.fromkeys(anns)), list(dict.fromkeys(imgs))


def missing_dataset_files(cfg) -> List[str]:
    """The annotation files and image folders ``cfg`` reads that do not exist."""
    anns, imgs = dataset_files(cfg)
    return [p for p in anns if not osp.isfile(p)] + [p for p in imgs if not osp.isdir(p)]


def how_to_make(path: str) -> str:
    """What to run (or download) to make the dataset file or folder ``path``, judged by its name."""
    path = path.rstrip('/')
    name, parent = osp.basename(path), osp.dirname(path)
    root = osp.dirname(parent) if osp.basename(parent) == 'annotations' else parent
    if name.startswith('panoptic_') and '2017' in name:
        return PANOPTIC_HINT
    if '2017' in name:
        return COCO_HINT.replace(', or pass --data-root DIR', ', or point the config\'s data_root elsewhere '
                                 '(--cfg-options)')
    if name.endswith('-ubyte.gz'):
        from mmdet_plugins.classification.fashion_mnist_lt import INSTALL_HINT
        return INSTALL_HINT
    if name in CANVAS_FILES:
        return ('make the Fashion-MNIST canvases: ' + CANVAS_COMMAND.format(root=osp.relpath(root), preset='mini')
                + ' (or point the config\'s data_root elsewhere with --cfg-options)')
    return 'point the config\'s data_root at a folder holding it (--cfg-options)'


def check_dataset_files(cfg) -> None:
    """Raise :class:`MissingDataError` (one line: what is missing, how to make it) when a dataset file or folder
    that ``cfg`` reads does not exist."""
    missing = missing_dataset_files(cfg)
    if missing:
        if len(missing) == 1:
            what = missing[0]
        else:  # (every missing file, named from their common folder)
            root = osp.commonpath(missing)
            shown = ', '.join(osp.relpath(p, root) for p in missing[:6]) + (' ...' if len(missing) > 6 else '')
            what = f'{len(missing)} dataset files and folders under {root} ({shown}) were'
        raise MissingDataError(f'{what} not found: {how_to_make(missing[0])}')
