# Deformable DETR on the mini benchmark with the training forward compiled and replayed as CUDA graphs: the
# backbone, neck, encoder and decoder layers and the head's forward compiled by torch.compile in its
# 'reduce-overhead' mode (CompileLayersHook, mmdet_plugins/fast_training/compiled_layers.py; validation runs them
# eagerly), the deformable attention traceable with its backward in fp32 (TraceableDeformAttnHook). The config it
# inherits plus one hook: the benchmark variant fast-compile-all-cudagraphs of reproduce/bench/benchmark_speed.py as a
# config (a test keeps them the same). Not bitwise equal to the eager run: judged by
# reproduce/bench/check_fast_equivalence.py --compiled and by mini runs' AP beside the eager runs'
# (reproduce/bench/calibrate_mini.sh cudagraphs).
_base_ = '../deformable-detr_r18_1xb16-mini.py'

custom_hooks = [
    dict(type='TraceableDeformAttnHook', backward_dtype='float32'),
    dict(type='CompileLayersHook', mode='reduce-overhead',
         targets=['backbone', 'neck', 'encoder.layers', 'decoder.layers', 'bbox_head']),
]
