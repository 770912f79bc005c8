"""Let float32 matrix products use TensorFloat-32 on GPUs that have it (``torch.set_float32_matmul_precision``).

PyTorch computes fp32 matrix products in full fp32 by default, on the GPU's SIMT units; ``'high'`` lets them use
the tensor cores with TF32 inputs (10-bit mantissa, fp32 accumulation), which most training recipes accept. The
hook sets the precision when the run starts and puts the previous one back when it ends.

    custom_hooks = [dict(type='Float32MatmulPrecisionHook', precision='high')]
"""
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

PRECISIONS = ('highest', 'high', 'medium')


def apply_config_matmul_precision(cfg) -> None:
    """Set the precision a config's ``Float32MatmulPrecisionHook`` would set, for scripts that build a config's
    model without its Runner (benchmarks, analyses); a config without the hook changes nothing."""
    for hook in cfg.get('custom_hooks', []):
        if hook['type'] == 'Float32MatmulPrecisionHook':
            torch.set_float32_matmul_precision(hook.get('precision', 'high'))


@HOOKS.register_module()
class Float32MatmulPrecisionHook(Hook):
    """Args: precision: ``'highest'`` (PyTorch's default, full fp32), ``'high'`` (TF32) or ``'medium'`` (bf16)."""
    priority = 'VERY_HIGH'

    def __init__(self, precision: str = 'high') -> None:
        if precision not in PRECISIONS:
            raise ValueError(f'Float32MatmulPrecisionHook: precision must be one of {PRECISIONS}, got {precision!r}')
        self.precision = precision
        self._previous = None

    def before_run(self, runner) -> None:
        self._previous = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision(self.precision)

    def after_run(self, runner) -> None:
        if self._previous is not None:
            torch.set_float32_matmul_precision(self._previous)
            self._previous = None
