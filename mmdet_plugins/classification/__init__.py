"""BatchFormerV2 for image classification (DeiT) as mmpretrain 1.x plugins.

Not imported by ``mmdet_plugins`` itself (detection needs no mmpretrain): a classification config says
``custom_imports = dict(imports=['mmdet_plugins.classification'])`` and ``default_scope = 'mmpretrain'``.

- :mod:`.deit`: the method. ``BFVisionTransformer`` (a DeiT backbone with BatchFormerV2 after block k as a second
  stream, or as the official code released it) and ``BFImageClassifier`` (repeats the labels and soft targets
  for the second stream).
- :mod:`.fashion_mnist_lt`: ``FashionMNISTLT``, the long-tailed mini benchmark held on the GPU, and its collate
  function; :mod:`.batch_augment`: ``ShiftFlipClsDataPreprocessor`` (augmentation on the GPU).
- :mod:`.long_tail_metric`: ``LongTailAccuracy`` (top-1 overall and many/medium/few-shot).
- :mod:`.grad_per_class`: ``ClsGradPerClassHook``, the gradient each class receives through the module.
"""
from .batch_augment import ShiftFlipClsDataPreprocessor
from .deit import BFImageClassifier, BFVisionTransformer
from .fashion_mnist_lt import FashionMNISTLT, collate_gathered_batch
from .grad_per_class import ClsGradPerClassHook
from .long_tail_metric import LongTailAccuracy

__all__ = ['BFVisionTransformer', 'BFImageClassifier', 'FashionMNISTLT', 'collate_gathered_batch',
           'ShiftFlipClsDataPreprocessor', 'LongTailAccuracy', 'ClsGradPerClassHook']
