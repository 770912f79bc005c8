# DETR R50 panoptic + BatchFormerV2, stage 1: two streams, one module after encoder layer 0 (the BatchFormer README's
# setting; the official configs/panoptic.sh inserts one shared module after all six layers).
_base_ = './detr-panoptic-stage1_r50_8xb2-300e_coco-panoptic.py'

model = dict(type='BFDETR', batchformer=dict(insert_idx=[0], mode='two_stream', shared=True))
