# Conditional DETR R50 baseline, 50 epochs (lr x0.1 at 40), 8 GPUs x 2 images: mmdet's config as packaged.
_base_ = 'mmdet::conditional_detr/conditional-detr_r50_8xb2-50e_coco.py'
custom_imports = dict(imports=['mmdet_plugins'], allow_failed_imports=False)
