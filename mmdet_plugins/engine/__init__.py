from .checkpoint_compat import load_local_checkpoint
from .deadline_hook import StopAtDeadlineHook

__all__ = ['load_local_checkpoint', 'StopAtDeadlineHook']
