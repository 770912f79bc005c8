"""Single-scale SMCA-DETR (Gao et al., ICCV 2021), a baseline of the paper that MMDetection 3.3.0 lacks."""
from .decoder import SMCATransformerDecoder
from .detector import SMCADETR

__all__ = ['SMCADETR', 'SMCATransformerDecoder']
