"""The two training stages of DETR panoptic through mmengine's Runner on the smoke canvases (CPU): stage 1 trains the
box model on things and stuff, stage 2 loads its checkpoint, trains the mask head only and ends with PQ from mmdet's
CocoPanopticMetric."""
import os.path as osp

import pytest
import torch

pytest.importorskip('panopticapi.evaluation', reason='panopticapi missing: bash setup.sh installs panopticapi-lite')

from helpers import load_config  # noqa: E402
from mmdet_plugins.datasets import fashion_canvas as fc  # noqa: E402

pytestmark = pytest.mark.skipif(not osp.isfile(osp.join(fc.FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')),
                                reason='Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)')


def smoke_cfg(path, data_root, work_dir, load_from=None):
    from mmdet_plugins.datasets.data_files import set_data_root
    from reproduce.tables.detection import smoke_overrides
    cfg = load_config(path)
    smoke_overrides(cfg)
    cfg.train_cfg.max_iters = cfg.train_cfg.val_interval = 2
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.model.encoder.num_layers = cfg.model.decoder.num_layers = 1
    cfg.model.num_queries = cfg.model.test_cfg.max_per_img = 10
    set_data_root(cfg, data_root)
    cfg.work_dir = work_dir
    cfg.load_from = load_from
    cfg.default_hooks.checkpoint.interval = 2
    cfg.randomness = dict(seed=0)
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize('bf', [False, True])
def test_stage_1_then_stage_2_ends_in_pq(tmp_path, bf):
    import mmdet_plugins  # noqa: F401
    from mmdet.utils import register_all_modules
    from mmengine.runner import Runner
    register_all_modules()
    data = str(tmp_path / 'data')
    fc.generate(data, fc.PRESETS['smoke'], workers=1, log=None)
    prefix = 'configs/mini/panoptic/' + ('bf-' if bf else '')
    stage1 = Runner.from_cfg(smoke_cfg(prefix + 'detr-panoptic-stage1_r18_1xb16-mini.py', data, str(tmp_path / 's1')))
    stage1.train()
    ckpt = str(tmp_path / 's1' / 'iter_2.pth')
    assert osp.isfile(ckpt)

    stage2 = Runner.from_cfg(smoke_cfg(prefix + 'detr-panoptic-stage2_r18_1xb16-mini.py', data, str(tmp_path / 's2'),
                                       load_from=ckpt))
    stage2.train()
    metrics = stage2.val_loop.run()
    assert {'coco_panoptic/PQ', 'coco_panoptic/SQ', 'coco_panoptic/RQ', 'coco_panoptic/PQ_th',
            'coco_panoptic/PQ_st'} <= set(metrics)
    assert 0 <= metrics['coco_panoptic/PQ'] <= 100
    # stage 2 started from stage 1's detector, left it as it was, and trained the mask modules it added
    stage1_state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    after = stage2.model.state_dict()
    assert not any(k.startswith(('mask_head.', 'mask_attention.')) for k in stage1_state)
    for k, v in stage1_state.items():
        assert torch.equal(after[k], v), k
    assert sorted({k.split('.')[0] for k in set(after) - set(stage1_state)}) == ['mask_attention', 'mask_head']
    import glob
    log = open(glob.glob(str(tmp_path / 's2' / '*' / '*.log'))[0]).read()
    assert 'loss_mask_dice' in log
