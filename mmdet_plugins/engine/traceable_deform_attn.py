"""Run a detector's multi-scale deformable attention through the traceable custom operator, selected from a config.

mmcv's ``MultiScaleDeformableAttention`` checks ``sum(h * w) == num_value`` on device tensors in every call, so
the host waits for the GPU once per encoder and decoder layer (12 waits per Deformable DETR step, counted by
``reproduce/profile_train_step.py --sync-trace``). This hook switches those modules, before the run, to
:class:`~mmdet_plugins.models.ms_deform_attn.TraceableMultiScaleDeformableAttention`: the same parameters and the
same mmcv kernels, called with the same inputs, without the check (tests/models/test_ms_deform_attn.py: bitwise
the same outputs; the gradients are mmcv's own backward kernel, which adds with atomics, so they vary from run to
run as much as mmcv's do). ``CompileLayersHook`` makes the same switch for the modules it compiles.

    custom_hooks = [dict(type='TraceableDeformAttnHook')]
"""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..model_utils import unwrap_model
from ..models.ms_deform_attn import make_deform_attn_traceable


@HOOKS.register_module()
class TraceableDeformAttnHook(Hook):
    """Switch every mmcv ``MultiScaleDeformableAttention`` of the model to the traceable module before the run
    (training, validation and testing alike)."""
    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        switched = make_deform_attn_traceable(unwrap_model(runner.model))
        runner.logger.info(f'TraceableDeformAttnHook: {len(switched)} deformable attention modules switched to '
                           f'the traceable operator')
