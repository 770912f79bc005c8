from .checkpoint_compat import load_local_checkpoint
from .compiled_layers import CompileLayersHook, compile_submodules
from .deadline_hook import StopAtDeadlineHook
from .grad_per_class_hook import GradPerClassHook
from .merged_param_groups import MergedGroupsOptimWrapperConstructor, merge_param_groups
from .traceable_deform_attn import TraceableDeformAttnHook

__all__ = ['load_local_checkpoint', 'CompileLayersHook', 'compile_submodules', 'StopAtDeadlineHook', 'GradPerClassHook', 'MergedGroupsOptimWrapperConstructor',
           'merge_param_groups', 'TraceableDeformAttnHook']
