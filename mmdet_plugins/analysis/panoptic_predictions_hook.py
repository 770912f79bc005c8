"""Keep the panoptic predictions of a few validation images, for the panoptic figure (analysis/plot_panoptic.py).

At the end of every validation (or test) pass, ``PanopticPredictionsHook`` writes
``<work_dir>/panoptic_predictions.json`` (atomically): for the first ``num_images`` images of the validation set, in
the dataset's order (so every run of a table keeps the same images), the image file itself, the predicted panoptic
map and the ground truth's, both in mmdet's panoptic encoding (a thing segment ``label + k * INSTANCE_OFFSET``,
k = 1, 2, ...; a stuff segment ``label``; void ``num_classes``), run-length encoded. The figure is drawn from that
file alone, without checkpoints or data. With several processes (mmengine's ``DefaultSampler`` gives rank r the
images r, r + W, r + 2W, ...), the ranks' images are gathered and rank 0 writes the first ones in dataset order.

File layout (``FORMAT``)::

    {"format": "bf-panoptic-predictions/1", "iteration": int or null (a test pass), "checkpoint": str or null,
     "classes": [...], "thing_classes": [...],
     "stuff_classes": [...], "instance_offset": int,
     "images": [{"img_id": int, "file_name": str, "height": H, "width": W,
                 "image": base64 of the image file, "pred": RLE, "gt": RLE or null}, ...]}

An RLE is ``{"size": [H, W], "counts": [value, length, value, length, ...]}`` over the map in row-major order
(:func:`encode_map`, :func:`decode_map`).
"""
from __future__ import annotations

import base64
import json
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
from mmengine.dist import all_gather_object, get_world_size, is_main_process
from mmengine.hooks import Hook

from mmdet.registry import HOOKS

from ..utils.provenance import atomic_write_text

FORMAT = 'bf-panoptic-predictions/1'


def encode_map(seg: np.ndarray) -> Dict:
    """Run-length encoding of an (H, W) integer map, row-major: ``{'size': [H, W], 'counts': [v, n, v, n, ...]}``."""
    seg = np.asarray(seg)
    if seg.ndim != 2:
        raise ValueError(f'encode_map takes an (H, W) map, got shape {tuple(seg.shape)}')
    flat = seg.reshape(-1).astype(np.int64)
    if flat.size == 0:
        return dict(size=list(seg.shape), counts=[])
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    lengths = np.diff(np.r_[starts, flat.size])
    counts = np.stack([flat[starts], lengths], axis=1).reshape(-1)
    return dict(size=[int(s) for s in seg.shape], counts=[int(c) for c in counts])


def decode_map(rle: Dict) -> np.ndarray:
    """The (H, W) int64 map of :func:`encode_map`'s output; a ValueError if the runs do not cover H x W."""
    h, w = (int(s) for s in rle['size'])
    counts = np.asarray(rle['counts'], dtype=np.int64).reshape(-1, 2)
    if counts[:, 1].sum() != h * w or (counts[:, 1] < 1).any():
        raise ValueError(f'a run-length map of size {h}x{w} has runs of {int(counts[:, 1].sum())} pixels')
    return np.repeat(counts[:, 0], counts[:, 1]).reshape(h, w)


def ground_truth_map(sample, num_things: int, num_classes: int, instance_offset: int) -> Optional[np.ndarray]:
    """The ground truth of a data sample in mmdet's panoptic encoding, from what ``LoadPanopticAnnotations`` gives:
    the things' masks (``gt_instances.masks``, in order: k = 1, 2, ...) and the semantic map (``gt_sem_seg``, for
    the stuff; 255 unlabelled). (H, W) int64, or None when the sample has no semantic map."""
    if 'gt_sem_seg' not in sample:
        return None
    sem = sample.gt_sem_seg.sem_seg[0].cpu().numpy().astype(np.int64)
    out = np.full(sem.shape, num_classes, dtype=np.int64)
    stuff = (sem >= num_things) & (sem < num_classes)
    out[stuff] = sem[stuff]
    inst = sample.get('gt_instances')
    if inst is not None and 'masks' in inst and len(inst) > 0:
        masks = inst.masks.to_ndarray() if hasattr(inst.masks, 'to_ndarray') else np.asarray(inst.masks)
        for k, (mask, label) in enumerate(zip(masks.astype(bool), inst.labels.tolist()), start=1):
            out[mask[:sem.shape[0], :sem.shape[1]]] = int(label) + k * instance_offset
    return out


@HOOKS.register_module()
class PanopticPredictionsHook(Hook):
    """Write the panoptic predictions of the first ``num_images`` validation (or test) images after every
    validation (or test) pass.

    Args:
        num_images: how many images to keep (the first ones of the validation set).
        filename: the file's name in the work directory.
    """
    priority = 'LOW'

    def __init__(self, num_images: int = 4, filename: str = 'panoptic_predictions.json'):
        if num_images < 1:
            raise ValueError(f'PanopticPredictionsHook: num_images must be >= 1, got {num_images}')
        self.num_images, self.filename = num_images, filename
        self._images: List[Dict] = []

    def before_val_epoch(self, runner) -> None:
        self._images = []

    def before_test_epoch(self, runner) -> None:
        self._images = []

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._keep(runner.val_loop, outputs)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._keep(runner.test_loop, outputs)

    def after_val_epoch(self, runner, metrics=None) -> None:
        # (a validation during training: the iteration it reached; runner.iter is read only then, since in a
        # test-only run it would build the training loop)
        self._write(runner, runner.val_loop, iteration=int(runner.iter), checkpoint=None)

    def after_test_epoch(self, runner, metrics=None) -> None:
        load_from = runner.cfg.get('load_from')
        self._write(runner, runner.test_loop, iteration=None, checkpoint=osp.basename(load_from) if load_from else None)

    @staticmethod
    def _meta(loop) -> Dict:
        meta = loop.dataloader.dataset.metainfo
        for key in ('classes', 'thing_classes', 'stuff_classes'):
            if key not in meta:
                raise RuntimeError(f'PanopticPredictionsHook needs a panoptic validation set: its metainfo has no '
                                   f'{key!r} (use it with a DETR panoptic stage-2 config)')
        return meta

    def _keep(self, loop, outputs) -> None:
        if len(self._images) >= self.num_images or not outputs:
            return
        from mmdet.evaluation.functional import INSTANCE_OFFSET
        meta = self._meta(loop)
        num_things, num_classes = len(meta['thing_classes']), len(meta['classes'])
        for sample in outputs:
            if len(self._images) >= self.num_images:
                break
            if 'pred_panoptic_seg' not in sample:
                raise RuntimeError('PanopticPredictionsHook: the model gave no pred_panoptic_seg (a stage-2 DETR '
                                   'panoptic model gives one)')
            pred = sample.pred_panoptic_seg.sem_seg[0].cpu().numpy()
            gt = ground_truth_map(sample, num_things, num_classes, INSTANCE_OFFSET)
            with open(sample.img_path, 'rb') as f:
                image = base64.b64encode(f.read()).decode('ascii')
            self._images.append(dict(
                img_id=int(sample.img_id) if 'img_id' in sample else len(self._images),
                file_name=osp.basename(sample.img_path), height=int(pred.shape[0]), width=int(pred.shape[1]),
                image=image, pred=encode_map(pred), gt=None if gt is None else encode_map(gt)))

    def _gathered(self) -> List[Dict]:
        """Every rank's kept images, in dataset order (rank r's k-th image is the dataset's r + k * W-th)."""
        if get_world_size() == 1:
            return self._images
        per_rank = all_gather_object(self._images)  # (a collective: every rank calls it)
        merged = [ims[k] for k in range(max(len(ims) for ims in per_rank)) for ims in per_rank if k < len(ims)]
        return merged[:self.num_images]

    def _write(self, runner, loop, iteration, checkpoint) -> None:
        images = self._gathered()
        if not images or not is_main_process():
            return
        from mmdet.evaluation.functional import INSTANCE_OFFSET
        meta = self._meta(loop)
        out = dict(format=FORMAT, iteration=iteration, checkpoint=checkpoint, classes=list(meta['classes']),
                   thing_classes=list(meta['thing_classes']), stuff_classes=list(meta['stuff_classes']),
                   instance_offset=int(INSTANCE_OFFSET), images=images)
        atomic_write_text(osp.join(runner.work_dir, self.filename), json.dumps(out))
