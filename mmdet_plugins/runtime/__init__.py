"""What the training loop needs on this stack: a deadline stop for time-boxed machines, a checkpoint loader."""
from .checkpoint_loader import load_local_checkpoint
from .deadline_hook import StopAtDeadlineHook

__all__ = ['load_local_checkpoint', 'StopAtDeadlineHook']
