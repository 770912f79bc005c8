from .batched_matching import (BATCHED_HEADS, STOCK_HEADS, BatchedConditionalDETRHead, BatchedDABDETRHead, BatchedDeformableDETRHead,
                               BatchedDETRHead, BatchedDINOHead, BatchedHungarianAssigner, BatchedTargetsMixin)
from .ms_deform_attn import TraceableMultiScaleDeformableAttention, make_deform_attn_traceable
from .smca_decoder import SMCATransformerDecoder
from .sync_free_loss import SyncFreeLossMixin

__all__ = ['BATCHED_HEADS', 'STOCK_HEADS', 'BatchedHungarianAssigner', 'BatchedTargetsMixin', 'BatchedDETRHead', 'BatchedDeformableDETRHead',
           'BatchedConditionalDETRHead', 'BatchedDABDETRHead', 'BatchedDINOHead', 'SyncFreeLossMixin',
           'SMCATransformerDecoder', 'TraceableMultiScaleDeformableAttention',
           'make_deform_attn_traceable']
