"""Float32MatmulPrecisionHook sets the fp32 matmul precision for a run and restores it after."""
import pytest
import torch

from mmdet_plugins.runtime import Float32MatmulPrecisionHook


def test_sets_and_restores_the_precision():
    before = torch.get_float32_matmul_precision()
    hook = Float32MatmulPrecisionHook('high' if before != 'high' else 'medium')
    hook.before_run(None)
    assert torch.get_float32_matmul_precision() == hook.precision != before
    hook.after_run(None)
    assert torch.get_float32_matmul_precision() == before


def test_refuses_an_unknown_precision():
    with pytest.raises(ValueError, match="'highest', 'high', 'medium'"):
        Float32MatmulPrecisionHook('tf32')


def test_a_config_without_its_runner_gets_the_hooks_precision():
    from mmengine.config import Config
    from mmdet_plugins.runtime import apply_config_matmul_precision
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision('highest')
        apply_config_matmul_precision(Config(dict(custom_hooks=[dict(type='OtherHook')])))
        assert torch.get_float32_matmul_precision() == 'highest'  # no hook: unchanged
        apply_config_matmul_precision(Config(dict(custom_hooks=[dict(type='Float32MatmulPrecisionHook',
                                                                      precision='medium')])))
        assert torch.get_float32_matmul_precision() == 'medium'
    finally:
        torch.set_float32_matmul_precision(before)
