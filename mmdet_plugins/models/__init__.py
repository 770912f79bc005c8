from .batched_matching import (BatchedConditionalDETRHead, BatchedDABDETRHead, BatchedDeformableDETRHead,
                               BatchedDETRHead, BatchedDINOHead, BatchedHungarianAssigner, BatchedTargetsMixin)

__all__ = ['BatchedHungarianAssigner', 'BatchedTargetsMixin', 'BatchedDETRHead', 'BatchedDeformableDETRHead',
           'BatchedConditionalDETRHead', 'BatchedDABDETRHead', 'BatchedDINOHead']
