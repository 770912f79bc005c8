"""BatchFormerV2 (Hou et al., arXiv 2204.01254) for MMDetection 3.x.

Importing this package (``custom_imports=dict(imports=['mmdet_plugins'])``) registers the detectors
``BFDETR``, ``BFDeformableDETR``, ``BFConditionalDETR``, ``BFDABDETR``, ``BFDINO`` and ``BFSMCADETR`` in mmdet's
``MODELS`` registry, single-scale SMCA (``SMCADETR`` with ``SMCATransformerDecoder``, which mmdet lacks), the batched-matching heads ``Batched{DETR,DeformableDETR,ConditionalDETR,DABDETR,DINO}Head`` in
``MODELS`` and ``BatchedHungarianAssigner`` in ``TASK_UTILS`` (:mod:`mmdet_plugins.models`), and makes mmengine
able to resume from its own checkpoints under torch >= 2.6.

The batch-attention core, :mod:`mmdet_plugins.batchformer`, is plain PyTorch.
"""
from . import engine  # noqa: F401  (registers the checkpoint loader)
from .batchformer import BatchFormerV2Layer
from .detectors import (BFDABDETR, BFDETR, BFDINO, BFSMCADETR, SMCADETR, BFConditionalDETR, BFDeformableDETR,
                        BatchFormerMixin)
from .models import (BatchedConditionalDETRHead, BatchedDABDETRHead, BatchedDeformableDETRHead, BatchedDETRHead,
                     BatchedDINOHead, BatchedHungarianAssigner, BatchedTargetsMixin, SMCATransformerDecoder)

__version__ = '0.1.0'
__all__ = ['BatchFormerV2Layer', 'BatchFormerMixin', 'BFDETR', 'BFDeformableDETR', 'BFConditionalDETR',
           'BFDABDETR', 'BFDINO', 'SMCADETR', 'BFSMCADETR', 'SMCATransformerDecoder', 'BatchedHungarianAssigner', 'BatchedTargetsMixin', 'BatchedDETRHead',
           'BatchedDeformableDETRHead', 'BatchedConditionalDETRHead', 'BatchedDABDETRHead', 'BatchedDINOHead']
