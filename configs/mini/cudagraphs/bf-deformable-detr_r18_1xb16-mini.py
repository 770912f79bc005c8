# BatchFormerV2 Deformable DETR on the mini benchmark, its training forward compiled and replayed as CUDA graphs
# (see ./deformable-detr_r18_1xb16-mini.py): the BatchFormerV2 config plus the same hooks.
_base_ = '../bf-deformable-detr_r18_1xb16-mini.py'

custom_hooks = [
    dict(type='TraceableDeformAttnHook', backward_dtype='float32'),
    dict(type='CompileLayersHook', mode='reduce-overhead',
         targets=['backbone', 'neck', 'encoder.layers', 'decoder.layers', 'bbox_head']),
]
