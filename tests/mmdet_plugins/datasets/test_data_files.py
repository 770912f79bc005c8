"""What a config reads and the one-line error when it is missing: a panoptic config pointed at a detection-only
COCO folder names the panoptic files it lacks and where they come from."""
import os

import pytest

from helpers import load_config


def detection_only_coco(root):
    os.makedirs(root / 'annotations')
    for name in ('instances_train2017.json', 'instances_val2017.json'):
        (root / 'annotations' / name).write_text('{}')
    for folder in ('train2017', 'val2017'):
        os.makedirs(root / folder)


def test_panoptic_config_on_a_detection_only_dataset_names_the_missing_files(tmp_path):
    from mmdet_plugins.datasets.data_files import MissingDataError, check_dataset_files, set_data_root
    detection_only_coco(tmp_path / 'coco')
    cfg = load_config('configs/detr_panoptic/detr-panoptic-stage2_r50_8xb2-25e_coco-panoptic.py')
    set_data_root(cfg, str(tmp_path / 'coco'))
    assert cfg.val_evaluator.seg_prefix == str(tmp_path / 'coco' / 'annotations' / 'panoptic_val2017') + '/'
    with pytest.raises(MissingDataError) as e:
        check_dataset_files(cfg)
    msg = str(e.value)
    assert '\n' not in msg and msg.startswith(f'4 dataset files and folders under {tmp_path / "coco" / "annotations"}')
    for name in ('panoptic_train2017.json', 'panoptic_val2017.json', 'panoptic_train2017', 'panoptic_val2017'):
        assert name in msg
    assert 'panoptic_annotations_trainval2017.zip' in msg
    # with the panoptic files there, nothing is missing
    for name in ('panoptic_train2017.json', 'panoptic_val2017.json'):
        (tmp_path / 'coco' / 'annotations' / name).write_text('{}')
    for name in ('panoptic_train2017', 'panoptic_val2017'):
        os.makedirs(tmp_path / 'coco' / 'annotations' / name)
    check_dataset_files(cfg)


def test_one_missing_file_is_named_alone(tmp_path):
    from mmdet_plugins.datasets.data_files import MissingDataError, check_dataset_files, set_data_root
    detection_only_coco(tmp_path / 'coco')
    os.remove(tmp_path / 'coco' / 'annotations' / 'instances_val2017.json')
    cfg = load_config('configs/detr/detr_r50_8xb2-50e_coco.py')
    set_data_root(cfg, str(tmp_path / 'coco'))
    with pytest.raises(MissingDataError, match=r'instances_val2017.json not found: download COCO 2017'):
        check_dataset_files(cfg)
