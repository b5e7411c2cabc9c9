"""What ``tools/train.py`` and ``tools/test.py`` share: data root, data check, exit codes."""
import argparse
import copy
import sys
from typing import List, NoReturn, Sequence

from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.utils import ProgressBar

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# Exit status for bad input (as argparse): a missing file, a bad option or bad data.
BAD_INPUT = 2


def fail(tool: str, message: object) -> NoReturn:
    """Print ``<tool>: error: <message>`` on stderr and exit with :data:`BAD_INPUT`."""
    if isinstance(message, KeyError) and message.args:
        message = message.args[0]
    print(f'{tool}: error: {message}', file=sys.stderr, flush=True)
    sys.exit(BAD_INPUT)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data-root`` and ``--check-data``."""
    parser.add_argument('--data-root', metavar='DIR',
                        help='dataset root for every dataloader of the config (train, val and '
                        'test); --cfg-options data_root=DIR does the same')
    parser.add_argument('--check-data', action='store_true',
                        help='decode every image and label of the datasets used (sizes, bit '
                        'depth, bands, label values) before the run; stop at the first bad '
                        'file with one line naming it')


def _datasets(dataset_cfg: dict) -> List[dict]:
    """The leaf dataset configs of a (possibly wrapped or concatenated) dataset config."""
    if 'datasets' in dataset_cfg:
        return [d for sub in dataset_cfg['datasets'] for d in _datasets(sub)]
    if 'dataset' in dataset_cfg:
        return _datasets(dataset_cfg['dataset'])
    return [dataset_cfg]


def set_data_root(cfg: Config, data_root: str) -> List[str]:
    """Point every dataset of every dataloader of ``cfg`` at ``data_root``.

    Args:
        cfg (Config): The config, modified in place.
        data_root (str): The dataset root (e.g. ``data/synthetic_cd``).

    Returns:
        list[str]: Notes on what was changed, for the log.
    """
    changed = []
    for key in LOADERS:
        loader = cfg.get(key)
        if not loader or not loader.get('dataset'):
            continue
        for dataset in _datasets(loader['dataset']):
            dataset['data_root'] = data_root
        changed.append(key)
    cfg.data_root = data_root
    return [f'data_root = {data_root!r} for {", ".join(changed)}'] if changed else []


def check_data(cfg: Config, loaders: Sequence[str], quiet: bool = False) -> None:
    """Build the datasets of ``loaders`` and run their loading steps on every sample.

    Only the pipeline's loading transforms (types named ``*Load*``) run, so sizes, bit depth,
    bands and label values are checked without the augmentations.

    Args:
        cfg (Config): The config.
        loaders (Sequence[str]): Dataloader keys, e.g. ``('test_dataloader', )``.
        quiet (bool): No progress bar.

    Raises:
        ValueError | FileNotFoundError | KeyError: The first problem, naming the file.
    """
    from hicd_mm.registry import DATASETS
    scope = cfg.get('default_scope', 'hicd_mm')
    for key in loaders:
        loader = cfg.get(key)
        if not loader or not loader.get('dataset'):
            continue
        for dataset_cfg in _datasets(loader['dataset']):
            dataset_cfg = copy.deepcopy(dataset_cfg)
            dataset_cfg['lazy_init'] = False
            with DefaultScope.overwrite_default_scope(scope):
                dataset = DATASETS.build(dataset_cfg)
            loading = [t for t in dataset.pipeline.transforms if 'Load' in type(t).__name__]
            bar = None if quiet else ProgressBar(len(dataset), file=sys.stderr)
            for index in range(len(dataset)):
                results = dataset.get_data_info(index)
                try:
                    for transform in loading:
                        results = transform(results)
                except Exception:
                    if bar is not None:
                        print(file=sys.stderr)  # end the progress bar's line
                    raise
                if bar is not None:
                    bar.update()
            if not quiet:
                print(f'\n{key}: {len(dataset)} samples checked', file=sys.stderr, flush=True)


def apply_data_options(cfg: Config, args: argparse.Namespace, loaders: Sequence[str],
                       tool: str) -> List[str]:
    """``--data-root`` then ``--check-data``; bad data ends the tool with one line.

    ``--cfg-options data_root=X`` (what users try first; mmengine alone would not pass it on to
    the dataloaders) acts as ``--data-root X``.

    Args:
        cfg (Config): The config, modified in place.
        args (argparse.Namespace): The tool's arguments (``data_root``, ``check_data``,
            ``cfg_options``).
        loaders (Sequence[str]): The dataloaders ``--check-data`` checks.
        tool (str): The tool's name, for error lines.

    Returns:
        list[str]: Notes for the log.
    """
    notes: List[str] = []
    data_root = getattr(args, 'data_root', None)
    options = getattr(args, 'cfg_options', None) or {}
    if data_root is None and 'data_root' in options:
        data_root = options['data_root']
    if data_root:
        notes += set_data_root(cfg, data_root)
    if getattr(args, 'check_data', False):
        try:
            check_data(cfg, loaders)
        except (ValueError, FileNotFoundError, KeyError, TypeError) as exc:
            fail(tool, exc)
    return notes


def finish_run() -> None:
    """End a run cleanly: join the dataloader workers, then leave the process group.

    Call it after the last reference to the runner is dropped. Without it, a rank could exit
    while gloo threads or persistent workers were still alive and abort at interpreter exit
    ("terminate called without an active exception", exit status 1 after a complete run).
    """
    import gc

    import torch.distributed as dist
    gc.collect()  # persistent DataLoader workers are joined when their iterators are freed
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
