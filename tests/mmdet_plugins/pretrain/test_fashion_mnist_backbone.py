"""mmdet_plugins.pretrain.fashion_mnist_backbone: rendering, a few CPU steps, and the checkpoint loading into the
mini configs' backbone through ``init_cfg``."""
import os.path as osp

import pytest
import torch

from helpers import REPO, load_config
from mmdet_plugins.datasets.fashion_canvas import FASHION_MNIST_DIR
from mmdet_plugins.pretrain import fashion_mnist_backbone as fmb

HAVE_FMNIST = osp.isfile(osp.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'))


def test_render_pastes_the_item_inside_the_canvas():
    items = torch.zeros(4, 28, 28, dtype=torch.uint8)
    items[:, 4:24, 4:24] = 255  # a white square
    gen = torch.Generator().manual_seed(0)
    x = fmb.render(items, 64, 16, 48, gen)
    assert x.shape == (4, 3, 64, 64) and torch.isfinite(x).all()
    rgb = x * torch.tensor(fmb.STD).view(1, 3, 1, 1) + torch.tensor(fmb.MEAN).view(1, 3, 1, 1)
    assert rgb.min() > -1 and rgb.max() < 256
    # same random draws without an item: only the square's pixels change, a block of side 16-48 px * 20/28
    blank = fmb.render(torch.zeros_like(items), 64, 16, 48, torch.Generator().manual_seed(0))
    for changed in ((x - blank).abs().amax(1) > 1e-3):
        ys, xs = torch.nonzero(changed, as_tuple=True)
        assert len(ys) > 0
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert 16 * 20 / 28 - 2 <= h <= 48 * 20 / 28 + 2 and abs(int(h) - int(w)) <= 2
    same = fmb.render(items, 64, 16, 48, torch.Generator().manual_seed(0))
    assert torch.equal(x, same), 'same generator state, same images'


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        fmb.parse_args(['x.pth', '--min-item', '90', '--max-item', '40'])
    with pytest.raises(SystemExit):
        fmb.parse_args(['x.pth', '--steps', '0'])


@pytest.mark.skipif(not HAVE_FMNIST, reason='Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)')
def test_cpu_pretraining_writes_a_checkpoint_the_mini_backbone_loads(tmp_path):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    out = str(tmp_path / 'r18.pth')
    args = [out, '--steps', '3', '--batch-size', '4', '--canvas', '64', '--min-item', '24', '--max-item', '48',
            '--eval-items', '8', '--device', 'cpu', '--log-every', '0']
    assert fmb.main(args) == 0
    ckpt = torch.load(out)
    assert ckpt['meta']['steps'] == 3 and 0 <= ckpt['meta']['test_top1'] <= 1 and ckpt['meta']['commit']
    state = ckpt['state_dict']
    assert 'conv1.weight' in state and not any(k.startswith('fc') for k in state)
    # the DETR mini config's backbone, pointed at this file, loads exactly these weights
    cfg = load_config('configs/mini/detr_r18_1xb16-mini.py').model.backbone
    assert cfg.init_cfg.type == 'Pretrained'
    cfg.init_cfg.checkpoint = out
    backbone = MODELS.build(cfg)
    backbone.init_weights()
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, state[key]), key
    mtime = osp.getmtime(out)
    assert fmb.main(args) == 0 and osp.getmtime(out) == mtime, 'an existing checkpoint is kept without --force'
