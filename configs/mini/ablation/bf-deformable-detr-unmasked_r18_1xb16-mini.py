# Ablation: BatchFormerV2 Deformable DETR on the mini benchmark with one change from the default setting:
# without the padding mask (the official code's attention: padded tokens attend and are attended). The mini
# canvases are all 320x320, so their batches hold no padding: on them this arm is a control (docs/ablation.md).
_base_ = '../bf-deformable-detr_r18_1xb16-mini.py'

model = dict(batchformer=dict(padding_aware=False))
