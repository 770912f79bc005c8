"""mmdet_plugins/engine/compiled_layers.py: which modules are compiled, that the compiled detector computes the
same losses and gradients, that checkpoints are unchanged, that evaluation runs eagerly, and the errors.

Compilation here uses the ``aot_eager`` backend (Dynamo's graph capture and AOTAutograd's joint forward/backward
graph, run by eager kernels): the same tracing Inductor starts from, without its slow CPU code generation. The
Inductor numbers on the GPU are in results/measured/compiled_equivalence.csv."""
import copy
import logging
from types import SimpleNamespace

import pytest
import torch

from helpers import build_detector, make_batch, no_dropout
from mmdet_plugins.engine.compiled_layers import (COMPILED_ATTR, CompileLayersHook, compile_submodules,
                                                  compiled_modules, eager_forward)


def _loss_and_grads(model, inputs, samples):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=copy.deepcopy(samples)), True)
    losses = {k: v for k, v in model.loss(data['inputs'], data['data_samples']).items() if 'loss' in k}
    sum(losses.values()).backward()
    return ({k: v.detach() for k, v in losses.items()},
            {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})


@pytest.mark.parametrize('name,bf', [('DETR', True), ('DeformableDETR', False), ('DeformableDETR', True)])
def test_compiled_layers_give_the_same_losses_and_gradients(name, bf):
    torch._dynamo.reset()
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
    from torch._dynamo.utils import counters
    assert counters['stats']['unique_graphs'] >= 2


def test_compile_is_idempotent_and_eager_forward_switches_back():
    model = build_detector('DETR', bf=False)
    layer = model.encoder.layers[0]
    original = layer.forward
    assert compile_submodules(model, ['encoder.layers'], backend='aot_eager') == ['encoder.layers.0',
                                                                                 'encoder.layers.1']
    compiled_fn = layer.forward
    assert compiled_fn is not original and layer.__dict__[COMPILED_ATTR] == original
    assert compile_submodules(model, ['encoder.layers', 'backbone'], backend='aot_eager') == ['backbone']
    with eager_forward(compiled_modules(model).values()):
        assert layer.forward == original and model.backbone.forward == model.backbone.__dict__[COMPILED_ATTR]
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
    assert layer.forward == layer.__dict__[COMPILED_ATTR]  # validation: eager
    hook.after_val_epoch(runner)
    assert layer.forward is compiled_fn  # training again: compiled
    hook.before_test_epoch(runner)
    assert layer.forward == layer.__dict__[COMPILED_ATTR]
    hook.after_test_epoch(runner)
    assert layer.forward is compiled_fn
