"""An optimiser-wrapper constructor that gives the optimiser one parameter group per distinct set of options.

mmengine's ``DefaultOptimWrapperConstructor`` with a ``paramwise_cfg`` (every config here has one: the
backbone's lr multiplier, Deformable DETR's 0.1x for sampling offsets and reference points) puts each parameter in
a group of its own. AdamW then runs its multi-tensor (``foreach``) update once per parameter: some 300 small
update passes per step instead of a few, which costs host time at small batch sizes. Merging the groups that have
the same options changes no parameter's update (AdamW treats parameters independently; each keeps its own lr and
weight decay), only how many kernels apply it.

    optim_wrapper = dict(constructor='MergedGroupsOptimWrapperConstructor', ...)

Checkpoints store the optimiser state by group: resume a run with the constructor it was trained with.
"""
from typing import Dict, List

from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS


def merge_param_groups(groups: List[Dict]) -> List[Dict]:
    """Param groups with equal options (every key but ``params``) merged, in order of first appearance; each
    merged group's ``params`` keeps the parameters' original order."""
    merged: Dict[tuple, Dict] = {}
    for group in groups:
        options = {k: v for k, v in group.items() if k != 'params'}
        try:
            key = tuple(sorted(options.items()))
            hash(key)
        except TypeError:  # an unhashable option (a list, ...): keep the group as it is
            key = ('unmerged', id(group))
        if key not in merged:
            merged[key] = dict(options, params=[])
        merged[key]['params'].extend(group['params'])
    return list(merged.values())


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MergedGroupsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` (same ``optim_wrapper`` and ``paramwise_cfg`` semantics) whose
    optimiser gets one group per distinct set of per-parameter options instead of one group per parameter."""

    def add_params(self, params: List[dict], module, prefix: str = '', is_dcn_module=None) -> None:
        super().add_params(params, module, prefix=prefix, is_dcn_module=is_dcn_module)
        if prefix == '':  # the top-level call: every parameter has been added (children recurse with a prefix)
            params[:] = merge_param_groups(params)
