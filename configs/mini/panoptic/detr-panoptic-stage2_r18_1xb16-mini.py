# DETR panoptic, stage 2, on the mini benchmark: DETR's mask head (attention maps of the last decoder layer's
# queries over the memory, a small FPN over C5..C2 of the ResNet-18) trained on the frozen stage-1 detector, focal +
# dice mask losses (weights 1, 1), DETR's panoptic fusion; PQ from mmdet's CocoPanopticMetric. The stage-1
# checkpoint comes with --cfg-options load_from=PATH (the stage-1 run of the same arm and seed).
# Schedule: 1000 iterations, the drop at 60% as DETR's 25 epochs with the drop at 15 (docs/panoptic.md).
_base_ = './detr-panoptic-stage1_r18_1xb16-mini.py'

max_iters = 1000
model = dict(
    type='DETRPanoptic', num_things_classes=10, freeze_detector=True,
    backbone=dict(out_indices=(0, 1, 2, 3)),
    mask_head=dict(num_heads=8, fpn_dims=(256, 128, 64)),  # ResNet-18's C4, C3, C2
    loss_mask_focal=1.0, loss_mask_dice=1.0,
    fusion=dict(threshold=0.85, min_area=4))
val_dataloader = {{_base_.mini_panoptic_val_dataloader}}
test_dataloader = {{_base_.mini_panoptic_test_dataloader}}
val_evaluator = {{_base_.mini_panoptic_val_evaluator}}
test_evaluator = {{_base_.mini_panoptic_test_evaluator}}
# the first 4 validation images' predictions, for the panoptic figure (analysis/plot_panoptic.py)
custom_hooks = [dict(type='PanopticPredictionsHook', num_images=4)]
val_cfg = dict(_delete_=True, type='ValLoop')
test_cfg = dict(_delete_=True, type='TestLoop')
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[int(max_iters * 0.6)], gamma=0.1)
]
