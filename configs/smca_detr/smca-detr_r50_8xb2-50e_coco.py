# Single-scale SMCA-DETR R50 (Gao et al., ICCV 2021, arXiv 2101.07448), 50 epochs (lr x0.1 at 40), 8 GPUs x 2 images,
# the official training command's setting (github.com/gaopengcuhk/SMCA-DETR README: --num_queries 300 --epochs 50
# --lr_drop 40 --dynamic_scale type3, smooth 8): DETR's config with the SMCA decoder, 300 queries and a focal-loss
# head that predicts boxes relative to the decoder's centres (mmdet's ConditionalDETRHead; classification weight 2,
# matching costs 2/5/2, as the official code). The optimiser is DETR's, which is SMCA's: AdamW 1e-4, weight decay
# 1e-4, backbone 0.1x, gradient clip 0.1.
_base_ = '../detr/detr_r50_8xb2-50e_coco.py'

model = dict(
    type='SMCADETR',
    num_queries=300,
    decoder=dict(beta=8.0),  # SMCATransformerDecoder: DETR's decoder layers + the Gaussian prior's bandwidth
    bbox_head=dict(
        type='ConditionalDETRHead',
        loss_cls=dict(_delete_=True, type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0)),
    train_cfg=dict(
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='FocalLossCost', weight=2.0),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0)
            ])))
