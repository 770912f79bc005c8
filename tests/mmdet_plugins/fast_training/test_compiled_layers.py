"""mmdet_plugins/fast_training/compiled_layers.py: which modules are compiled, that the compiled detector computes the
same losses and gradients, that checkpoints are unchanged, that evaluation runs eagerly, and the errors.

Compilation here uses the ``aot_eager`` backend (Dynamo's graph capture and AOTAutograd's joint forward/backward
graph, run by eager kernels): the same tracing Inductor starts from, without its slow CPU code generation. The
Inductor numbers on the GPU are in results/measured/compiled_equivalence.csv."""
import copy
import logging
import os.path as osp
from types import SimpleNamespace

import pytest
import torch

from helpers import DETECTOR_CONFIGS, build_detector, make_batch, no_dropout, tiny_runner_cfg, write_tiny_coco
from mmdet_plugins.fast_training.compiled_layers import (COMPILED_ATTR, CompileLayersHook, compile_submodules,
                                                  compiled_modules, eager_forward)


def _loss_and_grads(model, inputs, samples):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=copy.deepcopy(samples)), True)
    losses = {k: v for k, v in model.loss(data['inputs'], data['data_samples']).items() if 'loss' in k}
    sum(losses.values()).backward()
    return ({k: v.detach() for k, v in losses.items()},
            {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})


def _unique_graphs():
    from torch._dynamo.utils import counters
    return counters['stats']['unique_graphs']  # cumulative over the process


@pytest.mark.parametrize('name,bf', [('DETR', True), ('DeformableDETR', False), ('DeformableDETR', True)])
def test_compiled_layers_give_the_same_losses_and_gradients(name, bf):
    torch._dynamo.reset()
    graphs_before = _unique_graphs()
    torch.manual_seed(0)
    eager = no_dropout(build_detector(name, bf=bf)).train()
    compiled = copy.deepcopy(eager)
    names = compile_submodules(compiled, backend='aot_eager', dynamic=False)
    assert names == ['encoder.layers.0', 'encoder.layers.1', 'decoder.layers.0', 'decoder.layers.1']
    assert set(compiled_modules(compiled)) == set(names)
    assert compiled.state_dict().keys() == eager.state_dict().keys()  # checkpoints unchanged
    inputs, samples = make_batch()
    loss_e, grad_e = _loss_and_grads(eager, inputs, samples)
    loss_c, grad_c = _loss_and_grads(compiled, inputs, samples)
    assert loss_e.keys() == loss_c.keys() and grad_e.keys() == grad_c.keys()
    for k in loss_e:
        torch.testing.assert_close(loss_c[k], loss_e[k], rtol=1e-5, atol=1e-6)
    for n in grad_e:
        scale = grad_e[n].abs().max().clamp(min=1e-6)
        assert ((grad_c[n] - grad_e[n]).abs().max() / scale).item() < 1e-4, n
    # the graphs were captured (not silently skipped): Dynamo compiled frames of the layers' forward
    assert _unique_graphs() - graphs_before >= 2


def test_layers_of_a_kind_share_their_graphs():
    """DETR with 4 encoder and 4 decoder layers: 8 compiled modules, at most 4 graphs (the first encoder layer's
    input has other strides, the first decoder layer's query needs no gradient), not one or more per layer; a
    second step compiles nothing new."""
    import mmdet_plugins  # noqa: F401
    from mmdet.registry import MODELS
    from helpers import load_config, quiet_init_weights, shrink_model_cfg
    torch._dynamo.reset()
    cfg = shrink_model_cfg(load_config(DETECTOR_CONFIGS['DETR'][0]).model)
    cfg.encoder.num_layers = cfg.decoder.num_layers = 4
    model = MODELS.build(cfg)
    quiet_init_weights(model)
    no_dropout(model).train()
    assert len(compile_submodules(model, backend='aot_eager', dynamic=False)) == 8
    before = _unique_graphs()
    _loss_and_grads(model, *make_batch())
    first = _unique_graphs() - before
    _loss_and_grads(model, *make_batch())
    assert 2 <= first <= 4 and _unique_graphs() - before == first


def test_deep_copy_of_a_compiled_model_runs_its_own_weights():
    model = no_dropout(build_detector('DETR', bf=False)).train()
    compile_submodules(model, ['encoder.layers'], backend='aot_eager')
    twin = copy.deepcopy(model)
    layer, twin_layer = model.encoder.layers[0], twin.encoder.layers[0]
    assert twin_layer.forward.__self__ is twin_layer and layer.forward.__self__ is layer
    with torch.no_grad():
        for p in twin_layer.parameters():
            p.add_(1.0)
    x = torch.randn(2, 6, layer.embed_dims)
    pos = torch.zeros_like(x)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    out = layer(query=x, query_pos=pos, key_padding_mask=mask)
    twin_out = twin_layer(query=x, query_pos=pos, key_padding_mask=mask)
    assert not torch.allclose(out, twin_out)


def test_compile_is_idempotent_and_eager_forward_switches_back():
    model = build_detector('DETR', bf=False)
    layer = model.encoder.layers[0]
    original = layer.forward
    assert compile_submodules(model, ['encoder.layers'], backend='aot_eager') == ['encoder.layers.0',
                                                                                 'encoder.layers.1']
    compiled_fn = layer.forward
    assert compiled_fn != original and layer.__dict__[COMPILED_ATTR] is compiled_fn
    assert compile_submodules(model, ['encoder.layers', 'backbone'], backend='aot_eager') == ['backbone']
    with eager_forward(compiled_modules(model).values()):
        assert layer.forward == original and 'forward' not in model.backbone.__dict__
    assert layer.forward is compiled_fn


@pytest.mark.parametrize('targets,match', [
    (['encoder.layerz'], r"encoder has no submodule 'layerz'.*'layers'"),
    (['transformer'], r"the model has no submodule 'transformer'.*'encoder'"),
    ([], 'targets is empty'),
])
def test_bad_targets_say_what_exists(targets, match):
    model = build_detector('DETR', bf=False)
    with pytest.raises(ValueError, match=match):
        compile_submodules(model, targets)
    if targets:
        hook = CompileLayersHook(targets=targets)
        runner = SimpleNamespace(model=model, logger=logging.getLogger('test'))
        with pytest.raises(ValueError, match=match):
            hook.before_train(runner)
    else:
        with pytest.raises(ValueError, match=match):
            CompileLayersHook(targets=targets)


def test_hook_compiles_for_training_and_evaluates_eagerly():
    from mmengine.registry import HOOKS
    model = build_detector('DETR', bf=True)
    runner = SimpleNamespace(model=SimpleNamespace(module=model), logger=logging.getLogger('test'))  # DDP-like
    cpu_default = HOOKS.build(dict(type='CompileLayersHook'))
    cpu_default.before_train(runner)  # on the CPU, by default: left eager
    assert cpu_default.compiled == [] and not compiled_modules(model)
    hook = HOOKS.build(dict(type='CompileLayersHook', backend='aot_eager', cpu=True))
    hook.before_train(runner)
    assert hook.compiled == ['encoder.layers.0', 'encoder.layers.1', 'decoder.layers.0', 'decoder.layers.1']
    layer = model.decoder.layers[1]
    compiled_fn = layer.forward
    hook.before_val_epoch(runner)
    assert 'forward' not in layer.__dict__  # validation: the class's (eager) forward
    hook.before_val_epoch(runner)  # twice (an evaluation that did not end cleanly): still switched back after
    hook.after_val_epoch(runner)
    assert layer.forward is compiled_fn  # training again: compiled
    hook.before_test_epoch(runner)
    assert 'forward' not in layer.__dict__
    hook.after_test_epoch(runner)
    assert layer.forward is compiled_fn
    hook.before_train(runner)  # a second call compiles nothing new and keeps the record
    assert len(hook.compiled) == 4 and layer.forward is compiled_fn


def test_runner_trains_validates_and_trains_again_with_compiled_layers(tmp_path):
    """mmengine's Runner: train 2 iterations, validate (eager), train 2 more (compiled again), validate; the
    checkpoint holds the uncompiled model's keys."""
    import mmdet_plugins  # noqa: F401
    from mmengine.runner import Runner
    data = write_tiny_coco(str(tmp_path / 'coco'))
    cfg = tiny_runner_cfg(DETECTOR_CONFIGS['DETR'][1], data, str(tmp_path / 'work'), max_iters=4)
    cfg.train_cfg.val_interval = 2
    cfg.default_hooks.checkpoint.interval = 4
    cfg.custom_hooks = [dict(type='CompileLayersHook', backend='aot_eager', cpu=True)]
    runner = Runner.from_cfg(cfg)
    runner.train()
    hook = next(h for h in runner.hooks if type(h).__name__ == 'CompileLayersHook')
    assert len(hook.compiled) == 4
    assert all(m.__dict__.get('forward') is m.__dict__[COMPILED_ATTR] for m in compiled_modules(runner.model).values())
    state = torch.load(osp.join(cfg.work_dir, 'iter_4.pth'), map_location='cpu', weights_only=False)['state_dict']
    assert set(state) == set(build_detector('DETR', bf=True).state_dict())


@pytest.mark.parametrize('traceable', [True, False])
def test_deformable_layers_compile_whole_with_the_traceable_attention(traceable):
    """With the traceable deformable attention (the default) Dynamo captures each Deformable DETR layer, and the
    head, without a graph break; with mmcv's module it breaks at the attention's host-side reads."""
    from torch._dynamo.utils import counters
    from mmdet_plugins.fast_training.deform_attn import TraceableMultiScaleDeformableAttention
    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    model = no_dropout(build_detector('DeformableDETR', bf=True)).train()
    compile_submodules(model, ['encoder.layers', 'decoder.layers', 'bbox_head'], traceable_deform_attn=traceable,
                       backend='aot_eager', dynamic=False)
    switched = [m for m in model.modules() if isinstance(m, TraceableMultiScaleDeformableAttention)]
    assert len(switched) == (4 if traceable else 0)  # 2 encoder + 2 decoder layers
    _loss_and_grads(model, *make_batch())
    breaks = sum(counters['graph_break'].values())
    assert (breaks == 0) if traceable else (breaks > 0)



def test_cudagraph_mode_marks_each_training_step(monkeypatch):
    """In a CUDA-graph mode the hook tells torch where each training step begins; otherwise it does not."""
    from mmengine.registry import HOOKS
    marks = []
    monkeypatch.setattr(torch.compiler, 'cudagraph_mark_step_begin', lambda: marks.append(1))
    runner = SimpleNamespace(model=build_detector('DETR', bf=False), logger=logging.getLogger('test'))
    plain = HOOKS.build(dict(type='CompileLayersHook', backend='aot_eager', cpu=True))
    plain.before_train(runner)
    plain.before_train_iter(runner, 0)
    assert marks == []
    graphs = HOOKS.build(dict(type='CompileLayersHook', backend='aot_eager', mode='reduce-overhead', cpu=True))
    graphs.before_train_iter(runner, 0)  # nothing compiled yet: nothing to mark
    assert marks == []
    graphs.compiled = ['encoder.layers.0']
    graphs.before_train_iter(runner, 1)
    assert marks == [1]
