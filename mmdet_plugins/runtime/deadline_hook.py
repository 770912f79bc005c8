"""Stop training at a wall-clock deadline with a checkpoint, so the run resumes later (``--resume``).

For time-boxed machines (a GPU lent for 10-minute commands): the run stops cleanly between iterations,
saves ``iter_N.pth`` and points ``last_checkpoint`` at it, exactly where mmengine's resume looks.
"""
import os
import os.path as osp
import time
from typing import Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

DEADLINE_ENV = 'BF_DEADLINE'


@HOOKS.register_module()
class StopAtDeadlineHook(Hook):
    """Stop an iteration-based training run once ``time.time()`` passes the deadline.

    Args:
        deadline (float, optional): Unix time; default: the environment variable ``BF_DEADLINE``, and no
            deadline when neither is set.
    """
    priority = 'LOWEST'

    def __init__(self, deadline: Optional[float] = None) -> None:
        if deadline is None and os.environ.get(DEADLINE_ENV):
            try:
                deadline = float(os.environ[DEADLINE_ENV])
            except ValueError:
                raise ValueError(f'{DEADLINE_ENV} must be a Unix time in seconds, got '
                                 f'{os.environ[DEADLINE_ENV]!r}')
        self.deadline = deadline
        self.stopped_at = None

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self.deadline is None or time.time() < self.deadline:
            return
        if runner.iter + 1 >= runner.max_iters:
            return  # the last iteration: let the run finish (and validate) normally
        filename = f'iter_{runner.iter + 1}.pth'
        runner.save_checkpoint(runner.work_dir, filename=filename, by_epoch=False)
        with open(osp.join(runner.work_dir, 'last_checkpoint'), 'w') as f:
            f.write(osp.join(runner.work_dir, filename))
        runner.logger.info(f'StopAtDeadlineHook: deadline reached at iteration {runner.iter + 1}; saved '
                           f'{filename}, resume with --resume')
        self.stopped_at = runner.iter + 1
        runner.train_loop.stop_training = True
