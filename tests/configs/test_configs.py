"""Every config under configs/ loads and builds its model."""
import glob
import os
import os.path as osp

import pytest

from helpers import REPO, load_config

ALL_CONFIGS = sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                     if '_base_' not in p.split(os.sep))  # _base_ files are fragments, not runnable configs
CLASSIFICATION_CONFIGS = [p for p in ALL_CONFIGS if p.startswith('configs/deit/')]  # mmpretrain scope
CONFIGS = [p for p in ALL_CONFIGS if p not in CLASSIFICATION_CONFIGS]  # detectors (mmdet scope)


def test_configs_found():
    assert len(CONFIGS) >= 20


@pytest.mark.parametrize('path', [p for p in CONFIGS if '/mini/' in p and not osp.basename(p).startswith('bf-')
                                  and '-from-bf-' not in p])  # (a plain model on a BF stage 1 has no BF partner)
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
        assert sum(p.numel() for p in model.batchformer.parameters()) > 0
        if not path.startswith('configs/mini/ablation/'):  # (the ablation variants change the setting: below)
            assert model.bf_insert_idx == [0] and model.bf_mode == 'two_stream'


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


ABLATION_CONFIGS = [p for p in CONFIGS if p.startswith('configs/mini/ablation/')]


def test_ablation_configs_found():
    assert len(ABLATION_CONFIGS) == 11  # 10 variants of Deformable DETR, 1 of SMCA-DETR


@pytest.mark.parametrize('path', ABLATION_CONFIGS)
def test_an_ablation_config_changes_one_batchformer_setting_of_the_default(path):
    detector = 'smca-detr' if '/bf-smca-detr-' in path else 'deformable-detr'
    default = load_config(f'configs/mini/bf-{detector}_r18_1xb16-mini.py').to_dict()
    variant = load_config(path).to_dict()
    d_bf, v_bf = default['model'].pop('batchformer'), variant['model'].pop('batchformer')
    assert variant == default
    changed = {k for k in set(d_bf) | set(v_bf) if d_bf.get(k) != v_bf.get(k)}
    assert len(changed) == 1 or changed == {'insert_idx', 'shared'} or changed == {'insert_idx'}, changed


# ------------------------------------------------------------------------------------- classification (mmpretrain)
def test_classification_configs_found():
    assert len(CLASSIFICATION_CONFIGS) == 12  # 3 models x 3 arms at full scale, 3 arms at the mini scale


@pytest.mark.parametrize('path', CLASSIFICATION_CONFIGS)
def test_classification_config_builds(path):
    pytest.importorskip('mmpretrain')
    from mmengine.registry import DefaultScope
    import mmdet_plugins.classification  # noqa: F401
    from mmpretrain.registry import MODELS
    cfg = load_config(path)
    assert cfg.default_scope == 'mmpretrain' and 'mmdet_plugins.classification' in cfg.custom_imports['imports']
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    name = osp.basename(path)
    assert model.data_preprocessor.std.numel() in (1, 3)  # the normalisation reached the model
    if name.startswith('bf-'):
        assert type(model).__name__ == 'BFImageClassifier' and model.backbone.bf_insert_idx == [8]
        assert model.bf_mode == ('released' if name.startswith('bf-released-') else 'two_stream')
    else:
        assert type(model).__name__ == 'ImageClassifier'


@pytest.mark.parametrize('path', [p for p in CLASSIFICATION_CONFIGS if not osp.basename(p).startswith('bf-')])
def test_classification_arms_differ_only_in_batchformer(path):
    """The BatchFormerV2 configs are their baseline plus the batchformer setting (the two-stream mini config also
    logs the gradient per class)."""
    base = load_config(path).to_dict()
    folder, name = osp.split(path)
    for prefix, mode in (('bf-', 'two_stream'), ('bf-released-', 'released')):
        bf = load_config(osp.join(folder, prefix + name)).to_dict()
        bf_model, base_model = bf.pop('model'), dict(base)['model']
        hooks = bf.pop('custom_hooks', None)
        other = {k: v for k, v in base.items() if k not in ('model', 'custom_hooks')}
        assert {k: v for k, v in bf.items() if k != 'custom_hooks'} == other
        grad_hook = dict(type='ClsGradPerClassHook', interval=50, max_images=16, write_interval=1000)
        assert hooks in (base.get('custom_hooks'), (base.get('custom_hooks') or []) + [grad_hook])
        assert bf_model.pop('type') == 'BF' + base_model['type']
        assert bf_model['backbone'].pop('batchformer') == dict(insert_idx=[8], mode=mode)
        assert bf_model['backbone'].pop('type') == 'BF' + base_model['backbone']['type']
        assert bf_model == {k: v for k, v in base_model.items() if k != 'type'} | dict(backbone=bf_model['backbone'])
