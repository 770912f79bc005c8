"""``ClsGradPerClassHook``: the cross-sample gradient through BatchFormerV2 per class, for image classification.

The definition and the computation are :class:`mmdet_plugins.analysis.GradPerClassHook`'s (the norm of the
gradient that flows into image i's tokens through the module from the other images' losses); here an image has
one class, its ``gt_label``, and a class's frequency is its number of training images
(``dataset.metainfo['train_counts']``, or counted from the dataset).

    custom_hooks = [dict(type='ClsGradPerClassHook', interval=25, max_images=16)]
"""
from __future__ import annotations

from typing import List

from mmpretrain.registry import HOOKS

from ..analysis.grad_per_class_hook import GradPerClassHook

__all__ = ['ClsGradPerClassHook']


@HOOKS.register_module()
class ClsGradPerClassHook(GradPerClassHook):
    """:class:`GradPerClassHook` for mmpretrain classifiers (module docstring); same arguments."""
    frequency_key = 'train_images'

    def _image_classes(self, sample) -> List[int]:
        return [int(c) for c in sample.gt_label.reshape(-1).tolist()]

    @staticmethod
    def _class_counts(dataset) -> List[int]:
        """Training images per class: the dataset's ``train_counts`` if it has them, else counted."""
        while hasattr(dataset, 'dataset'):
            dataset = dataset.dataset
        counts = dataset.metainfo.get('train_counts')
        if counts is None:
            counts = [0] * len(dataset.metainfo['classes'])
            for i in range(len(dataset)):
                counts[int(dataset.get_data_info(i)['gt_label'])] += 1
        return list(counts)
