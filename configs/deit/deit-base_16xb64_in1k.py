# DeiT-Base on ImageNet-1k: mmpretrain's config as it is (16 GPUs x 64 images, 300 epochs, AdamW, Mixup/CutMix, EMA),
# run through this repository's tools. Data: mmpretrain's ImageNet layout under data/imagenet/ (docs/classification.md).
_base_ = 'mmpretrain::deit/deit-base_16xb64_in1k.py'
custom_imports = dict(imports=['mmdet_plugins.classification'], allow_failed_imports=False)
default_scope = 'mmpretrain'
model = dict(data_preprocessor={{_base_.data_preprocessor}})
