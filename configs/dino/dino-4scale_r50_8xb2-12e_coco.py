# DINO-4scale R50 baseline, 12 epochs, 8 GPUs x 2 images: mmdet's config as packaged
# (the BatchFormerV2 paper has no DINO row; this pair extends the study).
_base_ = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'
custom_imports = dict(imports=['mmdet_plugins'], allow_failed_imports=False)
