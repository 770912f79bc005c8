# Ablation: BatchFormerV2 Deformable DETR on the mini benchmark with one change from the default setting:
# applied in place in training, no plain stream beside it.
_base_ = '../bf-deformable-detr_r18_1xb16-mini.py'

model = dict(batchformer=dict(mode='one_stream'))
