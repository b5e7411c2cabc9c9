"""Train a change detector (or a HiCD student) from a config file.

Example::

    python tools/train.py configs/fc_siam_diff/fc_siam_diff_cpu-1k_synthetic.py
    python tools/train.py CONFIG --data-root /data/LEVIR-CD --check-data
    tools/dist_train.sh CONFIG 2   # torchrun; on a CPU the processes use gloo

Bad input (a missing config, bad data with ``--check-data``) ends with one line
``train.py: error: ...`` and exit status 2.
"""
import argparse
import logging
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import hicd_mm  # noqa: F401  (registers components, checkpoint safe globals)
from hicd_mm.utils import setup_cpu_distributed, setup_work_dir
from hicd_tools.run_setup import (add_data_arguments, apply_data_options,
                                  fail, finish_run)

TOOL = 'train.py'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a change detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', action='store_true', default=False,
                        help='resume from the latest checkpoint in the work_dir')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    add_data_arguments(parser)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def enable_amp(cfg: Config) -> None:
    """Switch ``OptimWrapper`` to ``AmpOptimWrapper`` with a dynamic loss scale."""
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper == 'AmpOptimWrapper':
        print_log('AMP training is already enabled in your config.', logger='current',
                  level=logging.WARNING)
        return
    if wrapper != 'OptimWrapper':
        raise ValueError(f'--amp needs optim_wrapper.type="OptimWrapper", got {wrapper!r}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.config):
        fail(TOOL, f'config not found: {args.config!r}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    notes = apply_data_options(cfg, args, ('train_dataloader', 'val_dataloader'), TOOL)
    setup_work_dir(cfg, args.config, args.work_dir)
    if args.amp:
        enable_amp(cfg)
    cfg.resume = args.resume
    setup_cpu_distributed(cfg)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    for note in notes:
        runner.logger.info(note)
    runner.train()
    del runner
    finish_run()


if __name__ == '__main__':
    main()
