"""Run a detector's multi-scale deformable attention through the traceable custom operator, selected from a config.

mmcv's ``MultiScaleDeformableAttention`` checks ``sum(h * w) == num_value`` on device tensors in every call, so
the host waits for the GPU once per encoder and decoder layer (12 waits per Deformable DETR step, counted by
``reproduce/bench/profile_train_step.py --sync-trace``). This hook switches those modules, before the run, to
:class:`~mmdet_plugins.fast_training.deform_attn.TraceableMultiScaleDeformableAttention`: the same parameters and the
same mmcv kernels, called with the same inputs, without the check (tests/mmdet_plugins/fast_training/test_deform_attn.py: bitwise
the same outputs; the gradients are mmcv's own backward kernel, which adds with atomics, so they vary from run to
run as much as mmcv's do). ``CompileLayersHook`` makes the same switch for the modules it compiles.

``backward_dtype='float32'`` also computes the attention's backward in fp32 when training runs it in fp16 (AMP):
the same forward, fp32 gradients rounded to fp16 once instead of mmcv's fp16 accumulation, and a backward kernel
3x faster at the mini encoder's shapes (1.3x at the decoder's; mmdet_plugins/fast_training/deform_attn.py explains and
results/measured/msda_backward.csv measures it). That changes the training run, so it is a choice of the config
(the mini Deformable DETR and DINO configs make it), not of the speed components alone.

    custom_hooks = [dict(type='TraceableDeformAttnHook', backward_dtype='float32')]
"""
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..utils.model_utils import unwrap_model
from .deform_attn import make_deform_attn_traceable

BACKWARD_DTYPES = {'float32': torch.float32, 'float64': torch.float64}


@HOOKS.register_module()
class TraceableDeformAttnHook(Hook):
    """Switch every mmcv ``MultiScaleDeformableAttention`` of the model to the traceable module before the run
    (training, validation and testing alike).

    Args:
        backward_dtype (str, optional): ``'float32'`` (or ``'float64'``): compute the attention's backward in
            that dtype when its inputs are less precise (fp16 under AMP). Default ``None``: mmcv's, in the
            inputs' dtype.
    """
    priority = 'VERY_HIGH'

    def __init__(self, backward_dtype: Optional[str] = None) -> None:
        if backward_dtype is not None and backward_dtype not in BACKWARD_DTYPES:
            raise ValueError(f'TraceableDeformAttnHook: backward_dtype must be None or one of '
                             f'{sorted(BACKWARD_DTYPES)}, not {backward_dtype!r}')
        self.backward_dtype = BACKWARD_DTYPES.get(backward_dtype)

    def before_run(self, runner) -> None:
        # (also sets the backward dtype of modules another hook switched already, e.g. CompileLayersHook)
        switched = make_deform_attn_traceable(unwrap_model(runner.model), backward_dtype=self.backward_dtype)
        precision = f', backward in {self.backward_dtype}' if self.backward_dtype is not None else ''
        runner.logger.info(f'TraceableDeformAttnHook: {len(switched)} deformable attention modules switched to '
                           f'the traceable operator{precision}')
