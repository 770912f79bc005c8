# Deformable DETR on the mini benchmark, its encoder and decoder layers compiled by torch.compile for training
# (CompileLayersHook, mmdet_plugins/fast_training/compiled_layers.py; validation runs them eagerly): the config it
# inherits plus one hook. Not bitwise equal to the eager run: judged by reproduce/bench/check_fast_equivalence.py
# --compiled and by a mini run's AP beside the eager runs' (reproduce/bench/calibrate_mini.sh compile).
_base_ = '../deformable-detr_r18_1xb16-mini.py'

custom_hooks = [dict(type='TraceableDeformAttnHook', backward_dtype='float32'), dict(type='CompileLayersHook')]
