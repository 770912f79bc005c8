"""MergedGroupsOptimWrapperConstructor: few param groups, each parameter's options and updates unchanged."""
import copy

import torch

from helpers import build_detector, load_config


def _build(constructor, model):
    from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
    import mmdet_plugins  # noqa: F401
    cfg = load_config('configs/mini/bf-deformable-detr_r18_1xb16-mini.py').optim_wrapper
    cfg = copy.deepcopy(cfg.to_dict())
    cfg['type'] = 'OptimWrapper'  # (AMP needs CUDA)
    cfg.pop('loss_scale', None)
    paramwise_cfg = cfg.pop('paramwise_cfg')
    cfg.pop('constructor', None)
    builder = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(type=constructor, optim_wrapper_cfg=cfg,
                                                    paramwise_cfg=paramwise_cfg))
    return builder(model)


def _options_by_param(optimizer):
    return {id(p): {k: v for k, v in g.items() if k != 'params'} for g in optimizer.param_groups for p in g['params']}


def test_merged_groups_give_the_same_updates_with_far_fewer_groups():
    torch.manual_seed(0)
    stock_model = build_detector('DeformableDETR', bf=True)
    merged_model = copy.deepcopy(stock_model)
    stock = _build('DefaultOptimWrapperConstructor', stock_model)
    merged = _build('MergedGroupsOptimWrapperConstructor', merged_model)
    n_params = sum(1 for p in stock_model.parameters() if p.requires_grad)
    assert len(stock.optimizer.param_groups) == n_params  # mmengine: one group per parameter
    # backbone, sampling offsets / reference points at 0.1x lr, the rest (and their no-decay variants, if any)
    assert len(merged.optimizer.param_groups) <= 4
    # every parameter keeps its own options
    stock_opts, merged_opts = _options_by_param(stock.optimizer), _options_by_param(merged.optimizer)
    for (name, p_stock), p_merged in zip(stock_model.named_parameters(), merged_model.parameters()):
        if p_stock.requires_grad:
            assert stock_opts[id(p_stock)] == merged_opts[id(p_merged)], name
    lrs = {g['lr'] for g in merged.optimizer.param_groups}
    assert len(lrs) == 2 and max(lrs) == 2e-4  # 0.1x for the deformable sampling parameters
    # two AdamW steps (with gradient clipping) on the same gradients: the same parameters, up to the rounding of
    # the clipping norm (a sum over the parameters, which the merged groups list in another order)
    for step in range(2):
        for model, wrapper in ((stock_model, stock), (merged_model, merged)):
            torch.manual_seed(step)
            for p in model.parameters():
                p.grad = torch.randn_like(p) if p.requires_grad else None
            wrapper.step()
            wrapper.zero_grad()
    for (name, a), b in zip(stock_model.named_parameters(), merged_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9, msg=name)
