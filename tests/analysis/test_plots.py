"""analysis/: every figure script writes a PNG from stored or generated logs, and refuses bad input clearly."""
import glob
import json
import os.path as osp
import subprocess
import sys

import pytest

from helpers import REPO

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def script(name, *args):
    return subprocess.run([sys.executable, osp.join(REPO, 'analysis', name), *args], capture_output=True,
                          text=True, timeout=300, cwd=REPO)


def assert_png(path, min_bytes=10_000):
    assert osp.isfile(path), path
    with open(path, 'rb') as f:
        assert f.read(8) == PNG_MAGIC
    assert osp.getsize(path) > min_bytes


def test_curves_from_the_stored_logs(tmp_path):
    logs = sorted(glob.glob(osp.join(REPO, 'results/logs/detection_mini/*.json')))
    assert len(logs) >= 2
    out = str(tmp_path / 'curves.png')
    res = script('plot_curves.py', *logs, '-o', out, '--smooth', '3')
    assert res.returncode == 0, res.stderr
    assert_png(out)


def test_curves_refuse_bad_logs(tmp_path):
    out = str(tmp_path / 'c.png')
    res = script('plot_curves.py', str(tmp_path / 'missing.json'), '-o', out)
    assert res.returncode != 0 and 'no such log file' in res.stderr
    bad = tmp_path / 'bad.json'
    bad.write_text('{"lr": 0.1}\n')
    res = script('plot_curves.py', str(bad), '-o', out)
    assert res.returncode != 0 and 'no training loss' in res.stderr
    assert not osp.exists(out)
    res = script('plot_curves.py', osp.join(REPO, 'results/logs/detection_mini/DeformableDETR-bf-s0.json'),
                 '-o', str(tmp_path / 'c.jpg'))
    assert res.returncode != 0 and 'PNG' in res.stderr


def grad_log(path, seed, counts=(5, 3, 0)):
    classes = [dict(class_id=k, name=n, train_boxes=b, count=c, mean=(1.0 + k + seed) if c else None,
                    std=0.5 if c > 1 else None)
               for k, (n, b, c) in enumerate(zip(('shirt', 'bag', 'boot'), (300, 40, 10), counts))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(iteration=100, interval=10, classes=classes)))
    return str(path)


def test_grad_per_class_figure(tmp_path):
    logs = [grad_log(tmp_path / f'bf-s{s}' / 'grad_per_class.json', s) for s in range(2)]
    out = str(tmp_path / 'g.png')
    res = script('plot_grad_per_class.py', *logs, '-o', out, '--labels', 'Deformable', 'Deformable')
    assert res.returncode == 0, res.stderr
    assert_png(out)


def test_grad_per_class_figure_of_classification_logs_writes_its_statistics(tmp_path):
    logs = []
    for s in range(3):  # images per class instead of boxes (ClsGradPerClassHook); rarer classes get more
        classes = [dict(class_id=k, name=n, train_images=b, count=4, mean=1.0 + k + 0.1 * s, std=0.1)
                   for k, (n, b) in enumerate(zip(('a', 'b', 'c', 'd'), (600, 200, 60, 20)))]
        path = tmp_path / f's{s}.grad_per_class.json'
        path.write_text(json.dumps(dict(iteration=100, interval=10, classes=classes)))
        logs.append(str(path))
    out, stats = str(tmp_path / 'g.png'), str(tmp_path / 'g.md')
    res = script('plot_grad_per_class.py', *logs, '-o', out, '--labels', 'T', 'T', 'T', '--stats', stats)
    assert res.returncode == 0, res.stderr
    assert_png(out)
    text = open(stats).read()
    assert 'Spearman rho(training images, mean gradient) = -1.00' in text and '3 runs' in text


def test_grad_per_class_refuses_bad_logs(tmp_path):
    out = str(tmp_path / 'g.png')
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(dict(classes=[dict(name='x')])))
    res = script('plot_grad_per_class.py', str(bad), '-o', out)
    assert res.returncode != 0 and 'GradPerClassHook' in res.stderr
    empty = grad_log(tmp_path / 'e' / 'grad_per_class.json', 0, counts=(0, 0, 0))
    res = script('plot_grad_per_class.py', empty, '-o', out)
    assert res.returncode != 0 and 'no measured image' in res.stderr
    good = grad_log(tmp_path / 'a' / 'grad_per_class.json', 0)
    res = script('plot_grad_per_class.py', good, '-o', out, '--labels', 'a', 'b')
    assert res.returncode != 0 and '--labels' in res.stderr
    assert not osp.exists(out)


@pytest.mark.slow
def test_make_figures_regenerates_from_results(tmp_path):
    res = subprocess.run(['bash', osp.join(REPO, 'analysis', 'make_figures.sh'), str(tmp_path)],
                         capture_output=True, text=True, timeout=600, cwd=REPO)
    assert res.returncode == 0, res.stderr
    for name in ('curves_detection_mini.png', 'curves_detection_mini_fast.png', 'curves_calibration_mini.png'):
        assert_png(str(tmp_path / name))
    # the convergence table goes beside the figures, and is the stored one (made from the same stored logs)
    with open(osp.join(REPO, 'results', 'tables', 'convergence_mini.md')) as f:
        assert (tmp_path / 'convergence_mini.md').read_text() == f.read()


def _random_checkpoint(config, path):
    import torch
    import mmdet_plugins  # noqa: F401
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save({'state_dict': model.state_dict(), 'meta': {'dataset_meta': {'classes': list(cfg.mini_classes)}}},
               path)
    return path


def test_gradcam_baseline_and_bf_side_by_side_on_the_cpu(tmp_path):
    from PIL import Image
    import numpy as np
    image = str(tmp_path / 'canvas.png')
    rgb = np.full((96, 96, 3), 40, np.uint8)
    rgb[30:70, 20:60] = 220
    Image.fromarray(rgb).save(image)
    base_cfg = 'configs/mini/deformable-detr_r18_1xb16-mini.py'
    bf_cfg = 'configs/mini/bf-deformable-detr_r18_1xb16-mini.py'
    base = _random_checkpoint(base_cfg, str(tmp_path / 'base.pth'))
    bf = _random_checkpoint(bf_cfg, str(tmp_path / 'bf.pth'))
    out = tmp_path / 'cams'
    res = script('gradcam.py', base_cfg, base, image, '-o', str(out), '--compare', bf_cfg, bf,
                 '--names', 'baseline', 'BatchFormerV2')
    assert res.returncode == 0, res.stderr[-2000:]
    assert_png(str(out / 'canvas_gradcam.png'))
    res = script('gradcam.py', base_cfg, str(tmp_path / 'missing.pth'), image, '-o', str(out))
    assert res.returncode != 0 and 'no such checkpoint' in res.stderr
    res = script('gradcam.py', base_cfg, base, str(tmp_path / 'missing.png'), '-o', str(out))
    assert res.returncode != 0 and 'no such image' in res.stderr


def test_frequency_correlation_sign():
    sys.path.insert(0, REPO)
    from analysis.plot_grad_per_class import frequency_correlation
    rho, p = frequency_correlation([500, 300, 100, 50], [1.0, 2.0, 3.0, 4.0])  # rarer: larger
    assert rho == pytest.approx(-1.0) and 0 <= p <= 1
    rho, _ = frequency_correlation([500, 300, 100, 50], [4.0, float('nan'), 2.0, 1.0])  # a class never measured
    assert rho == pytest.approx(1.0)
    rho, _ = frequency_correlation([5, 3], [1.0, 2.0])
    assert rho != rho, 'fewer than 3 classes: undefined (NaN)'


def _panoptic_file(path, img_ids, shift=0, gt=True):
    """A panoptic_predictions.json of 16x24 images: a thing (class 0, instance 1) and stuff (class 2) around it."""
    import base64
    import cv2
    import numpy as np
    from mmdet_plugins.analysis.panoptic_predictions_hook import FORMAT, encode_map
    images = []
    for i in img_ids:
        image = np.full((16, 24, 3), 40 * i, dtype=np.uint8)
        seg = np.full((16, 24), 2, dtype=np.int64)
        seg[4:12, 6 + shift:14 + shift] = 0 + 1000
        seg[0, :] = 3  # (void: num_classes)
        ok, png = cv2.imencode('.png', image)
        images.append(dict(img_id=i, file_name=f'val_{i}.png', height=16, width=24,
                           image=base64.b64encode(png.tobytes()).decode(), pred=encode_map(seg),
                           gt=encode_map(seg) if gt else None))
    path.write_text(json.dumps(dict(format=FORMAT, iteration=10, classes=['thing', 'other', 'stuff'],
                                    thing_classes=['thing', 'other'], stuff_classes=['stuff'], instance_offset=1000,
                                    images=images)))
    return str(path)


def test_panoptic_figure_from_stored_predictions(tmp_path):
    base = _panoptic_file(tmp_path / 'base.json', [0, 1, 2])
    bf = _panoptic_file(tmp_path / 'bf.json', [0, 1, 2], shift=3)
    out = str(tmp_path / 'panoptic.png')
    res = script('plot_panoptic.py', base, bf, '-o', out, '--images', '2', '--labels', 'DETR', 'DETR + BF')
    assert res.returncode == 0, res.stderr
    assert 'wrote' in res.stdout and '(2 images, 2 runs)' in res.stdout
    assert_png(out)
    import matplotlib.image
    height, width = matplotlib.image.imread(out).shape[:2]
    assert width > 1.5 * height  # 4 columns (image, ground truth, 2 runs), 2 rows


def test_panoptic_figure_refuses_bad_input(tmp_path):
    base = _panoptic_file(tmp_path / 'base.json', [0, 1])
    out = str(tmp_path / 'p.png')
    cases = [
        ([base, _panoptic_file(tmp_path / 'other.json', [0, 5])], 'hold different images'),
        ([base, str(tmp_path / 'missing.json')], 'no such file'),
        ([base, '--images', '3'], 'the files hold 2 images'),
        ([base, '--labels', 'a', 'b'], '2 labels for 1 files'),
    ]
    (tmp_path / 'bad.json').write_text('{"format": "something else"}')
    cases.append(([str(tmp_path / 'bad.json')], 'not a panoptic predictions file'))
    (tmp_path / 'broken.json').write_text('{"format": ')
    cases.append(([str(tmp_path / 'broken.json')], 'not json'))
    short = json.loads((tmp_path / 'base.json').read_text())
    short['images'][1]['pred']['counts'] = short['images'][1]['pred']['counts'][:-1]  # (a run without its length)
    (tmp_path / 'short.json').write_text(json.dumps(short))
    cases.append(([base, str(tmp_path / 'short.json')], "image 1: its 'pred' cannot be read"))
    short['images'][1].pop('pred')
    (tmp_path / 'short.json').write_text(json.dumps(short))
    cases.append(([base, str(tmp_path / 'short.json')], "image 1: its 'pred' cannot be read (KeyError"))
    short = json.loads((tmp_path / 'base.json').read_text())
    short['instance_offset'] = 256
    (tmp_path / 'offset.json').write_text(json.dumps(short))
    cases.append(([str(tmp_path / 'offset.json')], 'instance_offset 256, but mmdet draws with 1000'))
    from analysis.plot_panoptic import main
    for args, message in cases:  # (in this process: each a SystemExit with one line, the message)
        with pytest.raises(SystemExit) as e:
            main([*args, '-o', out])
        assert message in str(e.value) and '\n' not in str(e.value), (args, e.value)
    assert not osp.exists(out)
    res = script('plot_panoptic.py', base, str(tmp_path / 'missing.json'), '-o', out)  # (and from the shell)
    assert res.returncode != 0 and 'no such file' in res.stderr and 'Traceback' not in res.stderr
