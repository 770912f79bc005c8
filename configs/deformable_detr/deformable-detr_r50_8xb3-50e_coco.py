# Deformable DETR R50 baseline at the official BatchFormerV2 setting: 8 GPUs x 3 images, lr 2e-4,
# 50 epochs (lr x0.1 at 40), single-stage without box refinement. mmdet's packaged config uses 16 GPUs x 2.
_base_ = 'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py'
custom_imports = dict(imports=['mmdet_plugins'], allow_failed_imports=False)

train_dataloader = dict(batch_size=3, num_workers=3)
