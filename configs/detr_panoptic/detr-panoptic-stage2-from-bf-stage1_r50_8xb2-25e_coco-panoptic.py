# DETR R50 panoptic, stage 2 with a plain mask head on the BatchFormerV2 box model (the official configs/panoptic_1.sh):
# the baseline's stage 2 (one stream, no module, 25 epochs, x0.1 at 15) from the BatchFormerV2 stage-1 checkpoint,
# whose module weights it does not load (mmengine loads non-strictly). The official script trains this variant with
# 1 image per GPU; here 2, as the other stage-2 configs.
_base_ = './detr-panoptic-stage2_r50_8xb2-25e_coco-panoptic.py'

load_from = 'work_dirs/bf-detr-panoptic-stage1_r50_8xb2-300e_coco-panoptic/epoch_300.pth'
