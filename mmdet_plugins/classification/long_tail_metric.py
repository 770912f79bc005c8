"""Top-1 accuracy overall and for the many-, medium- and few-shot classes of a long-tailed training split.

A class's group is decided by its number of training images (``dataset_meta['train_counts']``, which
``FashionMNISTLT`` provides for both of its splits): many-shot with at least ``many_min`` images, few-shot with
fewer than ``few_max``, medium-shot in between. A group's accuracy is the mean of its classes' accuracies on the
evaluation split (balanced for Fashion-MNIST's test split, so it equals the group's sample accuracy there).
Values are percentages, as mmpretrain's ``Accuracy``; keys ``<prefix>/top1``, ``/many``, ``/medium``, ``/few``.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS

__all__ = ['LongTailAccuracy', 'shot_groups', 'long_tail_accuracy']


def shot_groups(train_counts: Sequence[int], many_min: int, few_max: int) -> dict:
    """``{'many': [class ids], 'medium': [...], 'few': [...]}`` by training images per class."""
    if few_max > many_min:
        raise ValueError(f'few_max ({few_max}) must not exceed many_min ({many_min})')
    groups = dict(many=[], medium=[], few=[])
    for c, n in enumerate(train_counts):
        groups['many' if n >= many_min else 'few' if n < few_max else 'medium'].append(c)
    return groups


def long_tail_accuracy(pred: np.ndarray, gt: np.ndarray, train_counts: Sequence[int], many_min: int,
                       few_max: int) -> dict:
    """``top1`` (all samples) and the mean per-class accuracy of each shot group, in percent (NaN for a group
    without classes or without evaluation samples)."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    out = dict(top1=100.0 * float((pred == gt).mean()) if len(gt) else float('nan'))
    per_class = {}
    for c in range(len(train_counts)):
        mask = gt == c
        if mask.any():
            per_class[c] = 100.0 * float((pred[mask] == c).mean())
    for name, classes in shot_groups(train_counts, many_min, few_max).items():
        values = [per_class[c] for c in classes if c in per_class]
        out[name] = float(np.mean(values)) if values else float('nan')
    return out


@METRICS.register_module()
class LongTailAccuracy(BaseMetric):
    """Overall and many/medium/few-shot top-1 accuracy (module docstring).

    Args:
        many_min: a class with at least this many training images is many-shot (default 1000).
        few_max: a class with fewer training images is few-shot (default 200).
        train_counts: training images per class; default ``dataset_meta['train_counts']``.
    """
    default_prefix = 'accuracy'

    def __init__(self, many_min: int = 1000, few_max: int = 200, train_counts: List[int] = None,
                 collect_device: str = 'cpu', prefix: str = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.many_min, self.few_max, self._train_counts = many_min, few_max, train_counts
        shot_groups([0], many_min, few_max)  # validates the thresholds at build time

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            self.results.append((int(sample['pred_label'].reshape(-1)[0]), int(sample['gt_label'].reshape(-1)[0])))

    def compute_metrics(self, results: list) -> dict:
        counts = self._train_counts or (self.dataset_meta or {}).get('train_counts')
        if not counts:
            raise ValueError('LongTailAccuracy needs the training images per class: pass train_counts, or use a '
                             'dataset whose metainfo has train_counts (FashionMNISTLT)')
        pred, gt = np.array([r[0] for r in results]), np.array([r[1] for r in results])
        return long_tail_accuracy(pred, gt, counts, self.many_min, self.few_max)
