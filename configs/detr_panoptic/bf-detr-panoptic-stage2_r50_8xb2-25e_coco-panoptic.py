# DETR R50 panoptic + BatchFormerV2, stage 2: two streams kept, as the official configs/panoptic_2.sh; the module is
# frozen with the detector and the mask head runs on both streams.
_base_ = './detr-panoptic-stage2_r50_8xb2-25e_coco-panoptic.py'

model = dict(type='BFDETRPanoptic', batchformer=dict(insert_idx=[0], mode='two_stream', shared=True))
load_from = 'work_dirs/bf-detr-panoptic-stage1_r50_8xb2-300e_coco-panoptic/epoch_300.pth'
