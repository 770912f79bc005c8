# Ablation: BatchFormerV2 Deformable DETR on the mini benchmark with one change from the default setting:
# module dropout 0.1 instead of the official 0.5.
_base_ = '../bf-deformable-detr_r18_1xb16-mini.py'

model = dict(batchformer=dict(dropout=0.1))
