# DETR R50 baseline at the BatchFormerV2 paper's schedule: 50 epochs (lr x0.1 at 40), 8 GPUs x 2 images.
# mmdet's packaged config trains 150 epochs; only the schedule differs.
_base_ = 'mmdet::detr/detr_r50_8xb2-150e_coco.py'
custom_imports = dict(imports=['mmdet_plugins'], allow_failed_imports=False)

max_epochs = 50
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[40], gamma=0.1)
]
