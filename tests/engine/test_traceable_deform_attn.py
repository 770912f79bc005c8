"""mmdet_plugins/engine/traceable_deform_attn.py: the hook switches every deformable attention module of a detector
to the traceable one and leaves its parameters as they were."""
import logging
from types import SimpleNamespace

from helpers import build_detector


def test_traceable_deform_attn_hook_switches_every_deformable_attention():
    from mmcv.ops import MultiScaleDeformableAttention
    from mmdet_plugins.engine import TraceableDeformAttnHook
    from mmdet_plugins.models.ms_deform_attn import TraceableMultiScaleDeformableAttention
    model = build_detector('DeformableDETR', bf=True)
    keys = model.state_dict().keys()
    runner = SimpleNamespace(model=model, logger=logging.getLogger('test'))
    TraceableDeformAttnHook().before_run(runner)
    kinds = [type(m) for m in model.modules() if isinstance(m, MultiScaleDeformableAttention)]
    assert len(kinds) == 4 and set(kinds) == {TraceableMultiScaleDeformableAttention}
    assert model.state_dict().keys() == keys
