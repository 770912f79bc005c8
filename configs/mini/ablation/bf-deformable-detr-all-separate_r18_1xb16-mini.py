# Ablation: BatchFormerV2 Deformable DETR on the mini benchmark with one change from the default setting:
# after every encoder layer, one module per layer.
_base_ = '../bf-deformable-detr_r18_1xb16-mini.py'

model = dict(batchformer=dict(insert_idx=[0, 1, 2, 3, 4, 5], shared=False))
