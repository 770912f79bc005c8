# Ablation: BatchFormerV2 Deformable DETR on the mini benchmark with one change from the default setting:
# attention within groups of 2 images of the batch of 16, not across all 16.
_base_ = '../bf-deformable-detr_r18_1xb16-mini.py'

model = dict(batchformer=dict(group_size=2))
