"""Where this repository's configs are: one entry per detector, for scripts and tests."""
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

# detector -> (config folder, file stem, full-scale schedule suffix)
DETECTORS = {
    'DETR': ('detr', 'detr', 'r50_8xb2-50e'),
    'DeformableDETR': ('deformable_detr', 'deformable-detr', 'r50_8xb3-50e'),
    'ConditionalDETR': ('conditional_detr', 'conditional-detr', 'r50_8xb2-50e'),
    'DABDETR': ('dab_detr', 'dab-detr', 'r50_8xb2-50e'),
    'DINO': ('dino', 'dino-4scale', 'r50_8xb2-12e'),
    'SMCADETR': ('smca_detr', 'smca-detr', 'r50_8xb2-50e'),  # single-scale SMCA-DETR (mmdet_plugins.detectors)
}


def config_path(detector: str, bf: bool, scale: str = 'full') -> str:
    """Repository-relative config of ``detector`` (baseline or BatchFormerV2) at scale ``full`` (COCO, the
    paper's setting) or ``mini``/``smoke`` (configs/mini/; smoke shrinks the mini config at run time)."""
    if detector not in DETECTORS:
        raise KeyError(f'unknown detector {detector!r}; known: {sorted(DETECTORS)}')
    folder, stem, schedule = DETECTORS[detector]
    prefix = 'bf-' if bf else ''
    if scale == 'full':
        return f'configs/{folder}/{prefix}{stem}_{schedule}_coco.py'
    if scale in ('mini', 'smoke'):
        return f'configs/mini/{prefix}{stem}_r18_1xb16-mini.py'
    raise ValueError(f'unknown scale {scale!r}: full, mini or smoke')
