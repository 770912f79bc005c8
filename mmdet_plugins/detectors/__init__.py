from .batchformer_mixin import BatchFormerMixin
from .bf_detectors import BFDABDETR, BFDETR, BFDINO, BFConditionalDETR, BFDeformableDETR

__all__ = ['BatchFormerMixin', 'BFDETR', 'BFDeformableDETR', 'BFConditionalDETR', 'BFDABDETR', 'BFDINO']
