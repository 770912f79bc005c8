"""Writing figures: PNG, atomically (a figure is either the old one or the complete new one)."""
from __future__ import annotations

import os
import os.path as osp


def save_figure(fig, out: str, dpi: int = 130) -> None:
    if not out.lower().endswith('.png'):
        raise SystemExit(f'error: {out}: figures are written as PNG; give a path ending in .png')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    tmp = out[:-4] + '.tmp.png'
    fig.savefig(tmp, dpi=dpi, bbox_inches='tight')
    os.replace(tmp, out)


def finish_figure(fig, out: str) -> None:
    """Lay the figure out, write it (``save_figure``) and close it."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    save_figure(fig, out)
    plt.close(fig)
