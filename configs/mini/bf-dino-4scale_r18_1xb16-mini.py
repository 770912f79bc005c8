# DINO-4scale + BatchFormerV2 on the mini benchmark: the baseline plus the batchformer setting (two streams, one
# module after the first encoder layer, as the paper).
_base_ = './dino-4scale_r18_1xb16-mini.py'

model = dict(type='BFDINO', batchformer=dict(insert_idx=[0], mode='two_stream', shared=True))
