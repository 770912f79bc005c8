# DeiT-Tiny (192 channels, 12 blocks, 3 heads) on 28 px images with 4 px patches (49 patches + the cls token),
# trained on the classification mini benchmark: Fashion-MNIST-LT (imbalance 100: 6000 down to 60 images per
# class, 14,886 in all), evaluated on the balanced 10,000 test images (top-1 overall, many/medium/few-shot).
# One GPU, batch 256 (the whole batch is BatchFormerV2's context), data held on the GPU, fp32 with TF32 matrix
# products (docs/classification.md).
_base_ = 'mmpretrain::_base_/default_runtime.py'
custom_imports = dict(imports=['mmdet_plugins.classification'], allow_failed_imports=False)
default_scope = 'mmpretrain'

model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(type='ShiftFlipClsDataPreprocessor', num_classes=10, mean=[72.94], std=[90.02],
                           to_rgb=False, max_shift=2, flip_prob=0.5),
    backbone=dict(type='VisionTransformer', arch='deit-tiny', img_size=28, patch_size=4, in_channels=1,
                  drop_path_rate=0.1),
    neck=None,
    head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=192,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')),
    init_cfg=[dict(type='TruncNormal', layer='Linear', std=.02),
              dict(type='Constant', layer='LayerNorm', val=1., bias=0.)],
)

data_root = ''  # '': $FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist (the Debian package)
train_dataloader = dict(
    batch_size=256, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='collate_gathered_batch'),
    dataset=dict(type='FashionMNISTLT', data_root=data_root, split='train', imbalance_ratio=100,
                 subsample_seed=0))
val_dataloader = dict(
    batch_size=1000, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='collate_gathered_batch'),
    dataset=dict(type='FashionMNISTLT', data_root=data_root, split='test', imbalance_ratio=100))
test_dataloader = val_dataloader
val_evaluator = dict(type='LongTailAccuracy', many_min=1000, few_max=200)
test_evaluator = val_evaluator

max_iters = 2000  # about 34 epochs of the long-tailed split (chosen so the 15-run table fits one H200 session)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='MergedGroupsOptimWrapperConstructor',  # the same updates in 3 parameter groups instead of 164
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05, betas=(0.9, 0.999)),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'.cls_token': dict(decay_mult=0.0), '.pos_embed': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=300),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False, begin=300, end=max_iters),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
)
log_processor = dict(by_epoch=False)
custom_hooks = [dict(type='Float32MatmulPrecisionHook', precision='high')]  # TF32 matrix products
auto_scale_lr = dict(base_batch_size=256)
