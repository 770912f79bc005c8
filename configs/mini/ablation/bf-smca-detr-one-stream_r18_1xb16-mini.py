# Ablation, second detector: BatchFormerV2 SMCA-DETR on the mini benchmark applied in place in training, no plain
# stream beside it (the variant that moved Deformable DETR beyond its interval: docs/ablation.md).
_base_ = '../bf-smca-detr_r18_1xb16-mini.py'

model = dict(batchformer=dict(mode='one_stream'))
