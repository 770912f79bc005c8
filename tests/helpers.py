"""Shared helpers for the tests: small detector configs, synthetic batches, a tiny COCO dataset."""
from __future__ import annotations

import json
import os.path as osp
from copy import deepcopy

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

from mmdet_plugins.utils.model_utils import quiet_init_weights, without_dropout as no_dropout  # noqa: E402,F401
from reproduce.tables.detection import DETECTORS as _ZOO, config_path  # noqa: E402

# detector name -> (baseline config, BatchFormerV2 config) at full scale, relative to the repository root
DETECTOR_CONFIGS = {name: (config_path(name, False), config_path(name, True)) for name in _ZOO}
DETECTORS = list(DETECTOR_CONFIGS)


def load_config(rel_path):
    from mmengine.config import Config
    return Config.fromfile(osp.join(REPO, rel_path))


def shrink_model_cfg(model_cfg, num_classes=3, bf_dropout=0.0):
    """A CPU-sized copy of a detector config: ResNet-18 without pretrained weights, 2+2 transformer layers,
    few queries. Structure (encoder type, heads, matcher) is unchanged."""
    m = deepcopy(model_cfg)
    m.backbone.depth = 18
    m.backbone.init_cfg = None
    in_channels = {0: 64, 1: 128, 2: 256, 3: 512}
    m.neck.in_channels = [in_channels[i] for i in m.backbone.out_indices]
    m.encoder.num_layers = 2
    m.decoder.num_layers = 2
    m.num_queries = 20
    if 'test_cfg' in m and 'max_per_img' in m.test_cfg:
        m.test_cfg.max_per_img = 20
    m.bbox_head.num_classes = num_classes
    if 'dn_cfg' in m:
        m.dn_cfg.group_cfg = dict(dynamic=True, num_groups=None, num_dn_queries=10)
    if 'batchformer' in m:
        m.batchformer.dropout = bf_dropout
    return m


def build_detector(name, bf=True, **shrink_kwargs):
    """Build a small detector from this repository's configs (registering the plugins)."""
    import mmdet_plugins  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = load_config(DETECTOR_CONFIGS[name][1 if bf else 0])
    model = MODELS.build(shrink_model_cfg(cfg.model, **shrink_kwargs))
    quiet_init_weights(model)  # some parameters (e.g. level_embed) are uninitialised until init_weights
    return model


def make_batch(sizes=((64, 96), (48, 64)), num_boxes=(2, 1), seed=0, num_classes=3):
    """A padded batch of two differently sized images with ground truth (see mmdet_plugins.utils.synthetic)."""
    from mmdet_plugins.utils.synthetic import synthetic_batch
    return synthetic_batch(sizes, num_boxes, num_classes=num_classes, seed=seed)


def write_tiny_coco(root, num_train=4, num_val=2, seed=0, classes=('a', 'b', 'c')):
    """Write a tiny COCO-format detection dataset (coloured rectangles on noise) under ``root``.

    Layout: root/images/*.png, root/annotations/{train,val}.json. Returns ``root``.
    """
    from PIL import Image
    rng = np.random.default_rng(seed)
    img_dir = osp.join(root, 'images')
    ann_dir = osp.join(root, 'annotations')
    import os
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    colours = [(220, 40, 40), (40, 200, 40), (40, 40, 220)]
    for split, count in (('train', num_train), ('val', num_val)):
        images, annotations = [], []
        for i in range(count):
            h, w = int(rng.integers(56, 80)), int(rng.integers(64, 96))
            img = rng.integers(0, 80, size=(h, w, 3), dtype=np.uint8)
            name = f'{split}_{i}.png'
            image_id = len(images) + 1
            for _ in range(int(rng.integers(1, 3))):
                c = int(rng.integers(0, len(classes)))
                bw, bh = int(rng.integers(12, w // 2)), int(rng.integers(12, h // 2))
                x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
                img[y0:y0 + bh, x0:x0 + bw] = colours[c % len(colours)]
                annotations.append(dict(id=len(annotations) + 1, image_id=image_id, category_id=c + 1,
                                        bbox=[x0, y0, bw, bh], area=bw * bh, iscrowd=0))
            Image.fromarray(img).save(osp.join(img_dir, name))
            images.append(dict(id=image_id, file_name=name, height=h, width=w))
        categories = [dict(id=i + 1, name=n) for i, n in enumerate(classes)]
        with open(osp.join(ann_dir, f'{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return root


def tiny_runner_cfg(config_rel_path, data_root, work_dir, max_iters=2, classes=('a', 'b', 'c')):
    """A full mmengine Runner config from one of this repository's configs, sized for the CPU."""
    cfg = load_config(config_rel_path)
    cfg.model = shrink_model_cfg(cfg.model, num_classes=len(classes))
    cfg.work_dir = work_dir
    # unique per run: mmengine keeps one visualizer (and so one log folder) per experiment name
    cfg.experiment_name = f'{osp.basename(config_rel_path)}_{abs(hash(work_dir))}_{max_iters}'
    cfg.visualizer.name = cfg.experiment_name
    metainfo = dict(classes=classes)
    scale = (96, 64)
    train_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=scale, keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs'),
    ]
    test_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=scale, keep_ratio=True),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
    ]
    dataset = dict(type='CocoDataset', data_root=data_root, metainfo=metainfo, data_prefix=dict(img='images/'))
    cfg.train_dataloader = dict(
        batch_size=2, num_workers=0, persistent_workers=False,
        sampler=dict(type='InfiniteSampler', shuffle=True),
        batch_sampler=dict(type='AspectRatioBatchSampler'),
        dataset=dict(dataset, ann_file='annotations/train.json', pipeline=train_pipeline,
                     filter_cfg=dict(filter_empty_gt=False)))
    cfg.val_dataloader = dict(
        batch_size=2, num_workers=0, persistent_workers=False, drop_last=False,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(dataset, ann_file='annotations/val.json', pipeline=test_pipeline, test_mode=True))
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator = dict(type='CocoMetric', ann_file=osp.join(data_root, 'annotations/val.json'),
                             metric='bbox', format_only=False)
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=max_iters, by_epoch=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.log_processor = dict(by_epoch=False)
    cfg.default_hooks.visualization = dict(type='DetVisualizationHook', draw=False)
    cfg.env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'), dist_cfg=dict(backend='gloo'))
    cfg.randomness = dict(seed=0)
    cfg.pop('auto_scale_lr', None)
    return cfg
