# DETR R50 panoptic, stage 2: DETR's mask head trained on the frozen stage-1 detector (DETR's
# --masks --frozen_weights): attention maps of the last decoder layer's queries over the memory, a small FPN over
# C5..C2, focal + dice mask losses (weights 1, 1), 25 epochs with the lr x0.1 at 15, 8 GPUs x 2 images; DETR's
# panoptic fusion, PQ on COCO panoptic val2017 (mmdet's CocoPanopticMetric). load_from: the stage-1 run's last
# checkpoint (reproduce/table_panoptic.sh sets it; else --cfg-options load_from=PATH).
_base_ = './detr-panoptic-stage1_r50_8xb2-300e_coco-panoptic.py'

data_root = 'data/coco/'
model = dict(
    type='DETRPanoptic', num_things_classes=80, freeze_detector=True,
    backbone=dict(out_indices=(0, 1, 2, 3)),
    mask_head=dict(num_heads=8, fpn_dims=(1024, 512, 256)),  # ResNet-50's C4, C3, C2
    loss_mask_focal=1.0, loss_mask_dice=1.0,
    fusion=dict(threshold=0.85, min_area=4))
load_from = 'work_dirs/detr-panoptic-stage1_r50_8xb2-300e_coco-panoptic/epoch_300.pth'
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
val_dataloader = dict(
    _delete_=True, batch_size=1, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CocoPanopticDataset', data_root=data_root, ann_file='annotations/panoptic_val2017.json',
                 data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'), test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = dict(val_dataloader)
val_evaluator = dict(_delete_=True, type='CocoPanopticMetric', ann_file=data_root + 'annotations/panoptic_val2017.json',
                     seg_prefix=data_root + 'annotations/panoptic_val2017/')
test_evaluator = dict(val_evaluator)
# the first 4 validation images' predictions, for the panoptic figure (analysis/plot_panoptic.py)
custom_hooks = [dict(type='PanopticPredictionsHook', num_images=4)]
val_cfg = dict(_delete_=True, type='ValLoop')
test_cfg = dict(_delete_=True, type='TestLoop')

max_epochs = 25
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[15], gamma=0.1)
]
