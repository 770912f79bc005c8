"""Training-speed components: the same matchings, losses and updates as stock mmdet 3.3.0, fewer host waits.

See ``README.md`` in this folder for what each component does, how a config selects it and how it was checked.
"""
from .assigner import BatchedHungarianAssigner
from .batched_targets import BatchedTargetsMixin
from .compiled_layers import CompileLayersHook, compile_submodules
from .deform_attn import TraceableMultiScaleDeformableAttention, make_deform_attn_traceable
from .deform_attn_hook import TraceableDeformAttnHook
from .heads import (BATCHED_HEADS, STOCK_HEADS, BatchedConditionalDETRHead, BatchedDABDETRHead,
                    BatchedDeformableDETRHead, BatchedDETRHead, BatchedDINOHead, with_matching)
from .merged_param_groups import MergedGroupsOptimWrapperConstructor, merge_param_groups
from .sync_free_loss import SyncFreeLossMixin

__all__ = ['BatchedHungarianAssigner', 'BatchedTargetsMixin', 'SyncFreeLossMixin', 'BATCHED_HEADS', 'STOCK_HEADS',
           'with_matching', 'BatchedDETRHead', 'BatchedDeformableDETRHead', 'BatchedConditionalDETRHead',
           'BatchedDABDETRHead', 'BatchedDINOHead', 'TraceableMultiScaleDeformableAttention',
           'make_deform_attn_traceable', 'TraceableDeformAttnHook', 'CompileLayersHook', 'compile_submodules',
           'MergedGroupsOptimWrapperConstructor', 'merge_param_groups']
