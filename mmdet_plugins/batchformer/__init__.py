"""BatchFormerV2, the method: the batch-attention layer, the two-stream adapter and the registered detectors."""
from .detectors import (BFDABDETR, BFDETR, BFDINO, BFSMCADETR, BFConditionalDETR, BFDeformableDETR,
                        BFDETRPanoptic)
from .layer import BatchFormerV2Layer
from .mixin import BatchFormerMixin

__all__ = ['BatchFormerV2Layer', 'BatchFormerMixin', 'BFDETR', 'BFDeformableDETR', 'BFConditionalDETR',
           'BFDABDETR', 'BFDINO', 'BFSMCADETR', 'BFDETRPanoptic']
