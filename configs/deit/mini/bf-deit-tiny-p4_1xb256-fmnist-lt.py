# deit-tiny-p4_1xb256-fmnist-lt.py with BatchFormerV2 after block 8 as a second stream (the paper's setting), and
# the gradient each class receives through the module logged (grad_per_class.json; it changes no number of the
# training: tests/mmdet_plugins/analysis/test_grad_per_class_hook.py).
_base_ = './deit-tiny-p4_1xb256-fmnist-lt.py'
model = dict(
    type='BFImageClassifier',
    backbone=dict(type='BFVisionTransformer', batchformer=dict(insert_idx=[8], mode='two_stream')))
custom_hooks = [dict(type='Float32MatmulPrecisionHook', precision='high'),
                dict(type='ClsGradPerClassHook', interval=50, max_images=16, write_interval=1000)]
