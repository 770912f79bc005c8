from .batched_matching import (BatchedConditionalDETRHead, BatchedDABDETRHead, BatchedDeformableDETRHead,
                               BatchedDETRHead, BatchedDINOHead, BatchedHungarianAssigner, BatchedTargetsMixin)
from .sync_free_loss import SyncFreeLossMixin

__all__ = ['BatchedHungarianAssigner', 'BatchedTargetsMixin', 'BatchedDETRHead', 'BatchedDeformableDETRHead',
           'BatchedConditionalDETRHead', 'BatchedDABDETRHead', 'BatchedDINOHead', 'SyncFreeLossMixin']
