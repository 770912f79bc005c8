# DINO-4scale R50 + BatchFormerV2 (two streams, one module after the first encoder layer).
_base_ = './dino-4scale_r50_8xb2-12e_coco.py'

model = dict(type='BFDINO', batchformer=dict(insert_idx=[0], mode='two_stream', shared=True))
