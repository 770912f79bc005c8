# Single-scale SMCA-DETR R50 + BatchFormerV2 (two streams, one module after the first encoder layer).
_base_ = './smca-detr_r50_8xb2-50e_coco.py'

model = dict(type='BFSMCADETR', batchformer=dict(insert_idx=[0], mode='two_stream', shared=True))
