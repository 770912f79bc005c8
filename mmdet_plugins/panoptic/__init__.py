"""Panoptic segmentation with DETR (the paper's second table), as MMDetection 3.x plugins.

- :mod:`.transforms`: ``AddStuffInstances``, which turns each stuff class of an image's semantic map into a box
  and a mask target, since DETR detects things and stuff alike (mmdet's ``LoadPanopticAnnotations`` keeps things
  only).

PQ comes from mmdet's ``CocoPanopticMetric``, which needs a ``panopticapi`` module (``setup.sh`` installs
``panopticapi-lite``).
"""
from .transforms import AddStuffInstances

__all__ = ['AddStuffInstances']
