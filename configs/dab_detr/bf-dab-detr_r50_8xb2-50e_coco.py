# DAB-DETR R50 + BatchFormerV2 (two streams, one module after the first encoder layer).
_base_ = './dab-detr_r50_8xb2-50e_coco.py'

model = dict(type='BFDABDETR', batchformer=dict(insert_idx=[0], mode='two_stream', shared=True))
