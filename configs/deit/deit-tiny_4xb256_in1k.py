# DeiT-Tiny on ImageNet-1k: mmpretrain's config as it is (4 GPUs x 256 images, 300 epochs, AdamW, Mixup/CutMix),
# run through this repository's tools. Data: mmpretrain's ImageNet layout under data/imagenet/ (docs/classification.md).
_base_ = 'mmpretrain::deit/deit-tiny_4xb256_in1k.py'
custom_imports = dict(imports=['mmdet_plugins.classification'], allow_failed_imports=False)
default_scope = 'mmpretrain'
model = dict(data_preprocessor={{_base_.data_preprocessor}})
