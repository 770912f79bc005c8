"""Data augmentation on the GPU for batches that are already there (Fashion-MNIST-LT): random shift and flip.

``ShiftFlipClsDataPreprocessor`` is mmpretrain's ``ClsDataPreprocessor`` (normalisation, batch augments such as
Mixup/CutMix, one-hot targets) followed, in training only, by a per-image random translation of up to
``max_shift`` pixels (the uncovered border black, pixel value 0: the crop-with-padding of CIFAR-style training) and
a horizontal flip with probability ``flip_prob``; one batched operation each, no loop over images.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmpretrain.models.utils.data_preprocessor import ClsDataPreprocessor
from mmpretrain.registry import MODELS

__all__ = ['ShiftFlipClsDataPreprocessor', 'random_shift_flip']


def random_shift_flip(x: torch.Tensor, max_shift: int, flip_prob: float, fill=0.0, generator=None) -> torch.Tensor:
    """Translate each image by a random (dy, dx) in [-max_shift, max_shift] and flip it horizontally with
    probability ``flip_prob``.

    Args:
        x: ``(B, C, H, W)`` float images.
        fill: what the uncovered border holds: a number, or a ``(1, C, 1, 1)`` tensor (per channel).

    Returns:
        ``(B, C, H, W)``.
    """
    B, C, H, W = x.shape
    if max_shift > 0:
        s = max_shift
        padded = torch.as_tensor(fill, dtype=x.dtype, device=x.device).expand(B, C, H + 2 * s, W + 2 * s).clone()
        padded[:, :, s:s + H, s:s + W] = x
        shift = torch.randint(0, 2 * max_shift + 1, (2, B), device=x.device, generator=generator)
        rows = (torch.arange(H, device=x.device)[None, :] + shift[0][:, None])  # (B, H)
        cols = (torch.arange(W, device=x.device)[None, :] + shift[1][:, None])  # (B, W)
        batch = torch.arange(B, device=x.device)[:, None, None]
        # (B, H, W, C) gathered per image, back to (B, C, H, W)
        x = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip_prob > 0:
        flip = torch.rand(B, device=x.device, generator=generator) < flip_prob
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x.contiguous()


@MODELS.register_module()
class ShiftFlipClsDataPreprocessor(ClsDataPreprocessor):
    """``ClsDataPreprocessor`` plus a random shift and horizontal flip in training (module docstring). The border
    a shift uncovers holds pixel value 0 (black, Fashion-MNIST's background), normalised as the image is.

    Args:
        max_shift: largest translation in pixels (0: none).
        flip_prob: probability of a horizontal flip.
        **kwargs: ``ClsDataPreprocessor``'s arguments (mean, std, num_classes, batch_augments, ...).
    """

    def __init__(self, max_shift: int = 2, flip_prob: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        if max_shift < 0 or not 0 <= flip_prob <= 1:
            raise ValueError(f'ShiftFlipClsDataPreprocessor: max_shift must be >= 0 and flip_prob in [0, 1], got '
                             f'{max_shift} and {flip_prob}')
        self.max_shift, self.flip_prob = int(max_shift), float(flip_prob)
        # raw pixel value 0, normalised as the images are: (1, C, 1, 1); moves with the module, not in its state dict
        fill = (0.0 - self.mean) / self.std if self._enable_normalize else torch.zeros(1)
        self.register_buffer('shift_fill', fill.view(1, -1, 1, 1), persistent=False)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data, training)
        if training:
            data['inputs'] = random_shift_flip(data['inputs'], self.max_shift, self.flip_prob, fill=self.shift_fill)
        return data
