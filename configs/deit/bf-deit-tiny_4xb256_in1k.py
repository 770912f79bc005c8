# deit-tiny_4xb256_in1k.py with BatchFormerV2 after block 8 as a second stream (the paper's setting; the module sees
# the 256 images of one GPU).
_base_ = './deit-tiny_4xb256_in1k.py'
model = dict(
    type='BFImageClassifier',
    backbone=dict(type='BFVisionTransformer', batchformer=dict(insert_idx=[8], mode='two_stream')))
