"""Grad-CAM maps of a DETR-family detector's detections, baseline and BatchFormerV2 side by side.

    python analysis/gradcam.py CONFIG CHECKPOINT IMAGE... -o DIR [--compare CONFIG2 CHECKPOINT2] [--rank K]

For every image: the model's test pipeline and data preprocessor prepare it, a forward pass picks the detection
of rank ``K`` (0: the highest score; a detection is a (query, class) pair of the last decoder layer, scored as the
head scores it: sigmoid for focal-loss heads, softmax without the no-object class for DETR), and Grad-CAM
(the ``grad-cam`` package's ``GradCAM``) computes the map of that detection's score with respect to the last
backbone stage (``backbone.layer4``). With ``--compare`` the second model (e.g. the BatchFormerV2 run of the same
detector; its module is skipped at test time) gets its own top detection on the same image. Output:
``DIR/<image name>_gradcam.png``: the image, then each model's map over it with its detection's box and score.

Works on the CPU for a handful of images. Checkpoints are not stored in git: train the mini configs
(``bash reproduce/table_detection.sh``) and pass ``work_dirs/table_detection/mini/<run>/iter_<N>.pth``.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)


class LastLayerScores(torch.nn.Module):
    """The detector as Grad-CAM needs it: ``(1, 3, H, W)`` preprocessed image -> ``(1, Q, C)`` detection scores
    of the last decoder layer; ``self.boxes``: its ``(Q, 4)`` boxes (normalised cxcywh)."""

    def __init__(self, detector, data_sample):
        super().__init__()
        self.detector, self.data_sample = detector, data_sample
        self.boxes = None

    def forward(self, inputs):
        cls_scores, bbox_preds = self.detector._forward(inputs, [self.data_sample])[:2]
        self.boxes = bbox_preds[-1][0].detach()
        logits = cls_scores[-1]  # (1, Q, C)
        head = self.detector.bbox_head
        if getattr(head.loss_cls, 'use_sigmoid', False):
            return logits.sigmoid()
        return logits.softmax(-1)[..., :-1]  # DETR: without the no-object class


class DetectionScore:
    """Grad-CAM target: the score of detection (query, class) in one image's ``(Q, C)`` scores."""

    def __init__(self, query: int, label: int):
        self.query, self.label = query, label

    def __call__(self, scores):
        return scores[self.query, self.label]


def load(config: str, checkpoint: str, device: str):
    from mmdet.apis import init_detector
    import mmdet_plugins  # noqa: F401
    for path, what in ((config, 'config'), (checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise SystemExit(f'error: no such {what}: {path}')
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None  # the checkpoint has every weight
    model = init_detector(cfg, checkpoint, device=device)
    if not hasattr(model, 'forward_transformer'):
        raise SystemExit(f'error: {config}: {type(model).__name__} is not a DETR-family detector')
    return model.eval()


def prepare(model, image: str):
    """The model's test pipeline and data preprocessor on one image: ``(inputs (1, 3, H, W), data_sample)``."""
    from mmcv.transforms import Compose
    from mmdet.utils import get_test_pipeline_cfg
    pipeline_cfg = get_test_pipeline_cfg(model.cfg).copy()
    pipeline_cfg = [t for t in pipeline_cfg if t['type'] != 'LoadAnnotations']  # no ground truth needed
    data = Compose(pipeline_cfg)(dict(img_path=image, img_id=0))
    batch = model.data_preprocessor(dict(inputs=[data['inputs']], data_samples=[data['data_samples']]), False)
    return batch['inputs'], batch['data_samples'][0]


def cam_for(model, image: str, rank: int):
    from pytorch_grad_cam import GradCAM
    inputs, sample = prepare(model, image)
    wrapped = LastLayerScores(model, sample)
    with torch.no_grad():
        scores = wrapped(inputs)[0]
    flat = scores.flatten()
    if rank >= flat.numel():
        raise SystemExit(f'error: --rank {rank}: the model has only {flat.numel()} (query, class) detections')
    index = flat.topk(rank + 1).indices[-1].item()
    query, label = divmod(index, scores.size(1))
    score = flat[index].item()
    box = wrapped.boxes[query].tolist()  # normalised cxcywh on the unpadded image
    cam = GradCAM(model=wrapped, target_layers=[model.backbone.layer4])
    try:  # (not as a context manager: its __exit__ prints and swallows exceptions)
        grayscale = cam(input_tensor=inputs, targets=[DetectionScore(query, label)])[0]
    finally:
        cam.activations_and_grads.release()
    h, w = sample.img_shape
    classes = model.dataset_meta.get('classes') if getattr(model, 'dataset_meta', None) else None
    name = classes[label] if classes and label < len(classes) else str(label)
    return grayscale[:h, :w], box, score, name


def figure(image: str, results, names, out: str):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from PIL import Image
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from analysis.figure_io import save_figure
    fig, axes = plt.subplots(1, 1 + len(results), figsize=(4 * (1 + len(results)), 4.3))
    for ax, (cam, box, score, label), name in zip(axes[1:], results, names):
        h, w = cam.shape
        rgb = np.asarray(Image.open(image).convert('RGB').resize((w, h)), dtype=np.float32) / 255
        ax.imshow(show_cam_on_image(rgb, cam, use_rgb=True))
        cx, cy, bw, bh = box
        ax.add_patch(plt.Rectangle(((cx - bw / 2) * w, (cy - bh / 2) * h), bw * w, bh * h, fill=False,
                                   edgecolor='white', linewidth=1.5))
        ax.set_title(f'{name}\n{label}: {score:.2f}', fontsize=9)
        ax.axis('off')
    axes[0].imshow(Image.open(image).convert('RGB'))
    axes[0].set_title(osp.basename(image), fontsize=9)
    axes[0].axis('off')
    fig.suptitle('Grad-CAM of the top detection (last backbone stage)', fontsize=10)
    save_figure(fig, out)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('images', nargs='+')
    p.add_argument('-o', '--out-dir', required=True)
    p.add_argument('--compare', nargs=2, metavar=('CONFIG', 'CHECKPOINT'), help='a second model, side by side')
    p.add_argument('--names', nargs='+', help='a title per model (default: the config names)')
    p.add_argument('--rank', type=int, default=0, help='which detection: 0 = the highest score')
    p.add_argument('--device', default='cpu')
    args = p.parse_args(argv)
    missing = [i for i in args.images if not osp.isfile(i)]
    if missing:
        p.error(f'no such image: {missing}')
    if args.rank < 0:
        p.error('--rank must be >= 0')
    specs = [(args.config, args.checkpoint)] + ([tuple(args.compare)] if args.compare else [])
    names = args.names or [osp.splitext(osp.basename(c))[0] for c, _ in specs]
    if len(names) != len(specs):
        p.error(f'{len(names)} --names for {len(specs)} models')
    models = [load(c, ck, args.device) for c, ck in specs]
    os.makedirs(args.out_dir, exist_ok=True)
    for image in args.images:
        results = [cam_for(m, image, args.rank) for m in models]
        out = osp.join(args.out_dir, osp.splitext(osp.basename(image))[0] + '_gradcam.png')
        figure(image, results, names, out)
        print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
