# Ablation: BatchFormerV2 Deformable DETR on the mini benchmark with one change from the default setting:
# after encoder layer 5, the last, instead of 0.
_base_ = '../bf-deformable-detr_r18_1xb16-mini.py'

model = dict(batchformer=dict(insert_idx=[5]))
