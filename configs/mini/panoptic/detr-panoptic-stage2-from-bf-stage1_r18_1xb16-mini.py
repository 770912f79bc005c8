# DETR panoptic, stage 2 with a plain mask head on the BatchFormerV2 box model (the official configs/panoptic_1.sh):
# the baseline's stage 2 (one stream, no module) started from the BatchFormerV2 run's stage-1 checkpoint, whose
# module weights it does not load (mmengine loads non-strictly). The table runner starts it from the stage 1 of the
# BatchFormerV2 run of the same seed (reproduce/tables/panoptic.py); by hand: --cfg-options load_from=PATH. The
# official script trains this variant with 1 image per GPU; here the batch is the other arms', so that the three
# stage-2 variants differ only in the box model and the streams.
_base_ = './detr-panoptic-stage2_r18_1xb16-mini.py'
