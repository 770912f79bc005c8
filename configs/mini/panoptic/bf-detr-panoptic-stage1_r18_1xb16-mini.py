# DETR panoptic + BatchFormerV2, stage 1, on the mini benchmark: two streams, one module after encoder layer 0.
_base_ = './detr-panoptic-stage1_r18_1xb16-mini.py'

model = dict(type='BFDETR', batchformer=dict(insert_idx=[0], mode='two_stream', shared=True))
