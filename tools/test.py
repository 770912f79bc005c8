"""Evaluate a checkpoint from an MMDetection 3.x config (BatchFormerV2 plugins included).

Single GPU / CPU:  python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl]
Multi-GPU:         bash tools/dist_test.sh CONFIG CHECKPOINT NUM_GPUS [options]
BatchFormerV2 is skipped at test time, so a BF checkpoint evaluates exactly like its baseline model.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import DictAction
from mmengine.runner import Runner

import mmdet_plugins  # noqa: F401

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from train import check_data, distributed_on_cpu, end_distributed, load_config  # noqa: E402  (tools/train.py)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a detector (MMDetection 3.x + BatchFormerV2)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='dump predictions to a pickle file (DumpDetResults)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.launcher, args.cfg_options, args.work_dir)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'error: checkpoint {args.checkpoint!r} not found')
    check_data(cfg)
    cfg.load_from = args.checkpoint
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise SystemExit('error: --out must be a .pkl or .pickle file')
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(cfg.test_evaluator, dict) else list(
            cfg.test_evaluator)
        cfg.test_evaluator.append(dict(type='DumpDetResults', out_file_path=args.out))
    distributed_on_cpu(cfg)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    end_distributed()
    return metrics


if __name__ == '__main__':
    main()
