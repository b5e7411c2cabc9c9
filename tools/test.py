"""Evaluate a checkpoint on the test split of a config.

Example::

    python tools/test.py CONFIG work_dirs/x/iter_1000.pth --show-dir vis --out preds
"""
import argparse
import os

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import hicd_mm  # noqa: F401  (registers components, checkpoint safe globals)
from hicd_mm.utils import setup_cpu_distributed, setup_work_dir


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a change detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='dir for logs and the metrics json')
    parser.add_argument('--out', help='dir to save the predicted change masks (png)')
    parser.add_argument('--show-dir', help='dir to save, per pair, A | B | prediction | '
                        'TP/FP/FN overlay')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def add_output_hook(cfg: Config, out_dir=None, show_dir=None) -> None:
    """Add the hook writing prediction masks (``--out``) and overlays (``--show-dir``)."""
    if out_dir is None and show_dir is None:
        return
    hooks = [h for h in cfg.get('custom_hooks', []) if h.get('type') != 'CDPredictionWriterHook']
    hooks.append(dict(type='hicd_mm.CDPredictionWriterHook', out_dir=out_dir,
                      show_dir=show_dir))
    cfg.custom_hooks = hooks


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    setup_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    add_output_hook(cfg, args.out, args.show_dir)
    setup_cpu_distributed(cfg)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    runner.test()


if __name__ == '__main__':
    main()
