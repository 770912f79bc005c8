# DETR R50 panoptic, stage 1: the box model of DETR's panoptic recipe (facebookresearch/detr README, "Usage -
# Segmentation"), detecting the 80 thing and 53 stuff classes of COCO panoptic 2017 (a box per stuff segment from its
# mask: AddStuffInstances), 300 epochs with the lr x0.1 at 200, 8 GPUs x 2 images, DETR's optimiser and
# augmentation. No validation: PQ comes with stage 2 (detr-panoptic-stage2_*), which starts from this run's last
# checkpoint. Data in mmdet's COCO panoptic layout under data/coco/.
_base_ = 'mmdet::detr/detr_r50_8xb2-150e_coco.py'
custom_imports = dict(imports=['mmdet_plugins'], allow_failed_imports=False)

data_root = 'data/coco/'
model = dict(bbox_head=dict(num_classes=133))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='AddStuffInstances', num_things_classes=80),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoice',
         transforms=[[dict(type='RandomChoiceResize', scales=[(s, 1333) for s in range(480, 801, 32)],
                           keep_ratio=True)],
                     [dict(type='RandomChoiceResize', scales=[(400, 1333), (500, 1333), (600, 1333)],
                           keep_ratio=True),
                      dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
                           allow_negative_crop=True),
                      dict(type='RandomChoiceResize', scales=[(s, 1333) for s in range(480, 801, 32)],
                           keep_ratio=True)]]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=2,
    dataset=dict(_delete_=True, type='CocoPanopticDataset', data_root=data_root,
                 ann_file='annotations/panoptic_train2017.json',
                 data_prefix=dict(img='train2017/', seg='annotations/panoptic_train2017/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline=train_pipeline))
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None

max_epochs = 300
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[200], gamma=0.1)
]
auto_scale_lr = dict(base_batch_size=16)
