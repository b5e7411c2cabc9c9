"""Run-time set-up shared by the entry points: checkpoint loading and CPU distributed training."""
import codecs
import os
from typing import Optional

import numpy as np
import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import HistoryBuffer

_CHECKPOINT_GLOBALS_REGISTERED = False


def _numpy_reconstruct_globals() -> list:
    """numpy's pickling helpers under both the numpy 1.x and 2.x module paths."""
    core = getattr(np, '_core', None) or np.core
    reconstruct = core.multiarray._reconstruct
    scalar = core.multiarray.scalar
    entries = []
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        entries.append((reconstruct, f'{module}._reconstruct'))
        entries.append((scalar, f'{module}.scalar'))
    return entries


def register_checkpoint_safe_globals() -> None:
    """Allow-list what mmengine checkpoints pickle besides tensors for ``weights_only`` loads.

    torch>=2.6 loads checkpoints with ``weights_only=True``; mmengine's checkpoints also hold the
    message hub (``HistoryBuffer``, which pickles its statistics methods through ``getattr``),
    numpy arrays, scalars and dtypes in ``meta``. They are registered with the official
    :func:`torch.serialization.add_safe_globals`. This widens what ``torch.load`` accepts
    (``getattr`` in particular), so only load checkpoints you trust, as with any checkpoint.
    """
    global _CHECKPOINT_GLOBALS_REGISTERED
    if _CHECKPOINT_GLOBALS_REGISTERED:
        return
    dtype_classes = {type(np.dtype(t)) for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
        np.uint64, np.float16, np.float32, np.float64)}
    torch.serialization.add_safe_globals([
        HistoryBuffer, getattr, codecs.encode, np.ndarray, np.dtype, *dtype_classes,
        *_numpy_reconstruct_globals()
    ])
    _CHECKPOINT_GLOBALS_REGISTERED = True


def setup_cpu_distributed(cfg: Config) -> None:
    """Prepare a config (and the process group) for distributed training without a GPU.

    mmengine's ``init_dist`` always calls ``torch.cuda.set_device`` and its default DDP wrapper
    passes ``device_ids=[LOCAL_RANK]``; both fail on a CPU-only torch. When the launcher is not
    ``'none'`` and no GPU is available, this initialises the gloo process group from the
    launcher's environment (``torchrun`` sets ``RANK``/``WORLD_SIZE``/``MASTER_*``) so the
    runner finds it initialised, and configures the DDP wrapper with ``device_ids=None``.

    Args:
        cfg (Config): The config; ``cfg.launcher`` must already be set.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    wrapper_cfg = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper_cfg['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper_cfg
    if launcher != 'pytorch':
        raise NotImplementedError(f'CPU distributed training supports launcher="pytorch" '
                                  f'(torchrun), got {launcher!r}')
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                                      world_size=int(os.environ['WORLD_SIZE']))


def setup_work_dir(cfg: Config, config_path: str, work_dir: Optional[str]) -> None:
    """CLI ``--work-dir`` > ``work_dir`` in the config > ``./work_dirs/<config name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = os.path.join('./work_dirs',
                                    os.path.splitext(os.path.basename(config_path))[0])


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every hicd_mm module (registering them) and optionally make ``hicd_mm`` the
    default scope, for code that builds components outside a Runner (scripts, notebooks).

    Args:
        init_default_scope (bool): Set the mmengine default scope to ``hicd_mm``.
    """
    import hicd_mm.datasets  # noqa: F401
    import hicd_mm.engine  # noqa: F401
    import hicd_mm.evaluation  # noqa: F401
    import hicd_mm.models  # noqa: F401
    if init_default_scope:
        from mmengine.registry import init_default_scope as set_scope
        set_scope('hicd_mm')
