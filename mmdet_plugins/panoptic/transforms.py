"""``AddStuffInstances``: stuff segments as box-and-mask targets, for detectors that find things and stuff alike.

mmdet's ``LoadPanopticAnnotations`` gives ``gt_bboxes``/``gt_bboxes_labels``/``gt_masks`` for the *thing*
segments only and the stuff only in ``gt_seg_map`` (H, W): thing classes 0..T-1, stuff classes T..T+S-1, 255 void.
DETR's panoptic model (facebookresearch/detr, ``datasets/coco_panoptic.py``) takes a box from every segment's
mask, stuff included. This transform appends, for each stuff class present in ``gt_seg_map``, its mask, the mask's
tight box (``x1, y1, x2 + 1, y2 + 1``, mmdet's ``mask2bbox`` convention), its label and ``ignore_flag=False``.
Put it right after ``LoadPanopticAnnotations`` (before any resize or flip, which then act on the added targets too).
"""
from __future__ import annotations

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks, mask2bbox

__all__ = ['AddStuffInstances']


@TRANSFORMS.register_module()
class AddStuffInstances(BaseTransform):
    """Append one box-and-mask target per stuff class present in ``gt_seg_map`` (module docstring).

    Args:
        num_things_classes (int): T, the number of thing classes (stuff labels start at T).
        min_area (int): stuff classes with fewer pixels are not added (they stay in ``gt_seg_map``).
        void_label (int): the void value of ``gt_seg_map``.
    """

    def __init__(self, num_things_classes: int, min_area: int = 1, void_label: int = 255):
        if num_things_classes < 0 or min_area < 1:
            raise ValueError('AddStuffInstances: num_things_classes must be >= 0 and min_area >= 1, got '
                             f'{num_things_classes} and {min_area}')
        self.num_things_classes = num_things_classes
        self.min_area = min_area
        self.void_label = void_label

    def transform(self, results: dict) -> dict:
        seg = results.get('gt_seg_map')
        if seg is None:
            raise KeyError('AddStuffInstances needs gt_seg_map: load it with '
                           "LoadPanopticAnnotations(with_seg=True) before this transform")
        h, w = seg.shape
        labels, masks = [], []
        for label in np.unique(seg):
            label = int(label)
            if label < self.num_things_classes or label == self.void_label:
                continue
            mask = seg == label
            if int(mask.sum()) >= self.min_area:
                masks.append(mask)
                labels.append(label)
        n = len(labels)
        stuff_masks = np.asarray(masks, np.uint8).reshape(n, h, w)
        old_boxes = results.get('gt_bboxes')
        old = 0 if old_boxes is None else len(old_boxes)
        if old_boxes is None:
            old_boxes = HorizontalBoxes(torch.zeros(0, 4))
        elif not isinstance(old_boxes, HorizontalBoxes):  # LoadAnnotations(box_type=None): a numpy array
            old_boxes = HorizontalBoxes(old_boxes)
        results['gt_bboxes'] = HorizontalBoxes.cat(
            [old_boxes, HorizontalBoxes(mask2bbox(torch.from_numpy(stuff_masks).bool()))])
        results['gt_bboxes_labels'] = np.concatenate(
            [results.get('gt_bboxes_labels', np.zeros(old, np.int64)), np.asarray(labels, np.int64)])
        results['gt_ignore_flags'] = np.concatenate(
            [results.get('gt_ignore_flags', np.zeros(old, bool)), np.zeros(n, bool)])
        old_masks = results.get('gt_masks')
        old_arr = np.zeros((0, h, w), np.uint8) if old_masks is None else old_masks.masks
        results['gt_masks'] = BitmapMasks(np.concatenate([old_arr, stuff_masks]), h, w)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_things_classes={self.num_things_classes}, '
                f'min_area={self.min_area}, void_label={self.void_label})')
