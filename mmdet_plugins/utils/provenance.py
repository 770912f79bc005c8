"""Provenance for stored results: commit, hardware, date; and writes that never leave a half-written file."""
from __future__ import annotations

import datetime
import os
import os.path as osp
import platform
import subprocess
import tempfile

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def git_commit(short: int = 12) -> str:
    """The repository's HEAD commit; ``$BF_COMMIT`` wins (the GPU machine receives no .git)."""
    if os.environ.get('BF_COMMIT'):
        return os.environ['BF_COMMIT']
    try:
        commit = subprocess.check_output(['git', '-C', REPO, 'rev-parse', f'--short={short}', 'HEAD'],
                                         text=True, stderr=subprocess.DEVNULL).strip()
        dirty = subprocess.run(['git', '-C', REPO, 'diff', '--quiet', 'HEAD', '--'],
                               stderr=subprocess.DEVNULL).returncode != 0
        return commit + ('-dirty' if dirty else '')
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'


def hardware(device=None) -> str:
    """The GPU's name when ``device`` is a CUDA device, else the CPU's description."""
    import torch
    if device is not None and torch.device(device).type == 'cuda':
        return torch.cuda.get_device_name(device)
    return f'cpu: {platform.processor() or platform.machine()} x{os.cpu_count()}'


def today() -> str:
    return datetime.date.today().isoformat()


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(path) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise
