"""The Fashion-MNIST canvas generator: determinism, annotation validity, long tail, occlusion, bad input."""
import hashlib
import json
import os
import os.path as osp
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from mmdet_plugins.datasets import fashion_canvas as fc

pytestmark = pytest.mark.skipif(not osp.isfile(osp.join(fc.FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')),
                                reason='Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)')
SPEC = replace(fc.PRESETS['smoke'], num_train=12, num_val=6)


def digest(root):
    h = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                h[osp.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return h


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('fc') / 'data')
    fc.generate(out, SPEC, workers=1, log=None)
    return out


def test_same_seed_same_bytes_any_worker_count(dataset, tmp_path):
    other = str(tmp_path / 'again')
    fc.generate(other, SPEC, workers=2, log=None)
    assert digest(dataset) == digest(other)
    third = str(tmp_path / 'seed1')
    fc.generate(third, replace(SPEC, seed=1), workers=1, log=None)
    assert digest(third) != digest(dataset)


def test_detection_annotations_valid(dataset):
    from pycocotools.coco import COCO
    for split, count in (('train', SPEC.num_train), ('val', SPEC.num_val)):
        coco = COCO(osp.join(dataset, 'annotations', f'instances_{split}.json'))
        assert len(coco.getImgIds()) == count
        assert sorted(coco.getCatIds()) == list(range(1, 11))
        anns = coco.loadAnns(coco.getAnnIds())
        assert anns, 'no boxes at all'
        for a in anns:
            x, y, w, h = a['bbox']
            assert w > 0 and h > 0 and x >= 0 and y >= 0
            assert x + w <= SPEC.canvas_size and y + h <= SPEC.canvas_size
            assert 0 < a['area'] <= w * h
        for img in coco.loadImgs(coco.getImgIds()):
            assert Image.open(osp.join(dataset, split, img['file_name'])).size == (SPEC.canvas_size, ) * 2


def test_panoptic_annotations_match_pixels_and_boxes(dataset):
    from mmdet.datasets.api_wrappers import COCOPanoptic
    pan = COCOPanoptic(osp.join(dataset, 'annotations', 'panoptic_val.json'))
    cats = {c['id']: c for c in pan.dataset['categories']}
    assert sum(c['isthing'] for c in cats.values()) == 10 and len(cats) == 13
    with open(osp.join(dataset, 'annotations', 'instances_val.json')) as f:
        det = json.load(f)
    for ann in pan.dataset['annotations']:
        rgb = np.asarray(Image.open(osp.join(dataset, 'annotations', 'panoptic_val', ann['file_name'])),
                         dtype=np.int64)
        ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
        segs = {s['id']: s for s in ann['segments_info']}
        assert set(np.unique(ids)) - {0} == set(segs)
        for sid, s in segs.items():
            assert int((ids == sid).sum()) == s['area']
        things = sorted((s['category_id'], s['bbox']) for s in segs.values() if cats[s['category_id']]['isthing'])
        boxes = sorted((a['category_id'], a['bbox']) for a in det['annotations'] if a['image_id'] == ann['image_id'])
        assert things == boxes, 'every detection box is a thing segment of the panoptic annotation'


def test_long_tailed_train_balanced_val():
    p = fc.class_probabilities(16.0)
    assert p.sum() == pytest.approx(1.0) and p[0] / p[-1] == pytest.approx(16.0)
    assert np.all(np.diff(p) < 0)
    assert np.allclose(fc.class_probabilities(1.0), 0.1)
    with pytest.raises(ValueError):
        fc.class_probabilities(0.5)


def test_mostly_hidden_items_are_not_targets():
    images, labels = fc.load_fashion_mnist('val')
    pools = [np.flatnonzero(labels == k) for k in range(10)]
    crowded = replace(SPEC, max_items=12, min_item=40, max_item=56)
    counts = []
    for min_visible in (0.0, 0.5, 1.01):
        rng = np.random.default_rng(0)
        spec = replace(crowded, min_visible=min_visible)
        n = sum(sum(s['isthing'] for s in fc.make_canvas(images, pools, fc.class_probabilities(1.0), spec, rng)[2])
                for _ in range(10))
        counts.append(n)
    assert counts[0] > counts[1] > counts[2] == 0


def test_missing_fashion_mnist_is_a_clear_error(tmp_path):
    out = tmp_path / 'data'
    with pytest.raises(fc.MissingFashionMNIST, match='dataset-fashion-mnist'):
        fc.generate(str(out), SPEC, fashion_mnist=str(tmp_path / 'nowhere'), log=None)
    assert not out.exists()
    with pytest.raises(SystemExit, match='dataset-fashion-mnist'):
        fc.main([str(out), '--scale', 'smoke', '--fashion-mnist', str(tmp_path / 'nowhere')])


def test_complete_dataset_is_not_regenerated(dataset, capsys):
    assert fc.is_complete(dataset, SPEC)
    assert not fc.is_complete(dataset, replace(SPEC, seed=3))
    args = [dataset, '--scale', 'smoke', '--num-train', str(SPEC.num_train), '--num-val', str(SPEC.num_val)]
    fc.main(args)
    assert 'nothing to do' in capsys.readouterr().out
