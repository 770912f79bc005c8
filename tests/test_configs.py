"""Every config under configs/ loads and builds its model."""
import glob
import os.path as osp

import pytest

from helpers import REPO, load_config

CONFIGS = sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True))


def test_configs_found():
    assert len(CONFIGS) >= 10


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds(path):
    import mmdet_plugins  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = load_config(path)
    assert 'mmdet_plugins' in cfg.custom_imports['imports']
    cfg.model.backbone.init_cfg = None  # no network: skip the torchvision:// download
    model = MODELS.build(cfg.model)
    is_bf = osp.basename(path).startswith('bf-')
    assert type(model).__name__.startswith('BF') == is_bf
    if is_bf:
        assert model.bf_insert_idx == [0] and model.bf_mode == 'two_stream'
        assert sum(p.numel() for p in model.batchformer.parameters()) > 0
