# SMCA-DETR + BatchFormerV2 on the mini benchmark: the baseline plus the batchformer setting (two streams, one module
# after the first encoder layer, as the paper).
_base_ = './smca-detr_r18_1xb16-mini.py'

model = dict(type='BFSMCADETR', batchformer=dict(insert_idx=[0], mode='two_stream', shared=True))
