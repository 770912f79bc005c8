"""BatchFormerV2 (Hou et al., arXiv 2204.01254) as MMDetection 3.x plugins.

``custom_imports = dict(imports=['mmdet_plugins'])`` in a config imports this package, which registers
everything below in mmdet's and mmengine's registries. Where things are:

- :mod:`.batchformer`: the method. ``layer`` is the plain-PyTorch BatchFormerV2 layer (attention across the
  batch), ``mixin`` the adapter that adds it to any mmdet ``DetectionTransformer`` as a second stream, and
  ``detectors`` the registered detectors ``BFDETR``, ``BFDeformableDETR``, ``BFConditionalDETR``,
  ``BFDABDETR``, ``BFDINO``, ``BFSMCADETR`` and ``BFDETRPanoptic``.
- :mod:`.panoptic`: DETR panoptic segmentation (``DETRPanoptic``: DETR's mask head, losses and fusion) and its
  data transform.
- :mod:`.smca_detr`: single-scale SMCA-DETR (``SMCADETR``, ``SMCATransformerDecoder``), a baseline of the paper
  that MMDetection lacks.
- :mod:`.fast_training`: components that make small-batch training faster with the same matchings and losses
  (batched Hungarian matching, sync-free loss, traceable deformable attention, compiled layers, merged
  optimiser groups); see its README.
- :mod:`.analysis`: ``GradPerClassHook``, which measures the gradient each class receives through the module.
- :mod:`.runtime`: ``StopAtDeadlineHook`` (time-boxed runs), ``IndexSkippingIterBasedTrainLoop`` (a resume that
  skips the trained batches without reading them) and a checkpoint loader that lets mmengine 0.10.7 resume under
  torch >= 2.6.
- :mod:`.datasets`: the Fashion-MNIST canvas benchmark generator; :mod:`.pretrain`: its backbone pretraining;
  :mod:`.utils`: provenance of stored results and small model helpers.
"""
from . import analysis, fast_training, panoptic, runtime  # noqa: F401  (registers their hooks, heads, transforms, loaders)
from .batchformer import (BFDABDETR, BFDETR, BFDINO, BFSMCADETR, BatchFormerMixin, BatchFormerV2Layer,
                          BFConditionalDETR, BFDeformableDETR, BFDETRPanoptic)
from .panoptic import DETRPanoptic
from .smca_detr import SMCADETR, SMCATransformerDecoder

__version__ = '0.1.0'
__all__ = ['BatchFormerV2Layer', 'BatchFormerMixin', 'BFDETR', 'BFDeformableDETR', 'BFConditionalDETR',
           'BFDABDETR', 'BFDINO', 'BFSMCADETR', 'BFDETRPanoptic', 'DETRPanoptic', 'SMCADETR',
           'SMCATransformerDecoder']
