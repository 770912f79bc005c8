# DETR on the mini benchmark (Fashion-MNIST canvases, 320x320, 10 classes, long-tailed training split):
# ResNet-18 (GroupNorm) pretrained on Fashion-MNIST at 0.1x lr, batch 16 on one GPU, DETR's own optimiser (AdamW 1e-4),
# 8000 iterations (lr x0.1 at 80%), fp16 AMP, 50 queries, the fast training components; transformer, head and
# matcher as the full-scale config. How this schedule was chosen: docs/mini_benchmark.md.
_base_ = ['../detr/detr_r50_8xb2-50e_coco.py', './_base_/fashion_canvas.py']

max_iters = 8000
model = dict(
    backbone={{_base_.mini_backbone_c5_pretrained}},
    neck=dict(in_channels=[512]),
    num_queries=50,
    data_preprocessor={{_base_.mini_data_preprocessor}},
    bbox_head=dict(type='BatchedDETRHead', num_classes=10),  # batched matching (same matches and losses as stock)
    train_cfg={{_base_.mini_fast_train_cfg}},
    test_cfg=dict(max_per_img=50))

# The full-scale DETR optimiser (AdamW 1e-4, weight decay 1e-4, backbone 0.1x, clip 0.1) in fp16 with merged groups.
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic', constructor='MergedGroupsOptimWrapperConstructor')

# --- mini block: these lines are the same in every detector config of configs/mini/ (tests/configs/test_configs.py)
train_dataloader = {{_base_.mini_train_dataloader}}
val_dataloader = {{_base_.mini_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.mini_val_evaluator}}
test_evaluator = val_evaluator
default_hooks = {{_base_.mini_default_hooks}}
log_processor = {{_base_.mini_log_processor}}
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[int(max_iters * 0.8)], gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
# --- end of the mini block
