"""What the training loop needs on this stack: a deadline stop for time-boxed machines, a resume that skips the
trained batches without reading them, a checkpoint loader, TF32 matrix products on request."""
from .checkpoint_loader import load_local_checkpoint
from .deadline_hook import StopAtDeadlineHook
from .matmul_precision_hook import Float32MatmulPrecisionHook, apply_config_matmul_precision
from .resume_loop import IndexSkippingIterBasedTrainLoop

__all__ = ['load_local_checkpoint', 'StopAtDeadlineHook', 'Float32MatmulPrecisionHook', 'apply_config_matmul_precision',
           'IndexSkippingIterBasedTrainLoop']
