"""Compile a detector's repeated layers with ``torch.compile`` for training, selected from a config.

At the mini benchmark's scale a training step is bound by host work: thousands of small kernels, each launched
by Python and recorded by autograd (``results/measured/profile_mini/``). ``torch.compile`` fuses the elementwise
work of a transformer layer (dropout, residual, LayerNorm, activation, the AMP casts) into a few kernels and
turns each layer's backward into one autograd node, so the host launches far fewer.

What is compiled: each child of the ModuleLists named in ``targets`` (default: the encoder's and the decoder's
layers; layers of one kind share their compiled graphs, tests/mmdet_plugins/fast_training/test_compiled_layers.py) and any other module
named there (e.g. ``'backbone'``; ``targets`` replaces the default list). Only the module's ``forward`` is
replaced, on the instance, by the class's forward compiled and bound to it (a deep copy of the model rebinds it
to the copy), so parameter names, the state dict and checkpoints are exactly the uncompiled model's; hooks
registered on the modules still run. Validation and testing run the
layers eagerly (the hook switches the compiled forwards off around them), so evaluation is the stock code path.

Deformable attention: mmcv's ``MultiScaleDeformableAttention`` inside the targets is switched (in place, same
parameters) to :class:`~mmdet_plugins.fast_training.deform_attn.TraceableMultiScaleDeformableAttention`, which calls
the same mmcv kernels as a PyTorch custom operator, so each Deformable DETR layer compiles into one graph instead of
being cut around the attention (``traceable_deform_attn=False`` keeps mmcv's module). The switched module computes
bitwise the same in eager mode (tests/mmdet_plugins/fast_training/test_deform_attn.py), so validation is unaffected.

Numerics: the compiled kernels compute the same functions, not bit for bit the same floating-point operations
(fused kernels round in another order); tests/mmdet_plugins/fast_training/test_compiled_layers.py bounds the difference of losses and
gradients, and a mini run's AP is the judge (results/measured/README.md).

Use it in a config::

    custom_hooks = [dict(type='CompileLayersHook')]
"""
from __future__ import annotations

import types
from contextlib import contextmanager
from typing import Dict, Iterable, List, Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch import nn

from ..utils.model_utils import unwrap_model
from .deform_attn import make_deform_attn_traceable

DEFAULT_TARGETS = ('encoder.layers', 'decoder.layers')
COMPILED_ATTR = '_bf_compiled_forward'  # on a compiled module: its compiled forward (active or switched off)
CUDAGRAPH_MODES = ('reduce-overhead', 'max-autotune')  # torch.compile modes that replay CUDA graphs


def resolve_submodule(model: nn.Module, path: str) -> nn.Module:
    """The submodule of ``model`` at the dotted attribute ``path``, with an error naming what exists."""
    module = model
    walked = []
    for name in path.split('.'):
        children = dict(module.named_children())
        if name not in children:
            where = '.'.join(walked) or 'the model'
            raise ValueError(f"CompileLayersHook: target '{path}': {where} has no submodule '{name}'; its "
                             f'submodules are {sorted(children)}. Give targets as dotted attribute paths such '
                             f"as 'encoder.layers' or 'backbone'.")
        module = children[name]
        walked.append(name)
    return module


def target_list(targets) -> List[str]:
    """``targets`` (a dotted path or a sequence of them) as a non-empty list."""
    targets = [targets] if isinstance(targets, str) else list(targets)
    if not targets:
        raise ValueError('CompileLayersHook: targets is empty; name at least one submodule, e.g. '
                         "'encoder.layers'.")
    return targets


def compile_submodules(model: nn.Module, targets: Sequence[str] = DEFAULT_TARGETS,
                       traceable_deform_attn: bool = True, **compile_kwargs) -> List[str]:
    """Replace the ``forward`` of each target module (each child, for a ModuleList or Sequential target) by
    ``torch.compile(type(module).forward, **compile_kwargs)`` bound to the module.

    Args:
        model: the detector (unwrapped from DDP).
        targets: dotted attribute paths; every one must exist.
        traceable_deform_attn: first switch mmcv's deformable attention modules inside the targets to
            :class:`~mmdet_plugins.fast_training.deform_attn.TraceableMultiScaleDeformableAttention`.
        **compile_kwargs: passed to ``torch.compile`` (``backend``, ``mode``, ``dynamic``, ...).

    Returns:
        The dotted names of the modules compiled, in order. A module compiled already is left as it is.
    """
    compiled = []
    for path in target_list(targets):
        module = resolve_submodule(model, path)
        if traceable_deform_attn:
            make_deform_attn_traceable(module)
        if isinstance(module, (nn.ModuleList, nn.Sequential)):
            members = [(f'{path}.{name}', child) for name, child in module.named_children()]
        else:
            members = [(path, module)]
        for name, member in members:
            if COMPILED_ATTR in member.__dict__:
                continue
            if 'forward' in member.__dict__:
                raise ValueError(f'CompileLayersHook: {name} has its own forward on the instance (another tool '
                                 f'replaced it); compile its class forward only on an unmodified module.')
            # a method bound to the module: copy.deepcopy rebinds it to the copy (a closure would not)
            bound = types.MethodType(torch.compile(type(member).forward, **compile_kwargs), member)
            member.__dict__[COMPILED_ATTR] = bound
            member.forward = bound
            compiled.append(name)
    return compiled


def compiled_modules(model: nn.Module) -> Dict[str, nn.Module]:
    """The modules of ``model`` whose forward :func:`compile_submodules` replaced, by name."""
    return {name: m for name, m in model.named_modules() if COMPILED_ATTR in m.__dict__}


def use_compiled(modules: Iterable[nn.Module], on: bool) -> List[nn.Module]:
    """Give each compiled module among ``modules`` its compiled forward (``on``) or its class's (eager) one;
    returns the modules that changed. Whether a module runs compiled is its own state: calling this twice is
    the same as once."""
    changed = []
    for m in modules:
        if COMPILED_ATTR not in m.__dict__ or ('forward' in m.__dict__) == on:
            continue
        if on:
            m.forward = m.__dict__[COMPILED_ATTR]
        else:
            del m.__dict__['forward']  # the class's forward again
        changed.append(m)
    return changed


@contextmanager
def eager_forward(modules: Iterable[nn.Module]):
    """Run the given compiled modules with their original forward inside this context."""
    switched = use_compiled(modules, on=False)
    try:
        yield
    finally:
        use_compiled(switched, on=True)


@HOOKS.register_module()
class CompileLayersHook(Hook):
    """Compile the named submodules before training; evaluate with the eager ones.

    Args:
        targets (Sequence[str]): dotted attribute paths of the modules to compile; a ModuleList (or
            Sequential) target compiles each child. Default ``('encoder.layers', 'decoder.layers')``.
        backend (str): ``torch.compile``'s backend. Default ``'inductor'``.
        mode (str, optional): ``torch.compile``'s mode (``None``: its default). ``'reduce-overhead'`` also
            records each compiled module's kernels as a CUDA graph and replays it (one launch instead of
            hundreds: the mini step's layers have static shapes); the hook marks each training step's start
            for it.
        dynamic (bool): ``torch.compile``'s ``dynamic``. Default False: one static graph per input shape
            (BatchFormerV2's two-stream layers see B and 2B samples: two graphs), which the mini benchmark's
            fixed canvas size keeps few.
        cpu (bool): also compile when the model is on the CPU (default False: on the CPU the hook only logs
            that it left the model eager, since Inductor's CPU code generation is slow to start and the CPU
            runs here are the smoke checks).
        traceable_deform_attn (bool): switch mmcv's deformable attention inside the targets to the traceable
            module first (see above). Default True.
    """
    priority = 'VERY_HIGH'

    def __init__(self, targets: Sequence[str] = DEFAULT_TARGETS, backend: str = 'inductor',
                 mode: Optional[str] = None, dynamic: bool = False, cpu: bool = False,
                 traceable_deform_attn: bool = True) -> None:
        self.targets = target_list(targets)
        self.compile_kwargs = dict(backend=backend, mode=mode, dynamic=dynamic)
        self.traceable_deform_attn = traceable_deform_attn
        self.cpu = cpu
        self.compiled: List[str] = []

    def before_train(self, runner) -> None:
        model = unwrap_model(runner.model)
        for path in self.targets:  # fail on a wrong path on every device, before any training
            resolve_submodule(model, path)
        device = next(model.parameters()).device
        if device.type == 'cpu' and not self.cpu:
            runner.logger.info('CompileLayersHook: the model is on the CPU; left eager (cpu=True compiles it)')
            return
        self.compiled += compile_submodules(model, self.targets, traceable_deform_attn=self.traceable_deform_attn,
                                            **self.compile_kwargs)  # (none the 2nd time)
        runner.logger.info(f'CompileLayersHook: compiled {len(self.compiled)} modules ({self.compile_kwargs}): '
                           f'{", ".join(self.compiled)}')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self.compiled and self.compile_kwargs['mode'] in CUDAGRAPH_MODES:
            # a new training step: the CUDA graphs' outputs of the last one may be overwritten now
            torch.compiler.cudagraph_mark_step_begin()

    def _eager_on(self, runner) -> None:
        use_compiled(compiled_modules(unwrap_model(runner.model)).values(), on=False)

    def _eager_off(self, runner) -> None:
        use_compiled(compiled_modules(unwrap_model(runner.model)).values(), on=True)

    def before_val_epoch(self, runner) -> None:
        self._eager_on(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._eager_off(runner)

    def before_test_epoch(self, runner) -> None:
        self._eager_on(runner)

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._eager_off(runner)
