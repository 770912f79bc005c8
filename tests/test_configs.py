"""Every config under configs/ loads and builds its model."""
import glob
import os
import os.path as osp

import pytest

from helpers import REPO, load_config

CONFIGS = sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p.split(os.sep))  # _base_ files are fragments, not runnable configs


def test_configs_found():
    assert len(CONFIGS) >= 20


@pytest.mark.parametrize('path', [p for p in CONFIGS if '/mini/' in p and not osp.basename(p).startswith('bf-')])
def test_mini_pair_differs_only_in_batchformer(path):
    """A mini BatchFormerV2 config is its baseline plus the batchformer setting (and the detector type)."""
    base = load_config(path).to_dict()
    bf = load_config(osp.join(osp.dirname(path), 'bf-' + osp.basename(path))).to_dict()
    bf_model, base_model = bf.pop('model'), base.pop('model')
    assert bf == base
    assert bf_model.pop('batchformer')['insert_idx'] == [0]
    assert bf_model.pop('type') == 'BF' + base_model.pop('type')
    assert bf_model == base_model


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
