"""Let mmengine 0.10.7 load (and so resume from) its own checkpoints under torch >= 2.6.

torch >= 2.6 defaults ``torch.load`` to ``weights_only=True``; mmengine 0.10.7 does not pass ``weights_only``,
and its checkpoints hold more than tensors (the message hub's history buffers, numpy scalars, config meta),
so ``Runner.resume`` fails on them. Importing this module replaces mmengine's loader for local paths (the
scheme with prefix ``''``) with one that passes ``weights_only=False``.

Only load checkpoints you trust: unpickling a file can run code, exactly as with torch < 2.6.
"""
import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader


def load_local_checkpoint(filename: str, map_location=None):
    """Load a checkpoint from a local path with ``weights_only=False`` (mmengine's behaviour before torch 2.6).

    Raises:
        FileNotFoundError: ``filename`` is not a file.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename!r} does not exist (check the path, or the work '
                                'directory\'s last_checkpoint file when resuming).')
    return torch.load(filename, map_location=map_location, weights_only=False)


CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
