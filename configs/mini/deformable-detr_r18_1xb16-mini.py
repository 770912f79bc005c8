# Deformable DETR on the mini benchmark (Fashion-MNIST canvases, 320x320, 10 classes, long-tailed training split):
# ResNet-18 (GroupNorm) from scratch, batch 16 on one GPU, AdamW 2e-4, 1500 iterations (lr x0.1 at 80%), fp16 AMP,
# 50 queries, the fast training components; transformer, head and matcher as the full-scale config.
# How this schedule was chosen: docs/mini_benchmark.md.
_base_ = ['../deformable_detr/deformable-detr_r50_8xb3-50e_coco.py', './_base_/fashion_canvas.py']

max_iters = 1500
model = dict(
    backbone={{_base_.mini_backbone_c3c5}},
    neck=dict(in_channels=[128, 256, 512]),
    num_queries=50,
    data_preprocessor={{_base_.mini_data_preprocessor}},
    bbox_head=dict(type='BatchedDeformableDETRHead', num_classes=10),  # batched matching (same matches and losses as stock)
    train_cfg={{_base_.mini_fast_train_cfg}},
    test_cfg=dict(max_per_img=50))

optim_wrapper = {{_base_.mini_optim_wrapper}}
# deformable attention without a host wait per layer, its backward in fp32 (the fp16 kernel's gradients are
# inexact, and 3x slower at the encoder's shapes: mmdet_plugins/fast_training/deform_attn.py)
custom_hooks = [dict(type='TraceableDeformAttnHook', backward_dtype='float32')]

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
