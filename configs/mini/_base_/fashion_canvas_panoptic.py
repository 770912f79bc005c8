# Panoptic settings of the mini benchmark: the canvases' COCO-panoptic annotations (10 thing classes, 3 stuff
# textures; mmdet_plugins/datasets/fashion_canvas.py writes them beside the detection ones). Keys are prefixed
# `mini_panoptic_` so that this file can sit beside a mini detector config in `_base_`.
mini_panoptic_root = 'data/fashion_canvas/'
mini_panoptic_things = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag',
                        'Ankle boot')
mini_panoptic_stuff = ('stripes', 'checks', 'speckle')
mini_panoptic_metainfo = dict(classes=mini_panoptic_things + mini_panoptic_stuff, thing_classes=mini_panoptic_things,
                              stuff_classes=mini_panoptic_stuff)
mini_panoptic_canvas = 320

# DETR detects things and stuff alike: AddStuffInstances turns each stuff class of an image into a box and a mask
# target, right after loading (mmdet's LoadPanopticAnnotations gives boxes and masks of the things only).
mini_panoptic_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='AddStuffInstances', num_things_classes=10),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=(mini_panoptic_canvas, mini_panoptic_canvas), keep_ratio=True),
    dict(type='PackDetInputs'),
]
mini_panoptic_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(mini_panoptic_canvas, mini_panoptic_canvas), keep_ratio=True),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
mini_panoptic_train_dataloader = dict(
    _delete_=True, batch_size=16, num_workers=4, persistent_workers=True, pin_memory=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(type='CocoPanopticDataset', data_root=mini_panoptic_root, metainfo=mini_panoptic_metainfo,
                 ann_file='annotations/panoptic_train.json',
                 data_prefix=dict(img='train/', seg='annotations/panoptic_train/'),
                 filter_cfg=dict(filter_empty_gt=False), pipeline=mini_panoptic_train_pipeline))
mini_panoptic_val_dataloader = dict(
    _delete_=True, batch_size=16, num_workers=4, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CocoPanopticDataset', data_root=mini_panoptic_root, metainfo=mini_panoptic_metainfo,
                 ann_file='annotations/panoptic_val.json',
                 data_prefix=dict(img='val/', seg='annotations/panoptic_val/'), test_mode=True,
                 pipeline=mini_panoptic_test_pipeline))
mini_panoptic_val_evaluator = dict(
    _delete_=True, type='CocoPanopticMetric', ann_file=mini_panoptic_root + 'annotations/panoptic_val.json',
    seg_prefix=mini_panoptic_root + 'annotations/panoptic_val/')
# (copies with their own `_delete_`: a config that assigns both val_* and test_* needs two)
mini_panoptic_test_dataloader = dict(mini_panoptic_val_dataloader)
mini_panoptic_test_evaluator = dict(mini_panoptic_val_evaluator)
