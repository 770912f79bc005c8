# DETR panoptic + BatchFormerV2, stage 2, on the mini benchmark: two streams kept (the official stage-2 script), the
# module frozen with the detector; the mask head runs on both streams.
_base_ = './detr-panoptic-stage2_r18_1xb16-mini.py'

model = dict(type='BFDETRPanoptic', batchformer=dict(insert_idx=[0], mode='two_stream', shared=True))
