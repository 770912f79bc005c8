"""How large a gradient each image receives from the *other* images through BatchFormerV2, per object class.

The paper argues that BatchFormerV2 helps rare classes because their samples receive gradients from the other
samples of the batch through the module. This hook measures that during two-stream training.

Definition. Let one BatchFormerV2 module map the B images' tokens ``X = (X_1 .. X_B)`` (each ``(N, C)``) to
``Y = (Y_1 .. Y_B)``. Downstream of the module every image is processed on its own (encoder layers, decoder,
matching and loss are per image; the loss's normalising counts are constants), so the gradient of the training
loss ``L`` with respect to ``Y_j`` is the gradient of image j's own loss terms, ``G_j = dL/dY_j``. The gradient that
flows into image i's features *through the module* from the other images' losses is

    g_i = sum_{j != i} (dY_j / dX_i)^T G_j          (an (N, C) tensor),

and the hook records its Frobenius norm ``||g_i||`` (divided by the AMP loss scale, so it is a gradient of the
unscaled loss). ``||g_i||`` is attributed to every class that has at least one ground-truth object in image i
(once per class and image). Per class the hook keeps a running count, mean and standard deviation (Welford), and
the training split's number of boxes of the class (its frequency).

Computation. A forward hook on each ``BatchFormerV2Layer`` puts a tensor hook on the module's output (only on
measured iterations). When the normal backward pass reaches the output, that hook receives ``G`` and, before the
module's own backward runs, computes every ``g_i`` with a vector-Jacobian product through the module's part of the
graph (``torch.autograd.grad(Y, X, G with image i's slice zeroed, retain_graph=True)``): the Jacobian is the one
of this very forward pass (same weights, same dropout masks). ``torch.autograd.grad`` touches no ``.grad`` and
draws no random numbers, and the hook returns nothing, so training's losses, gradients and random numbers are the
same with and without the hook (tests/mmdet_plugins/analysis/test_grad_per_class_hook.py). Iterations whose ``G`` is not finite
(a skipped AMP step) are not measured.

Cost: B backward passes through one BatchFormerV2 layer every ``interval`` iterations. The hook times its own
host-side work (``hook_seconds`` in its log, beside ``train_seconds``, the wall time of the span), and it times
every training step (from ``before_train_iter`` to the end of its ``after_train_iter``: forward, backward,
optimiser step; not data loading, validation or checkpointing), so one run compares measured and unmeasured
steps side by side: ``step_seconds`` holds the median of each kind (the first ``warmup`` steps left out) and
``overhead`` the training time the measurement adds, ``(median measured / median unmeasured - 1) / interval``.

Output: ``<work_dir>/grad_per_class.json``, rewritten atomically every ``write_interval`` iterations and at the end.
The statistics travel in every checkpoint (key ``grad_per_class_hook``), so a resumed run continues them.

    custom_hooks = [dict(type='GradPerClassHook', interval=10)]
"""
from __future__ import annotations

import json
import os
import os.path as osp
import statistics
import time
from typing import Dict, List

import torch
from mmengine.hooks import Hook
from mmdet.registry import HOOKS

from ..batchformer.layer import BatchFormerV2Layer
from ..utils.model_utils import unwrap_model

__all__ = ['GradPerClassHook', 'cross_sample_grad_norms', 'RunningStats']


def cross_sample_grad_norms(y: torch.Tensor, x: torch.Tensor, grad_y: torch.Tensor,
                            max_images: int = None) -> torch.Tensor:
    """``||g_i||`` for every image (module docstring), from a forward pass whose graph is still alive.

    Args:
        y: ``(B, N, C)`` the module's output (part of a graph).
        x: ``(B, N, C)`` the module's input ``y`` was computed from (requires grad).
        grad_y: ``(B, N, C)`` the loss gradient with respect to ``y``.
        max_images: measure only the first ``max_images`` images (one backward pass each); None: all B.

    Returns:
        ``(B',)`` float32 norms, B' = min(B, max_images): image i's slice of the vector-Jacobian product with
        ``grad_y`` zeroed at image i.
    """
    B = y.size(0) if max_images is None else min(y.size(0), max_images)
    norms = torch.empty(B, dtype=torch.float32, device=y.device)
    with torch.enable_grad():
        for i in range(B):
            cotangent = grad_y.clone()
            cotangent[i] = 0
            (g, ) = torch.autograd.grad(y, x, grad_outputs=cotangent, retain_graph=True)
            norms[i] = g[i].float().norm()
    return norms


class RunningStats:
    """Count, mean and standard deviation of a stream of numbers (Welford's algorithm)."""

    def __init__(self):
        self.count, self.mean, self._m2 = 0, 0.0, 0.0

    def add(self, value: float) -> None:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self._m2 += delta * (value - self.mean)

    @property
    def std(self) -> float:
        return (self._m2 / (self.count - 1)) ** 0.5 if self.count > 1 else 0.0


@HOOKS.register_module()
class GradPerClassHook(Hook):
    """Per-class statistics of the cross-sample gradient through BatchFormerV2 (module docstring).

    Args:
        interval: measure every ``interval`` training iterations.
        write_interval: rewrite the json log every ``write_interval`` iterations (and after training).
        filename: the log's name in the work directory.
        warmup: steps left out of the step-time medians (start-up, cudnn autotuning).
        max_images: measure only the first ``max_images`` images of a measured batch (one backward pass
            through the module each; the batch is shuffled, so they are a random sample); None: every image.
    """
    priority = 'LOW'
    frequency_key = 'train_boxes'  # the log's name for a class's training frequency

    def __init__(self, interval: int = 10, write_interval: int = 100, filename: str = 'grad_per_class.json',
                 warmup: int = 20, max_images: int = None):
        if interval < 1 or write_interval < 1 or warmup < 0 or (max_images is not None and max_images < 1):
            raise ValueError(f'{type(self).__name__}: interval and write_interval must be >= 1, warmup >= 0 and '
                             f'max_images >= 1 or None, got {interval}, {write_interval}, {warmup}, {max_images}')
        self.interval, self.write_interval, self.filename = interval, write_interval, filename
        self.warmup, self.max_images = warmup, max_images
        self.step_seconds: Dict[str, List[float]] = dict(measured=[], unmeasured=[])
        self._t_step = None
        self._calls: List[Dict] = []
        self._handles = []
        self._armed = False
        self._scale = 1.0
        self.stats: Dict[int, RunningStats] = {}
        self.hook_seconds, self.measured_iters, self.skipped_iters = 0.0, 0, 0
        self._t_start = None
        self._seconds_before = 0.0  # training time of earlier sittings (resumed runs)

    # -------------------------------------------------------------------------------------------- set-up
    def before_train(self, runner) -> None:
        model = unwrap_model(runner.model)
        modules = [m for m in model.modules() if isinstance(m, BatchFormerV2Layer)]
        if not modules or getattr(model, 'bf_mode', None) != 'two_stream':
            raise RuntimeError('GradPerClassHook measures two-stream BatchFormerV2 training: the model has no '
                               'BatchFormerV2 module in two_stream mode. Use it with a bf-* config.')
        for m in modules:
            self._handles.append(m.register_forward_hook(self._post_forward))
        dataset = runner.train_dataloader.dataset
        self.classes = list(dataset.metainfo['classes'])
        self.train_boxes = self._class_counts(dataset)
        self._t_start = time.perf_counter()

    def _image_classes(self, sample) -> List[int]:
        """The classes present in one training image (its data sample)."""
        return sample.gt_instances.labels.tolist()

    @staticmethod
    def _class_counts(dataset) -> List[int]:
        """Boxes per class in the training split (through dataset wrappers)."""
        while hasattr(dataset, 'dataset'):
            dataset = dataset.dataset
        counts = [0] * len(dataset.metainfo['classes'])
        for i in range(len(dataset)):
            for instance in dataset.get_data_info(i).get('instances', []):
                if not instance.get('ignore_flag', 0):
                    counts[instance['bbox_label']] += 1
        return counts

    # ------------------------------------------------------------------------------- resume
    def _elapsed(self) -> float:
        return self._seconds_before + (time.perf_counter() - self._t_start if self._t_start else 0.0)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['grad_per_class_hook'] = dict(
            stats={c: [s.count, s.mean, s._m2] for c, s in self.stats.items()},
            step_seconds={k: list(v) for k, v in self.step_seconds.items()}, hook_seconds=self.hook_seconds,
            measured_iters=self.measured_iters, skipped_iters=self.skipped_iters, train_seconds=self._elapsed())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('grad_per_class_hook')
        if not state:
            return
        self.stats = {}
        for c, (count, mean, m2) in state['stats'].items():
            s = self.stats[int(c)] = RunningStats()
            s.count, s.mean, s._m2 = count, mean, m2
        self.step_seconds = {k: list(v) for k, v in state['step_seconds'].items()}
        self.hook_seconds, self._seconds_before = state['hook_seconds'], state['train_seconds']
        self.measured_iters, self.skipped_iters = state['measured_iters'], state['skipped_iters']

    def after_train(self, runner) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._write(runner, runner.iter)  # (after the loop, runner.iter counts the finished iterations)

    # ------------------------------------------------------------------------------------ capture
    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._t_step = time.perf_counter()
        self._calls = []
        self._armed = (runner.iter + 1) % self.interval == 0
        if self._armed:  # (get_scale reads a device tensor: only on measured iterations)
            scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
            self._scale = float(scaler.get_scale()) if scaler is not None and scaler.is_enabled() else 1.0

    def _post_forward(self, module, args, output):
        x = args[0]
        if not (self._armed and module.training and output.requires_grad and x.requires_grad):
            return
        call = dict(y=output, x=x, norms=None)
        self._calls.append(call)

        def measure(grad):  # called by the backward pass with dL/dY, before the module's own backward
            if call.get('inside'):  # the VJPs below start backward passes from Y too: they call this hook again
                return
            call['inside'] = True
            started = time.perf_counter()
            try:
                if torch.isfinite(grad).all():
                    call['norms'] = cross_sample_grad_norms(call['y'], call['x'], grad.detach(),
                                                            self.max_images)
            finally:
                call['inside'] = False
                self.hook_seconds += time.perf_counter() - started
        output.register_hook(measure)

    # ------------------------------------------------------------------------------------ measure
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._armed and self._calls:
            started = time.perf_counter()  # (the VJPs themselves ran inside the backward pass: timed there)
            labels = [self._image_classes(sample) for sample in data_batch['data_samples']]
            measured = False
            for call in self._calls:
                if call['norms'] is None:
                    continue
                norms = call['norms'] / self._scale
                # the module sees the B images of the batch (a later insertion point: the second stream)
                for image_labels, norm in zip(labels, norms.tolist()):
                    for c in sorted(set(image_labels)):
                        self.stats.setdefault(int(c), RunningStats()).add(norm)
                measured = True
            self.measured_iters += int(measured)
            self.skipped_iters += int(not measured)
            self.hook_seconds += time.perf_counter() - started
        if self._t_step is not None and runner.iter >= self.warmup:
            kind = 'measured' if self._armed else 'unmeasured'
            self.step_seconds[kind].append(time.perf_counter() - self._t_step)
        self._t_step = None
        self._calls = []
        self._armed = False
        if (runner.iter + 1) % self.write_interval == 0:
            self._write(runner, runner.iter + 1)

    def step_summary(self) -> Dict:
        """Median step time of measured and unmeasured iterations and the training time the hook adds."""
        medians = {k: (statistics.median(v) if v else None) for k, v in self.step_seconds.items()}
        overhead = None
        if medians['measured'] and medians['unmeasured']:
            overhead = (medians['measured'] / medians['unmeasured'] - 1) / self.interval
        return dict(step_seconds=dict(median_measured=medians['measured'], median_unmeasured=medians['unmeasured'],
                                      n_measured=len(self.step_seconds['measured']),
                                      n_unmeasured=len(self.step_seconds['unmeasured']), warmup=self.warmup),
                    overhead=overhead)

    def _write(self, runner, iterations: int) -> None:
        rows = []
        for c, name in enumerate(self.classes):
            s = self.stats.get(c, RunningStats())
            rows.append(dict(class_id=c, name=name, **{self.frequency_key: self.train_boxes[c]}, count=s.count,
                             mean=s.mean if s.count else None, std=s.std if s.count > 1 else None))
        log = dict(definition='||sum_{j!=i} (dY_j/dX_i)^T dL/dY_j|| per image i, through the BatchFormerV2 '
                              'module, unscaled loss; attributed once to each class present in image i '
                              '(mmdet_plugins/analysis/grad_per_class_hook.py)',
                   hook=type(self).__name__, max_images=self.max_images,
                   iteration=iterations, interval=self.interval, measured_iters=self.measured_iters,
                   skipped_iters=self.skipped_iters, hook_seconds=round(self.hook_seconds, 3),
                   train_seconds=round(self._elapsed(), 3),
                   config=osp.basename(runner.cfg.filename) if getattr(runner.cfg, 'filename', None) else None,
                   seed=runner.seed, **self.step_summary(), classes=rows)
        path = osp.join(runner.work_dir, self.filename)
        tmp = path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(log, f, indent=1)
        os.replace(tmp, path)
