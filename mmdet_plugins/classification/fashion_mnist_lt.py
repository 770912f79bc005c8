"""Fashion-MNIST-LT: a long-tailed classification benchmark held as tensors on the GPU, for the mini table.

Training split: Fashion-MNIST's 60,000 training images subsampled once, with a fixed seed, to the exponential
profile of long-tailed CIFAR (Cui et al. 2019; BatchFormer's ``ImbalanceCIFAR``)::

    n_i = floor(max_per_class * imbalance_ratio ** (-i / (C - 1)))     class i = 0 .. C-1 (C = 10)

which for ``imbalance_ratio`` 100 gives 6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60 (14,886 images).
Test split: the balanced 10,000 test images, never subsampled; its ``metainfo['train_counts']`` still holds the
training profile, so the metric can report many-, medium- and few-shot accuracy.

The whole split is one ``(N, 1, 28, 28)`` uint8 tensor on ``device`` (the GPU when there is one: 12 MB for the
training split). A batch is gathered in one indexing operation through ``__getitems__`` (which PyTorch's
DataLoader calls with a batch of indices); there is no per-sample pipeline, so use ``num_workers=0`` and
``collate_fn=dict(type='collate_gathered_batch')``. A batch is ``dict(inputs=(B, 1, 28, 28) uint8, data_samples=[B
mmpretrain DataSample with gt_label])``, which ``ClsDataPreprocessor`` normalises.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import List, Sequence

import numpy as np
import torch
from mmengine.registry import FUNCTIONS
from mmpretrain.registry import DATASETS
from mmpretrain.structures import DataSample

__all__ = ['FashionMNISTLT', 'long_tail_counts', 'long_tail_indices', 'collate_gathered_batch', 'CLASSES',
           'fashion_mnist_files', 'MissingFashionMNIST']

CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
SPLIT_PREFIX = {'train': 'train', 'test': 't10k'}
INSTALL_HINT = ('install the Debian package dataset-fashion-mnist (`apt-get install dataset-fashion-mnist`; '
                'setup.sh does it as root), or point data_root (or $FASHION_MNIST_DIR) at a folder holding '
                'the four *-ubyte.gz files of Fashion-MNIST')


class MissingFashionMNIST(FileNotFoundError):
    """Fashion-MNIST's files are not where the dataset looks; the message says how to install them."""


def default_root() -> str:
    return os.environ.get('FASHION_MNIST_DIR', '/usr/share/datasets/fashion-mnist')


def fashion_mnist_files(root: str, split: str) -> List[str]:
    """The two gzipped idx files (images, labels) of ``split`` ('train' or 'test') under ``root``."""
    prefix = SPLIT_PREFIX[split]
    return [osp.join(root, f'{prefix}-images-idx3-ubyte.gz'), osp.join(root, f'{prefix}-labels-idx1-ubyte.gz')]


def long_tail_counts(imbalance_ratio: float, max_per_class: int = 6000, num_classes: int = 10) -> List[int]:
    """Images per class of the exponential long-tail profile (module docstring); ratio 1 is balanced."""
    if imbalance_ratio < 1:
        raise ValueError(f'imbalance_ratio must be >= 1, got {imbalance_ratio}')
    return [int(max_per_class * imbalance_ratio ** (-i / (num_classes - 1))) for i in range(num_classes)]


def long_tail_indices(labels: np.ndarray, counts: Sequence[int], seed: int) -> np.ndarray:
    """Indices of a subsample of ``labels`` with ``counts[c]`` items of class c, drawn without replacement with
    ``seed`` (the same subsample on every machine), sorted."""
    rng = np.random.default_rng(seed)
    picked = []
    for c, n in enumerate(counts):
        pool = np.flatnonzero(labels == c)
        if n > len(pool):
            raise ValueError(f'class {c} has {len(pool)} images, the profile asks for {n}')
        picked.append(rng.choice(pool, size=n, replace=False))
    return np.sort(np.concatenate(picked))


@DATASETS.register_module()
class FashionMNISTLT(torch.utils.data.Dataset):
    """Fashion-MNIST, long-tailed for training, balanced for testing, held on one device (module docstring).

    Args:
        data_root: the folder holding Fashion-MNIST's four ``*-ubyte.gz`` files (default: ``$FASHION_MNIST_DIR``
            or the Debian package's ``/usr/share/datasets/fashion-mnist``).
        split: ``'train'`` (subsampled to the profile) or ``'test'`` (all 10,000 images).
        imbalance_ratio: the profile's largest over smallest class size (1: the full balanced split).
        max_per_class: the profile's largest class.
        subsample_seed: the seed of the training subsample (fixed: the same images for every run and seed).
        max_items: keep only the first ``max_items`` images of the split after subsampling (the smoke scale).
        device: ``'auto'`` (the GPU when there is one), or a torch device.
    """

    def __init__(self, data_root: str = '', split: str = 'train', imbalance_ratio: float = 100.0,
                 max_per_class: int = 6000, subsample_seed: int = 0, max_items: int = None, device='auto',
                 **unused):
        if split not in SPLIT_PREFIX:
            raise ValueError(f'FashionMNISTLT: split must be "train" or "test", got {split!r}')
        self.data_root = data_root or default_root()
        self.split = split
        self.train_counts = long_tail_counts(imbalance_ratio, max_per_class, len(CLASSES))
        images, labels = self._read(self.data_root, split)
        if split == 'train' and imbalance_ratio > 1:
            keep = long_tail_indices(labels, self.train_counts, subsample_seed)
            images, labels = images[keep], labels[keep]
        elif split == 'train':
            self.train_counts = np.bincount(labels, minlength=len(CLASSES)).tolist()
        if max_items is not None:
            images, labels = images[:max_items], labels[:max_items]
        if device == 'auto':
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        self.device = torch.device(device)
        self.images = torch.from_numpy(np.array(images, copy=True)).unsqueeze(1).to(self.device)  # (N,1,28,28)
        self.labels = torch.from_numpy(labels.astype(np.int64)).to(self.device)  # (N,)
        self.label_list = labels.astype(np.int64).tolist()

    @staticmethod
    def _read(root: str, split: str):
        """``(images (n, 28, 28) uint8, labels (n,))`` through the canvas generator's reader (its checks), with
        this dataset's hint when the files are missing."""
        from mmdet_plugins.datasets import fashion_canvas
        try:
            return fashion_canvas.load_fashion_mnist('train' if split == 'train' else 'val', root)
        except fashion_canvas.MissingFashionMNIST:
            missing = next(p for p in fashion_mnist_files(root, split) if not osp.isfile(p))
            raise MissingFashionMNIST(f'Fashion-MNIST not found: {missing} is missing; {INSTALL_HINT}') from None

    @property
    def metainfo(self) -> dict:
        return dict(classes=CLASSES, train_counts=list(self.train_counts))

    def __len__(self) -> int:
        return self.images.size(0)

    def class_counts(self) -> List[int]:
        """Images per class in this split (as held)."""
        return np.bincount(np.asarray(self.label_list, dtype=np.int64), minlength=len(CLASSES)).tolist()

    def get_data_info(self, idx: int) -> dict:
        return dict(gt_label=self.label_list[idx], sample_idx=idx)

    def __getitems__(self, indices: Sequence[int]) -> dict:
        """One batch: ``dict(inputs=(B, 1, 28, 28) uint8 on the dataset's device, data_samples=[B DataSample])``."""
        index = torch.as_tensor(indices, dtype=torch.long).to(self.device, non_blocking=True)
        samples = [DataSample().set_gt_label(self.labels[i:i + 1]) for i in indices]
        return dict(inputs=self.images.index_select(0, index), data_samples=samples)

    def __getitem__(self, idx: int) -> dict:
        batch = self.__getitems__([idx])
        return dict(inputs=batch['inputs'][0], data_samples=batch['data_samples'][0])


@FUNCTIONS.register_module()
def collate_gathered_batch(batch):
    """The DataLoader's collate function for datasets that gather whole batches (``__getitems__``): the batch
    is already collated; passed on as it is."""
    if isinstance(batch, dict):
        return batch
    raise TypeError('collate_gathered_batch expects the dict a dataset\'s __getitems__ returns; use it with '
                    'FashionMNISTLT (num_workers=0)')
