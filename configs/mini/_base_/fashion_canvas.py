# Shared settings of the mini benchmark (Fashion-MNIST canvases, see mmdet_plugins/datasets/fashion_canvas.py).
# Every key is prefixed `mini_` so this file can sit beside a detector's full-scale config in `_base_`;
# the detector's mini config assigns them (`train_dataloader = {{_base_.mini_train_dataloader}}`).
# Generate the data first:  python -m mmdet_plugins.datasets.fashion_canvas data/fashion_canvas
mini_data_root = 'data/fashion_canvas/'
mini_canvas = 320
mini_classes = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag',
                'Ankle boot')

# ResNet-18 with GroupNorm so that no statistic couples the images of a batch (BatchFormerV2 is then the only
# cross-sample path). Trained from scratch by Deformable DETR and DINO (no ImageNet weights can be had here);
# the DETR-style detectors start from the Fashion-MNIST-pretrained one below.
# mini_backbone_c5: the last stage only (DETR, Conditional DETR, DAB-DETR; neck in_channels [512]);
# mini_backbone_c3c5: stages 2-4 (Deformable DETR, DINO; neck in_channels [128, 256, 512]).
mini_backbone_c5 = dict(
    _delete_=True, type='ResNet', depth=18, num_stages=4, out_indices=(3, ), frozen_stages=-1,
    norm_cfg=dict(type='GN', num_groups=32, requires_grad=True), norm_eval=False, style='pytorch',
    init_cfg=None)
mini_backbone_c3c5 = dict(mini_backbone_c5, out_indices=(1, 2, 3))
# The DETR-style detectors (DETR, Conditional DETR, DAB-DETR) do not learn from scratch here
# (docs/mini_benchmark.md); they start from the same ResNet-18 pretrained on Fashion-MNIST classification, the mini analogue
# of the paper's ImageNet backbone (mmdet_plugins/pretrain/fashion_mnist_backbone.py; the table script makes the
# checkpoint when it is missing), and train it at 0.1x the learning rate, as the paper's configs do.
mini_pretrained_checkpoint = 'data/pretrained/resnet18_gn_fashion_mnist.pth'
mini_backbone_c5_pretrained = dict(mini_backbone_c5,
                                   init_cfg=dict(type='Pretrained', checkpoint=mini_pretrained_checkpoint))

mini_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=(mini_canvas, mini_canvas), keep_ratio=True),
    dict(type='PackDetInputs'),
]
mini_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(mini_canvas, mini_canvas), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
mini_train_dataloader = dict(
    _delete_=True, batch_size=16, num_workers=4, persistent_workers=True, pin_memory=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(type='CocoDataset', data_root=mini_data_root, metainfo=dict(classes=mini_classes),
                 ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                 filter_cfg=dict(filter_empty_gt=False), pipeline=mini_train_pipeline))
mini_val_dataloader = dict(
    _delete_=True, batch_size=16, num_workers=4, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CocoDataset', data_root=mini_data_root, metainfo=dict(classes=mini_classes),
                 ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'), test_mode=True,
                 pipeline=mini_test_pipeline))
mini_val_evaluator = dict(_delete_=True, type='CocoMetric', ann_file=mini_data_root + 'annotations/instances_val.json',
                          metric='bbox', format_only=False)

# Training-speed components (mmdet_plugins/fast_training/README.md; same matchings, losses and updates as stock mmdet:
# tests/mmdet_plugins/fast_training/ and results/measured/fast_equivalence.csv): each mini config's head is the
# Batched*Head of mmdet_plugins/fast_training/heads.py with BatchedHungarianAssigner, the optimiser groups are
# merged, and images go to the GPU from pinned memory without blocking the host.
mini_fast_train_cfg = dict(assigner=dict(type='BatchedHungarianAssigner'))
mini_data_preprocessor = dict(non_blocking=True)

# AdamW 2e-4, clip 0.1, fp16 AMP; the backbone learns from scratch, so it gets the full lr (the full-scale
# configs give the pretrained backbone 0.1x); other multipliers of the base config (Deformable DETR's
# sampling offsets and reference points, 0.1x) are kept.
mini_optim_wrapper = dict(
    type='AmpOptimWrapper', loss_scale='dynamic',
    constructor='MergedGroupsOptimWrapperConstructor',  # one AdamW group per distinct setting (same updates)
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=1.0)}))
mini_default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=1),
    visualization=dict(type='DetVisualizationHook', draw=False))
mini_log_processor = dict(by_epoch=False)
mini_optim_wrapper_pretrained = dict(mini_optim_wrapper,
                                     paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
