"""Evaluate a checkpoint on the test split of a config.

The checkpoint is loaded strictly (:func:`hicd_mm.utils.checkpoint.load_weights`): one that does
not match the model of the config is an error, and a HiCD distiller checkpoint given with a
detector config is evaluated through its student (the log says so).

Examples::

    python tools/test.py CONFIG work_dirs/x/iter_1000.pth --show-dir vis --out preds
    python tools/test.py CONFIG CKPT --data-root /data/LEVIR-CD --check-data
    # image B degraded on the fly (fixed seed 0, reproducible), replacing any config degradation
    python tools/test.py CONFIG CKPT --degradation jpeg --severity 3
    python tools/test.py CONFIG CKPT --degradation resolution --scale 4 --degradation-seed 1
    # a test split degraded offline by tools/degrade_dataset.py
    python tools/test.py CONFIG CKPT --degraded-dir data/LEVIR-CD_multi-x4/test

Bad input (options, files, data, a mismatching checkpoint) ends with one line
``test.py: error: ...`` and exit status 2. See docs/robustness.md.
"""
import argparse
import os
import os.path as osp
from typing import List

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import hicd_mm  # noqa: F401  (registers components, checkpoint safe globals)
from hicd_mm.utils import setup_cpu_distributed, setup_work_dir
from hicd_mm.utils.checkpoint import CheckpointError, load_weights
from hicd_tools.run_setup import (add_data_arguments, apply_data_options,
                                  fail, finish_run)
from hicd_tools.test_options import apply_test_options, valid_degradation_names

TOOL = 'test.py'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a change detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (detector, or HiCD distiller: its '
                        'student is evaluated)')
    parser.add_argument('--work-dir', help='dir for logs and the metrics json')
    parser.add_argument('--split', choices=('test', 'val'), default='test',
                        help="evaluate the config's test_dataloader/test_evaluator or its "
                        'val_dataloader/val_evaluator (model selection without the test split)')
    parser.add_argument('--out', help='dir to save the predicted change masks (png)')
    parser.add_argument('--show-dir', help='dir to save, per pair, the panels A | B (as the '
                        'model saw it) | GT | prediction | errors over A; a relative dir is '
                        'put under work_dir/<timestamp>/ (as mmseg does)')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='opacity of the change colours drawn over image A (--show-dir)')
    add_data_arguments(parser)
    quality = parser.add_mutually_exclusive_group()
    quality.add_argument('--degradation', metavar='NAME',
                         help='degrade image B on the fly with this degradation (or group); '
                         f'valid: {", ".join(valid_degradation_names())}')
    quality.add_argument('--degraded-dir', metavar='DIR',
                         help='evaluate on a test split degraded offline by '
                         'tools/degrade_dataset.py (no on-the-fly degradation)')
    parser.add_argument('--severity', type=int, metavar='S',
                        help='severity 1-5 of --degradation (single degradations and groups)')
    parser.add_argument('--scale', type=float, metavar='K',
                        help='scale of --degradation: resolution factor or multi sf')
    parser.add_argument('--degradation-seed', type=int, metavar='N',
                        help='seed of --degradation (default 0): sample i uses '
                        'default_rng([N, i])')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    given = [f'--{k.replace("_", "-")}' for k in ('severity', 'scale', 'degradation_seed')
             if getattr(args, k) is not None]
    if args.degradation is None and given:
        parser.error(f'{", ".join(given)} only applies to --degradation NAME')
    if not 0 <= args.opacity <= 1:
        parser.error(f'--opacity must be in [0, 1], got {args.opacity}')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def add_output_hook(cfg: Config, out_dir=None, show_dir=None, opacity: float = 0.5) -> None:
    """Add the hook writing prediction masks (``--out``) and panels (``--show-dir``)."""
    if out_dir is None and show_dir is None:
        return
    hooks = [h for h in cfg.get('custom_hooks', []) if h.get('type') != 'CDPredictionWriterHook']
    hooks.append(dict(type='hicd_mm.CDPredictionWriterHook', out_dir=out_dir,
                      show_dir=show_dir, opacity=opacity))
    cfg.custom_hooks = hooks


def use_val_split(cfg: Config) -> None:
    """Make the val dataloader and evaluator the ones ``runner.test()`` uses."""
    for key in ('val_dataloader', 'val_evaluator'):
        if not cfg.get(key):
            fail(TOOL, f'--split val needs {key} in the config')
    cfg.test_dataloader = cfg.val_dataloader
    cfg.test_evaluator = cfg.val_evaluator


def apply_quality_options(cfg: Config, args: argparse.Namespace) -> List[str]:
    """Apply ``--degradation``/``--degraded-dir``; exits with a clear message on bad input.

    Args:
        cfg (Config): The config, modified in place.
        args (argparse.Namespace): The parsed arguments.

    Returns:
        list[str]: Notes on what was changed, for the runner's log.
    """
    try:
        seed = 0 if args.degradation_seed is None else args.degradation_seed
        return apply_test_options(cfg, args.degradation, args.severity, args.scale, seed,
                                  args.degraded_dir)
    except (ValueError, TypeError, KeyError, FileNotFoundError) as err:
        fail(TOOL, err)


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.config):
        fail(TOOL, f'config not found: {args.config!r}')
    if '://' not in args.checkpoint and not osp.isfile(args.checkpoint):
        fail(TOOL, f'checkpoint not found: {args.checkpoint!r}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.split == 'val':
        use_val_split(cfg)
    notes = apply_data_options(cfg, args, ('test_dataloader', ), TOOL)
    notes += apply_quality_options(cfg, args)
    setup_work_dir(cfg, args.config, args.work_dir)
    # Loaded below, strictly: the Runner's own load_from is not strict.
    cfg.load_from = None
    add_output_hook(cfg, args.out, args.show_dir, args.opacity)
    setup_cpu_distributed(cfg)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    for note in notes:
        runner.logger.info(note)
    try:
        load_weights(runner.model, args.checkpoint, role='detector')
    except (CheckpointError, FileNotFoundError) as exc:
        fail(TOOL, exc)
    runner.test()
    del runner
    finish_run()


if __name__ == '__main__':
    main()
