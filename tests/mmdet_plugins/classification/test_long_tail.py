"""Fashion-MNIST-LT (its profile, subsample, GPU-style batches), the long-tail metric on hand-made predictions,
and the batch augmentation."""
import numpy as np
import pytest
import torch

pytest.importorskip('mmpretrain')
from mmdet_plugins.classification.batch_augment import random_shift_flip  # noqa: E402
from mmdet_plugins.classification.fashion_mnist_lt import (FashionMNISTLT, MissingFashionMNIST,  # noqa: E402
                                                           collate_gathered_batch, long_tail_counts,
                                                           long_tail_indices)
from mmdet_plugins.classification.long_tail_metric import LongTailAccuracy, long_tail_accuracy, shot_groups  # noqa
from mmdet_plugins.datasets.fashion_canvas import FASHION_MNIST_DIR  # noqa: E402

needs_fashion_mnist = pytest.mark.skipif(
    not __import__('os').path.isfile(f'{FASHION_MNIST_DIR}/train-images-idx3-ubyte.gz'),
    reason='Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)')


def test_profile_is_the_long_tailed_cifar_one():
    assert long_tail_counts(100) == [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]
    assert sum(long_tail_counts(100)) == 14886
    assert long_tail_counts(1) == [6000] * 10
    with pytest.raises(ValueError):
        long_tail_counts(0.5)


def test_subsample_is_fixed_by_its_seed_and_follows_the_profile():
    labels = np.repeat(np.arange(3), 50)
    a, b = long_tail_indices(labels, [50, 20, 5], 0), long_tail_indices(labels, [50, 20, 5], 0)
    assert np.array_equal(a, b) and np.bincount(labels[a]).tolist() == [50, 20, 5]
    assert not np.array_equal(long_tail_indices(labels, [50, 20, 5], 1), a)
    with pytest.raises(ValueError, match='class 2 has 50 images'):
        long_tail_indices(labels, [1, 1, 51], 0)


def test_missing_fashion_mnist_says_how_to_install_it(tmp_path):
    with pytest.raises(MissingFashionMNIST, match='dataset-fashion-mnist'):
        FashionMNISTLT(data_root=str(tmp_path), split='train')


@needs_fashion_mnist
def test_dataset_gathers_whole_batches():
    ds = FashionMNISTLT(split='train', imbalance_ratio=100, device='cpu')
    assert len(ds) == 14886 and ds.class_counts() == long_tail_counts(100)
    test = FashionMNISTLT(split='test', imbalance_ratio=100, device='cpu')
    assert len(test) == 10000 and test.metainfo['train_counts'] == long_tail_counts(100)
    b = collate_gathered_batch(ds.__getitems__([0, 5, 7]))
    assert b['inputs'].shape == (3, 1, 28, 28) and b['inputs'].dtype == torch.uint8
    assert [int(s.gt_label) for s in b['data_samples']] == [ds.label_list[i] for i in (0, 5, 7)]
    assert torch.equal(b['inputs'][1], ds.images[5])


def test_shot_groups_and_accuracy_by_hand():
    counts = [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]
    assert shot_groups(counts, 1000, 200) == dict(many=[0, 1, 2, 3], medium=[4, 5, 6], few=[7, 8, 9])
    gt = np.repeat(np.arange(10), 10)
    assert long_tail_accuracy(gt, gt, counts, 1000, 200) == dict(top1=100.0, many=100.0, medium=100.0, few=100.0)
    pred = gt.copy()
    pred[gt == 9] = 0  # class 9 all wrong
    pred[(gt == 4)] = np.array([4] * 5 + [1] * 5)  # class 4 half right
    out = long_tail_accuracy(pred, gt, counts, 1000, 200)
    assert out['top1'] == pytest.approx(85.0) and out['many'] == 100.0
    assert out['medium'] == pytest.approx(100 * (0.5 + 1 + 1) / 3) and out['few'] == pytest.approx(200 / 3)


def test_metric_reads_the_profile_from_the_dataset_meta():
    from mmpretrain.structures import DataSample
    metric = LongTailAccuracy()
    metric.dataset_meta = dict(train_counts=[10, 10, 10, 10, 10, 10, 10, 10, 10, 10])
    samples = [DataSample().set_gt_label(i % 10).set_pred_label((i + (i == 3)) % 10).to_dict() for i in range(10)]
    metric.process(None, samples)
    out = metric.evaluate(10)
    assert out['accuracy/top1'] == pytest.approx(90.0) and np.isnan(out['accuracy/many'])
    with pytest.raises(ValueError, match='few_max'):
        LongTailAccuracy(many_min=10, few_max=20)


def test_shift_flip_augmentation():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    assert torch.equal(random_shift_flip(x, 0, 0.0), x)
    assert torch.equal(random_shift_flip(x, 0, 1.0), x.flip(-1))
    y = random_shift_flip(x, 1, 0.0, generator=None)
    assert y.shape == x.shape
    for img, out in zip(x, y):  # each image is its own shifted copy: its values are a subset of the original's
        assert set(out.unique().tolist()) <= set(img.unique().tolist()) | {0.0}


def test_the_preprocessor_fills_the_shifted_border_with_normalised_black():
    from mmdet_plugins.classification.batch_augment import ShiftFlipClsDataPreprocessor
    from mmpretrain.structures import DataSample
    pre = ShiftFlipClsDataPreprocessor(max_shift=3, flip_prob=0.0, num_classes=10, mean=[72.94], std=[90.02])
    data = dict(inputs=torch.full((64, 1, 8, 8), 255, dtype=torch.uint8),
                data_samples=[DataSample().set_gt_label(0) for _ in range(64)])
    torch.manual_seed(0)
    out = pre(data, training=True)['inputs']
    white, black = (255 - 72.94) / 90.02, (0 - 72.94) / 90.02
    values = set(round(v, 4) for v in out.unique().tolist())
    assert values == {round(white, 4), round(black, 4)}  # shifted images show a black border, nothing grey
    assert torch.allclose(pre(data, training=False)['inputs'], torch.full((64, 1, 8, 8), white))
