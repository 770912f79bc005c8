# deit-tiny-p4_1xb256-fmnist-lt.py with BatchFormerV2 after block 8 as the official DeiT code released it: the
# module's output replaces the batch (no plain stream), and evaluation skips the module.
_base_ = './deit-tiny-p4_1xb256-fmnist-lt.py'
model = dict(
    type='BFImageClassifier',
    backbone=dict(type='BFVisionTransformer', batchformer=dict(insert_idx=[8], mode='released')))
