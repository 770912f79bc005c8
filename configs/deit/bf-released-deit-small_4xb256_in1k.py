# deit-small_4xb256_in1k.py with BatchFormerV2 after block 8 as the official DeiT code released it: the module's output replaces the
# batch (no plain stream); evaluation skips the module.
_base_ = './deit-small_4xb256_in1k.py'
model = dict(
    type='BFImageClassifier',
    backbone=dict(type='BFVisionTransformer', batchformer=dict(insert_idx=[8], mode='released')))
