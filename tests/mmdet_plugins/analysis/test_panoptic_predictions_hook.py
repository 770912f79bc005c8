"""PanopticPredictionsHook: the run-length code, the ground truth in mmdet's panoptic encoding, and the file it writes
(the first validation images, the same in every pass) on hand-made data samples."""
import base64
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData, PixelData

from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmdet_plugins.analysis.panoptic_predictions_hook import (FORMAT, PanopticPredictionsHook, decode_map, encode_map,
                                                               ground_truth_map)

OFFSET = 1000
META = dict(classes=('a', 'b', 's1', 's2'), thing_classes=('a', 'b'), stuff_classes=('s1', 's2'))


def test_run_length_code_round_trips():
    rng = np.random.default_rng(0)
    seg = rng.integers(0, 3, size=(7, 5)) * OFFSET + 1
    rle = encode_map(seg)
    assert rle['size'] == [7, 5] and sum(rle['counts'][1::2]) == 35
    assert np.array_equal(decode_map(rle), seg)
    assert encode_map(np.full((2, 3), 4)) == dict(size=[2, 3], counts=[4, 6])  # one run
    with pytest.raises(ValueError, match='size 2x3 has runs of 5 pixels'):
        decode_map(dict(size=[2, 3], counts=[4, 5]))
    with pytest.raises(ValueError, match=r'\(H, W\) map'):
        encode_map(np.zeros((1, 2, 3)))


def sample(tmp_path, index, pred, sem=None, masks=None, labels=None):
    path = tmp_path / f'img_{index}.png'
    path.write_bytes(b'PNG' + bytes([index]))  # (the hook keeps the file's bytes as they are)
    s = DetDataSample(metainfo=dict(img_id=100 + index, img_path=str(path)))
    s.pred_panoptic_seg = PixelData(sem_seg=torch.as_tensor(pred)[None])
    if sem is not None:
        s.gt_sem_seg = PixelData(sem_seg=torch.as_tensor(sem)[None])
        inst = InstanceData()
        inst.labels = torch.as_tensor(labels, dtype=torch.long)
        inst.masks = BitmapMasks(np.asarray(masks, dtype=np.uint8), *sem.shape)
        s.gt_instances = inst
    return s


def test_ground_truth_in_the_panoptic_encoding(tmp_path):
    # a 2x4 image: stuff s2 (3) on the left, two things of class b (1) on the right, one pixel unlabelled (255)
    sem = np.array([[3, 3, 1, 1], [3, 255, 1, 1]])
    masks = [[[0, 0, 1, 1], [0, 0, 0, 0]], [[0, 0, 0, 0], [0, 0, 1, 1]]]
    s = sample(tmp_path, 0, np.zeros((2, 4), dtype=np.int64), sem, masks, [1, 1])
    gt = ground_truth_map(s, num_things=2, num_classes=4, instance_offset=OFFSET)
    assert gt.tolist() == [[3, 3, 1 + OFFSET, 1 + OFFSET], [3, 4, 1 + 2 * OFFSET, 1 + 2 * OFFSET]]
    assert ground_truth_map(DetDataSample(), 2, 4, OFFSET) is None


def runner(tmp_path, loop_name='val_loop'):
    loop = SimpleNamespace(dataloader=SimpleNamespace(dataset=SimpleNamespace(metainfo=META)))
    return SimpleNamespace(work_dir=str(tmp_path), iter=40, cfg=dict(load_from='work/iter_40.pth'),
                           **{loop_name: loop})


class TestOnlyRunner:
    """A runner of a test-only pass: reading ``iter`` would build the training loop (mmengine), so it fails here."""
    def __init__(self, tmp_path):
        self.work_dir = str(tmp_path)
        self.cfg = dict(load_from='/w/run/iter_1000.pth')
        self.test_loop = SimpleNamespace(dataloader=SimpleNamespace(dataset=SimpleNamespace(metainfo=META)))

    @property
    def iter(self):
        raise AssertionError('a test pass must not read runner.iter')


def test_hook_writes_the_first_images_of_each_pass(tmp_path):
    hook = PanopticPredictionsHook(num_images=3)
    r = runner(tmp_path)
    preds = [np.full((2, 2), i) for i in range(5)]
    batches = [[sample(tmp_path, i, preds[i]) for i in (0, 1)], [sample(tmp_path, i, preds[i]) for i in (2, 3, 4)]]
    for _ in range(2):  # a second validation pass starts over: the same three images, not six
        hook.before_val_epoch(r)
        for b, outputs in enumerate(batches):
            hook.after_val_iter(r, b, None, outputs)
        hook.after_val_epoch(r)
    data = json.loads((tmp_path / 'panoptic_predictions.json').read_text())
    assert data['format'] == FORMAT and data['iteration'] == 40 and data['instance_offset'] == OFFSET
    assert data['checkpoint'] is None
    assert data['classes'] == list(META['classes']) and data['stuff_classes'] == ['s1', 's2']
    assert [im['img_id'] for im in data['images']] == [100, 101, 102]
    im = data['images'][2]
    assert im['file_name'] == 'img_2.png' and (im['height'], im['width']) == (2, 2) and im['gt'] is None
    assert base64.b64decode(im['image']) == b'PNG\x02'
    assert np.array_equal(decode_map(im['pred']), preds[2])


def test_hook_in_a_test_pass_and_bad_input(tmp_path):
    hook = PanopticPredictionsHook(num_images=1)
    r = TestOnlyRunner(tmp_path)
    hook.before_test_epoch(r)
    hook.after_test_iter(r, 0, None, [sample(tmp_path, 7, np.ones((3, 3), dtype=np.int64))])
    hook.after_test_epoch(r)
    data = json.loads((tmp_path / 'panoptic_predictions.json').read_text())
    assert data['images'][0]['img_id'] == 107
    assert data['iteration'] is None and data['checkpoint'] == 'iter_1000.pth'
    with pytest.raises(ValueError, match='num_images must be >= 1'):
        PanopticPredictionsHook(num_images=0)
    with pytest.raises(RuntimeError, match='gave no pred_panoptic_seg'):
        hook.before_val_epoch(r)
        hook.after_val_iter(runner(tmp_path), 0, None, [DetDataSample(metainfo=dict(img_path='x'))])
    detection = runner(tmp_path)
    detection.val_loop.dataloader.dataset.metainfo = dict(classes=('a', ))
    with pytest.raises(RuntimeError, match="metainfo has no 'thing_classes'"):
        hook.before_val_epoch(detection)
        hook.after_val_iter(detection, 0, None, [sample(tmp_path, 0, np.zeros((1, 1)))])


def test_several_ranks_give_the_first_images_in_dataset_order(tmp_path, monkeypatch):
    """Rank r evaluates the images r, r + W, ...: gathered, the file holds the dataset's first ones."""
    from mmdet_plugins.analysis import panoptic_predictions_hook as mod
    world = 3
    kept = {r: [dict(img_id=r + world * k) for k in range(2)] for r in range(world)}  # each rank keeps 2
    monkeypatch.setattr(mod, 'get_world_size', lambda: world)
    monkeypatch.setattr(mod, 'all_gather_object', lambda obj: [kept[r] for r in range(world)])
    hook = PanopticPredictionsHook(num_images=4)
    hook._images = kept[0]
    assert [im['img_id'] for im in hook._gathered()] == [0, 1, 2, 3]
    kept[2] = []  # (a rank with fewer images: the others' still come in order)
    assert [im['img_id'] for im in hook._gathered()] == [0, 1, 3, 4]
