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


MINI_DETECTOR_CONFIGS = [p for p in CONFIGS if osp.dirname(p) == 'configs/mini']
BLOCK_START, BLOCK_END = '# --- mini block:', '# --- end of the mini block'


def mini_block(path):
    text = open(osp.join(REPO, path)).read()
    assert text.count(BLOCK_START) == 1 and text.count(BLOCK_END) == 1, path
    return text[text.index(BLOCK_START):text.index(BLOCK_END)]


def test_the_mini_configs_share_one_marked_block():
    """Every detector config of configs/mini/ holds the marked block, the same text in each."""
    assert len(MINI_DETECTOR_CONFIGS) == 12
    blocks = {path: mini_block(path) for path in MINI_DETECTOR_CONFIGS if not osp.basename(path).startswith('bf-')}
    assert len(set(blocks.values())) == 1, sorted(blocks)


@pytest.mark.parametrize('key', ['train_dataloader', 'val_dataloader', 'test_dataloader', 'val_evaluator',
                                 'test_evaluator', 'default_hooks', 'log_processor', 'auto_scale_lr'])
def test_the_mini_block_gives_every_config_the_same_settings(key):
    values = {path: load_config(path).get(key) for path in MINI_DETECTOR_CONFIGS}
    assert all(v == values[MINI_DETECTOR_CONFIGS[0]] for v in values.values()), key


def test_config_headers_say_what_the_config_is():
    """A mini config's header names the detector and the benchmark; its calibration history lives in docs/."""
    for path in MINI_DETECTOR_CONFIGS:
        if osp.basename(path).startswith('bf-'):
            continue
        header = open(osp.join(REPO, path)).read().split('_base_')[0]
        assert 'on the mini benchmark' in header and 'docs/mini_benchmark.md' in header, path
        assert 'results/logs/' not in header and 'stayed at chance' not in header, path
