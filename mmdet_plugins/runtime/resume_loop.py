"""An iteration-based training loop that resumes without loading the batches it skips.

mmengine's ``IterBasedTrainLoop`` resumed at iteration ``n`` draws ``n`` batches from the dataloader and throws
them away, so that training continues on the batch an uninterrupted run would have seen next. Every one of those
batches is read and augmented by the workers: resumed at iteration 2661, a mini panoptic run on the GPU host waited
about 95 s for its data before its first iteration, a sixth of a 10-minute command.

``IndexSkippingIterBasedTrainLoop`` skips the same batches by drawing only their indices from the batch sampler,
which reads no image; the images after the skip, and their order, are those of mmengine's loop (tested against
it). The batches the dataloader had already handed to its workers when the loop was built are drawn and dropped
as mmengine does. What differs: the workers' random augmentations (a flip) after the resume are new draws, since
the workers did not run the skipped batches' pipelines; the model's own random draws (dropout) already differ
after any mmengine resume, which restores no random state.

It skips by index when the batch sampler draws from an infinite sampler (mmengine's ``InfiniteSampler``, which the
iteration-based configs use); with a finite sampler the skip may cross an epoch end, and the loop skips as
mmengine's does. ``tools/train.py --resume`` puts it in place of ``IterBasedTrainLoop``.
"""
import logging

from mmengine.dataset import InfiniteSampler
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import IterBasedTrainLoop


class IndexSkippingIterator:
    """Wraps the loop's dataloader iterator (mmengine's ``_InfiniteDataloaderIterator``) so that its first ``skip``
    calls to ``next`` return ``None`` having read no new batch, and the later ones return the batches of the images
    that follow the skipped ones.

    On construction it draws ``skip - k`` batches of indices from the dataloader's index iterator, ``k`` being the
    batches already handed to workers (prefetched); the first ``k`` of the ``skip`` calls take and drop those.

    Args:
        inner: the loop's ``dataloader_iterator``.
        skip (int): batches to skip.
    """

    def __init__(self, inner, skip: int) -> None:
        loader_iter = inner._iterator
        prefetched = getattr(loader_iter, '_send_idx', 0) - getattr(loader_iter, '_rcvd_idx', 0)
        self.inner = inner
        self.skip_left = skip
        self.drop_left = min(prefetched, skip)
        for _ in range(skip - self.drop_left):
            next(loader_iter._sampler_iter)

    def __iter__(self):
        return self

    def __next__(self):
        if self.skip_left > 0:
            self.skip_left -= 1
            if self.drop_left > 0:
                self.drop_left -= 1
                next(self.inner)
            return None
        return next(self.inner)


def skips_by_index(dataloader) -> bool:
    """Whether the loader's batches come from an infinite sampler through a plain (map-style) index iterator,
    so that skipping indices equals skipping batches."""
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    sampler = getattr(batch_sampler, 'sampler', None)
    return isinstance(sampler, InfiniteSampler)


@LOOPS.register_module()
class IndexSkippingIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` whose resume skips the trained batches by their indices (module docstring); the same
    arguments; the same images after a resume, with their augmentations drawn afresh."""

    def run(self):
        if self._iter > 0 and skips_by_index(self.dataloader) \
                and hasattr(self.dataloader_iterator, '_iterator') \
                and hasattr(self.dataloader_iterator._iterator, '_sampler_iter'):
            print_log(f'IndexSkippingIterBasedTrainLoop: skipping the {self._iter} trained batches by their '
                      'indices (no image is read for them)', logger='current', level=logging.INFO)
            self.dataloader_iterator = IndexSkippingIterator(self.dataloader_iterator, self._iter)
        return super().run()
