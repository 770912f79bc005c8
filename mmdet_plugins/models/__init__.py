from .batched_matching import (BATCHED_HEADS, STOCK_HEADS, BatchedConditionalDETRHead, BatchedDABDETRHead, BatchedDeformableDETRHead,
                               BatchedDETRHead, BatchedDINOHead, BatchedHungarianAssigner, BatchedTargetsMixin)
from .smca_decoder import SMCATransformerDecoder
from .sync_free_loss import SyncFreeLossMixin

__all__ = ['BATCHED_HEADS', 'STOCK_HEADS', 'BatchedHungarianAssigner', 'BatchedTargetsMixin', 'BatchedDETRHead', 'BatchedDeformableDETRHead',
           'BatchedConditionalDETRHead', 'BatchedDABDETRHead', 'BatchedDINOHead', 'SyncFreeLossMixin',
           'SMCATransformerDecoder']
