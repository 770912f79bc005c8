# DETR panoptic, stage 1, on the mini benchmark: the box model of DETR's panoptic recipe, detecting the canvases'
# things and stuff (10 + 3 classes; a box per stuff class from its mask), with the mini DETR settings (ResNet-18 GN
# pretrained on Fashion-MNIST, 50 queries, batch 16, AdamW 1e-4, AMP). No validation: a box model of things and
# stuff has no metric here; PQ comes with stage 2 (detr-panoptic-stage2_*), which starts from this run's last
# checkpoint. The schedule, 4000 iterations (half the mini DETR detector's), is chosen so that a pair of runs
# (baseline and BatchFormerV2 of one seed) trains both stages inside one 30-minute GPU session; whether every
# baseline learns on it is checked by its first runs (docs/panoptic.md).
_base_ = ['../detr_r18_1xb16-mini.py', '../_base_/fashion_canvas_panoptic.py']

max_iters = 4000
model = dict(bbox_head=dict(num_classes=13))
train_dataloader = {{_base_.mini_panoptic_train_dataloader}}
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[int(max_iters * 0.8)], gamma=0.1)
]
