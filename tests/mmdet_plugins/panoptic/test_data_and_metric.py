"""The panoptic data path on the canvases: mmdet's CocoPanopticDataset + LoadPanopticAnnotations + AddStuffInstances,
and PQ from mmdet's CocoPanopticMetric (panopticapi) on hand-made predictions."""
import os.path as osp

import numpy as np
import pytest
import torch

pytest.importorskip('panopticapi.evaluation', reason='panopticapi missing: bash setup.sh installs panopticapi-lite')

from mmdet_plugins.datasets import fashion_canvas as fc  # noqa: E402

pytestmark = pytest.mark.skipif(not osp.isfile(osp.join(fc.FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')),
                                reason='Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)')

CLASSES = fc.THING_CLASSES + fc.STUFF_CLASSES
METAINFO = dict(classes=CLASSES, thing_classes=fc.THING_CLASSES, stuff_classes=fc.STUFF_CLASSES)
T = len(fc.THING_CLASSES)


@pytest.fixture(autouse=True)
def mmdet_scope():
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


@pytest.fixture(scope='module')
def canvases(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('panoptic_canvas'))
    fc.generate(out, fc.PRESETS['smoke'], workers=1, log=None)
    return out


def dataset(root, pipeline):
    import mmdet_plugins  # noqa: F401  (registers AddStuffInstances)
    from mmdet.registry import DATASETS
    return DATASETS.build(dict(type='CocoPanopticDataset', data_root=root, ann_file='annotations/panoptic_val.json',
                               data_prefix=dict(img='val/', seg='annotations/panoptic_val/'), metainfo=METAINFO,
                               test_mode=True, pipeline=pipeline))


def load_pipeline(stuff=True):
    p = [dict(type='LoadImageFromFile'),
         dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True)]
    return p + [dict(type='AddStuffInstances', num_things_classes=T)] if stuff else p


def test_stuff_classes_become_box_and_mask_targets(canvases):
    plain, with_stuff = dataset(canvases, load_pipeline(False)), dataset(canvases, load_pipeline(True))
    saw_stuff = 0
    for i in range(len(plain)):
        a, b = plain[i], with_stuff[i]
        seg = b['gt_seg_map']
        stuff = sorted(int(v) for v in np.unique(seg) if T <= v < 255)
        n = len(a['gt_bboxes_labels'])
        assert b['gt_bboxes_labels'][:n].tolist() == a['gt_bboxes_labels'].tolist()  # things first, unchanged
        assert b['gt_bboxes_labels'][n:].tolist() == stuff
        assert len(b['gt_bboxes']) == len(b['gt_masks']) == len(b['gt_ignore_flags']) == n + len(stuff)
        for k, label in enumerate(stuff):
            mask = b['gt_masks'].masks[n + k].astype(bool)
            assert (mask == (seg == label)).all()
            ys, xs = np.nonzero(mask)
            assert b['gt_bboxes'].numpy()[n + k].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            assert not b['gt_ignore_flags'][n + k]
        saw_stuff += len(stuff)
    assert saw_stuff >= len(plain)  # every canvas has a textured background


def test_add_stuff_needs_the_semantic_map():
    from mmdet_plugins.panoptic import AddStuffInstances
    with pytest.raises(KeyError, match='with_seg=True'):
        AddStuffInstances(num_things_classes=T)(dict(img=np.zeros((4, 4, 3), np.uint8)))
    with pytest.raises(ValueError, match='min_area'):
        AddStuffInstances(num_things_classes=T, min_area=0)


def gt_as_prediction(info, drop_segment=None):
    """mmdet's panoptic encoding of the ground truth (things ``label + k * INSTANCE_OFFSET``, stuff ``label``,
    void ``len(classes)``), optionally with one segment set to void."""
    import mmcv
    from mmdet.evaluation.functional import INSTANCE_OFFSET
    from panopticapi.utils import rgb2id
    ids = rgb2id(mmcv.imread(info['seg_map_path'], channel_order='rgb'))
    pan = np.full(ids.shape, len(CLASSES), np.int64)
    for k, s in enumerate(info['segments_info'], start=1):
        if s['id'] == drop_segment:
            continue
        pan[ids == s['id']] = s['category'] + (k * INSTANCE_OFFSET if s['is_thing'] else 0)
    return torch.from_numpy(pan)[None]


def evaluate(ds, root, drop=None):
    from mmdet.evaluation.metrics import CocoPanopticMetric
    metric = CocoPanopticMetric(ann_file=osp.join(root, 'annotations/panoptic_val.json'),
                                seg_prefix=osp.join(root, 'annotations/panoptic_val/'))
    metric.dataset_meta = ds.metainfo
    samples = []
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        samples.append(dict(img_id=info['img_id'], img_path=info['img_path'], seg_map_path=info['seg_map_path'],
                            segments_info=info['segments_info'], ori_shape=(info['height'], info['width']),
                            pred_panoptic_seg=dict(sem_seg=gt_as_prediction(info, drop if i == 0 else None))))
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_perfect_prediction_gives_pq_100(canvases):
    ds = dataset(canvases, load_pipeline())
    res = evaluate(ds, canvases)
    for key in ('PQ', 'SQ', 'RQ', 'PQ_th', 'PQ_st'):
        assert res[f'coco_panoptic/{key}'] == pytest.approx(100.0)


def test_a_missed_thing_gives_the_pq_computed_by_hand(canvases):
    ds = dataset(canvases, load_pipeline())
    first = ds.get_data_info(0)
    missed = next(s for s in first['segments_info'] if s['is_thing'])
    # GT segments of that class over the split: all but the missed one are matched exactly (IoU 1)
    n = sum(s['category'] == missed['category'] for i in range(len(ds)) for s in ds.get_data_info(i)['segments_info'])
    classes = {s['category'] for i in range(len(ds)) for s in ds.get_data_info(i)['segments_info']}
    things = {c for c in classes if c < T}
    pq_class = (n - 1) / ((n - 1) + 0.5 * 1)  # SQ 1, RQ = TP / (TP + FN / 2)
    res = evaluate(ds, canvases, drop=missed['id'])
    assert res['coco_panoptic/PQ'] == pytest.approx(100 * (len(classes) - 1 + pq_class) / len(classes), abs=1e-3)
    assert res['coco_panoptic/PQ_th'] == pytest.approx(100 * (len(things) - 1 + pq_class) / len(things), abs=1e-3)
    assert res['coco_panoptic/PQ_st'] == pytest.approx(100.0)
    assert res['coco_panoptic/SQ'] == pytest.approx(100.0)
