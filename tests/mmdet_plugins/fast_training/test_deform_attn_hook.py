"""mmdet_plugins/fast_training/deform_attn_hook.py: the hook switches every deformable attention module of a detector
to the traceable one and leaves its parameters as they were."""
import logging
from types import SimpleNamespace

import pytest
import torch

from helpers import build_detector


def test_traceable_deform_attn_hook_switches_every_deformable_attention():
    from mmcv.ops import MultiScaleDeformableAttention
    from mmdet_plugins.fast_training import TraceableDeformAttnHook
    from mmdet_plugins.fast_training.deform_attn import TraceableMultiScaleDeformableAttention
    model = build_detector('DeformableDETR', bf=True)
    keys = model.state_dict().keys()
    runner = SimpleNamespace(model=model, logger=logging.getLogger('test'))
    TraceableDeformAttnHook().before_run(runner)
    kinds = [type(m) for m in model.modules() if isinstance(m, MultiScaleDeformableAttention)]
    assert len(kinds) == 4 and set(kinds) == {TraceableMultiScaleDeformableAttention}
    assert model.state_dict().keys() == keys


def test_traceable_deform_attn_hook_sets_the_backward_dtype_and_refuses_unknown_ones():
    from mmdet_plugins.fast_training import TraceableDeformAttnHook
    model = build_detector('DeformableDETR', bf=False)
    runner = SimpleNamespace(model=model, logger=logging.getLogger('test'))
    TraceableDeformAttnHook(backward_dtype='float32').before_run(runner)
    dtypes = {getattr(m, 'backward_dtype', 'none') for m in model.modules() if hasattr(m, 'im2col_step')}
    assert dtypes == {torch.float32}
    with pytest.raises(ValueError, match="backward_dtype must be None or one of .'float32', 'float64'., not 'fp32'"):
        TraceableDeformAttnHook(backward_dtype='fp32')


@pytest.mark.parametrize('config', ['configs/mini/deformable-detr_r18_1xb16-mini.py',
                                    'configs/mini/bf-deformable-detr_r18_1xb16-mini.py',
                                    'configs/mini/dino-4scale_r18_1xb16-mini.py',
                                    'configs/mini/compiled/deformable-detr_r18_1xb16-mini.py',
                                    'configs/mini/compiled/bf-deformable-detr_r18_1xb16-mini.py',
                                    'configs/mini/cudagraphs/deformable-detr_r18_1xb16-mini.py',
                                    'configs/mini/cudagraphs/bf-deformable-detr_r18_1xb16-mini.py',
                                    'configs/mini/analysis/bf-deformable-detr_r18_1xb16-mini_gradlog.py'])
def test_mini_deformable_configs_train_the_attention_backward_in_fp32(config):
    """Every mini config with deformable attention makes the same choice (a config that replaces custom_hooks and
    forgets the hook would silently train with mmcv's fp16 backward)."""
    from helpers import load_config
    hooks = load_config(config).custom_hooks
    assert dict(type='TraceableDeformAttnHook', backward_dtype='float32') in hooks
