"""Train a detector from an MMDetection 3.x config (BatchFormerV2 plugins included).

Single GPU / CPU:  python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
Multi-GPU:         bash tools/dist_train.sh CONFIG NUM_GPUS [options]  (torchrun, --launcher pytorch)
Several nodes:     NNODES=2 NODE_RANK=0 MASTER_ADDR=host0 bash tools/dist_train.sh CONFIG GPUS_PER_NODE  (and rank 1)

Without a GPU, ``--launcher pytorch`` trains in several processes on the CPU with the gloo backend (for tests and
debugging): bash tools/dist_train.sh CONFIG 2.

With the environment variable BF_DEADLINE (Unix time) set, an iteration-based run saves a checkpoint and stops
at that time (mmdet_plugins StopAtDeadlineHook); ``--resume`` continues it later, skipping the batches already
trained by their indices (IndexSkippingIterBasedTrainLoop) rather than reading them: the same images follow, with
their random augmentations drawn afresh.
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmdet_plugins  # noqa: F401  (registers the BatchFormerV2 detectors and the checkpoint loader)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector (MMDetection 3.x + BatchFormerV2)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models (default: work_dirs/CONFIG_NAME)')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision training')
    parser.add_argument('--no-amp', action='store_true',
                        help='train in fp32 even where the config asks for mixed precision (AmpOptimWrapper)')
    parser.add_argument('--auto-scale-lr', action='store_true', help='scale the lr by the actual batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from CKPT; without a path, resume from the latest checkpoint in the work dir')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value pairs, e.g. train_cfg.max_epochs=12')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher (torchrun: pytorch)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_config(path: str, launcher: str, cfg_options=None, work_dir=None) -> Config:
    """The config at ``path`` with the launcher, --cfg-options and the work dir (default
    work_dirs/CONFIG_NAME) applied; shared by tools/train.py and tools/test.py."""
    if not osp.isfile(path):
        raise SystemExit(f'error: config file {path!r} not found')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def build_config(args) -> Config:
    cfg = load_config(args.config, args.launcher, args.cfg_options, args.work_dir)
    if args.amp and args.no_amp:
        raise SystemExit('--amp and --no-amp contradict each other: choose one')
    if args.no_amp:
        amp_off(cfg, 'tools/train.py: --no-amp')
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise SystemExit('--auto-scale-lr: the config has no auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    add_deadline_hook(cfg)
    index_skipping_resume(cfg)
    amp_off_without_gpu(cfg)
    return cfg


def index_skipping_resume(cfg: Config) -> None:
    """A resumed iteration-based run skips its trained batches by their indices instead of reading them
    (mmdet_plugins ``IndexSkippingIterBasedTrainLoop``: the same images follow, minutes sooner)."""
    if cfg.get('resume') and (cfg.get('train_cfg') or {}).get('type') == 'IterBasedTrainLoop':
        cfg.train_cfg.type = 'IndexSkippingIterBasedTrainLoop'


def amp_off_without_gpu(cfg: Config) -> None:
    """mmengine's AmpOptimWrapper refuses to run without a GPU: on the CPU train in fp32, and say so."""
    import torch
    if not torch.cuda.is_available():
        amp_off(cfg, 'tools/train.py: no GPU')


def amp_off(cfg: Config, why: str) -> None:
    """Replace the config's AmpOptimWrapper (mixed precision) by OptimWrapper (fp32), saying so."""
    if cfg.get('optim_wrapper', {}).get('type') == 'AmpOptimWrapper':
        print(f'{why}: the config\'s AmpOptimWrapper (mixed precision) is replaced by OptimWrapper (fp32)')
        cfg.optim_wrapper.type = 'OptimWrapper'
        for key in ('loss_scale', 'dtype', 'use_fsdp'):
            cfg.optim_wrapper.pop(key, None)


def add_deadline_hook(cfg: Config) -> None:
    """With BF_DEADLINE set, stop an iteration-based run at that time with a checkpoint (resumable)."""
    from mmdet_plugins.runtime.deadline_hook import DEADLINE_ENV
    if not os.environ.get(DEADLINE_ENV) or cfg.get('train_cfg', {}).get('type') != 'IterBasedTrainLoop':
        return
    hooks = list(cfg.get('custom_hooks', []))
    if not any(h.get('type') == 'StopAtDeadlineHook' for h in hooks):
        cfg.custom_hooks = hooks + [dict(type='StopAtDeadlineHook')]


def distributed_on_cpu(cfg: Config) -> None:
    """Data-parallel processes without a GPU: the gloo backend, the process group started here (mmengine's own
    start calls ``torch.cuda.set_device``, which fails without a GPU) and DDP without device ids (a CPU module)."""
    import torch
    import torch.distributed as dist
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                                     find_unused_parameters=cfg.get('find_unused_parameters', False))


def end_distributed() -> None:
    """Leave the process group cleanly (gloo's threads abort a process that exits while it is still up)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def check_data(cfg: Config) -> None:
    """Stop with one line when a dataset file the config reads is missing (mmengine would fail later with a
    pycocotools traceback); the line says which file and how to make it."""
    from mmdet_plugins.datasets.data_files import MissingDataError, check_dataset_files
    try:
        check_dataset_files(cfg)
    except MissingDataError as e:
        raise SystemExit(f'error: {e}')


def main(argv=None):
    cfg = build_config(parse_args(argv))
    check_data(cfg)
    distributed_on_cpu(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()
    end_distributed()


if __name__ == '__main__':
    main()
