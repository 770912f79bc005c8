from .batchformer_mixin import BatchFormerMixin
from .bf_detectors import BFDABDETR, BFDETR, BFDINO, BFSMCADETR, BFConditionalDETR, BFDeformableDETR
from .smca_detr import SMCADETR

__all__ = ['BatchFormerMixin', 'BFDETR', 'BFDeformableDETR', 'BFConditionalDETR', 'BFDABDETR', 'BFDINO', 'SMCADETR',
           'BFSMCADETR']
