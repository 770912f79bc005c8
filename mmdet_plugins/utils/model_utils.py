"""Small model helpers shared by the scripts and the tests."""
from __future__ import annotations

import torch


def unwrap_model(model):
    """The model inside a DDP-style wrapper (its ``.module``), or the model itself."""
    return model.module if hasattr(model, 'module') else model


def quiet_init_weights(model) -> None:
    """``model.init_weights()`` without mmengine's per-parameter log lines."""
    import logging
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)


def without_dropout(model):
    """Zero every dropout probability of a model (``nn.Dropout`` modules and float ``dropout`` attributes);
    train-mode behaviour is otherwise kept. Returns the model."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, 'dropout', None), float):
            module.dropout = 0.0
    return model
