# Deformable DETR + BatchFormerV2 on the mini benchmark, measuring the gradient each class's images receive from
# the other images through the module (mmdet_plugins/analysis/grad_per_class_hook.py): every 10th iteration, log
# rewritten every 100 to <work_dir>/grad_per_class.json. Training itself is unchanged (tests).
_base_ = '../bf-deformable-detr_r18_1xb16-mini.py'

# (the base config's hook first: the same training as the base config)
custom_hooks = [dict(type='TraceableDeformAttnHook', backward_dtype='float32'),
                dict(type='GradPerClassHook', interval=10, write_interval=100)]
