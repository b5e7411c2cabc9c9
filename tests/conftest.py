"""Shared fixtures and helpers: tiny change-detection folders written on the fly, the tools run
as subprocesses or loaded as modules, and one tiny teacher trained once per pytest session."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys
from types import ModuleType
from typing import List, Optional, Tuple

import cv2
import numpy as np
import pytest

from hicd_mm.utils import register_all_modules

register_all_modules(init_default_scope=True)

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# The smallest detector config (FC-Siam-diff, CPU schedule); the tool tests shrink it further.
TINY_CFG = osp.join(REPO_ROOT, 'configs/fc_siam_diff/fc_siam_diff_cpu-1k_synthetic.py')
# The tools' helper package (tools/hicd_tools), importable as it is for the scripts.
sys.path.insert(0, osp.join(REPO_ROOT, 'tools'))


def write_pair(root: str, stem: str, size=(64, 64), rng=None, label_values=(0, 255),
               a_dir='A', b_dir='B', label_dir='label', img_ext='.png', label_ext='.png'):
    """Write one random pair and a random 0/255 label below ``root``."""
    rng = rng or np.random.default_rng(0)
    h, w = size
    for sub in (a_dir, b_dir):
        os.makedirs(osp.join(root, sub, osp.dirname(stem)), exist_ok=True)
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        assert cv2.imwrite(osp.join(root, sub, stem + img_ext), img)
    if label_dir:
        os.makedirs(osp.join(root, label_dir, osp.dirname(stem)), exist_ok=True)
        label = rng.choice(np.array(label_values, dtype=np.uint8), size=(h, w))
        assert cv2.imwrite(osp.join(root, label_dir, stem + label_ext), label)


def make_levir_split(root: str, split: str, n: int, size=(64, 64), seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    for i in range(n):
        write_pair(osp.join(root, split), f'{split}_{i:03d}', size, rng)
    return root


@pytest.fixture
def levir_root(tmp_path):
    """A LEVIR-CD-style folder with 4 train, 2 val and 2 test pairs of 64x64."""
    root = str(tmp_path / 'levir')
    for split, n in (('train', 4), ('val', 2), ('test', 2)):
        make_levir_split(root, split, n, seed=len(split))
    return root


def snapshot(folder: str) -> dict:
    """Path -> (size, mtime_ns) of every file below ``folder``."""
    out = {}
    for dirpath, _, files in os.walk(folder):
        for f in files:
            p = osp.join(dirpath, f)
            st = os.stat(p)
            out[p] = (st.st_size, st.st_mtime_ns)
    return out


def load_tool(path: str) -> ModuleType:
    """Import a script below ``tools/`` as a module (``tools/`` is not a package).

    Args:
        path: Path relative to the repository root, e.g. ``'tools/make_synthetic_cd.py'``.

    Returns:
        The executed module.
    """
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO_ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_synthetic_dataset(out_dir: str, splits: dict, **kwargs) -> dict:
    """``tools/make_synthetic_cd.py``'s writer (quiet unless ``progress=True`` is given)."""
    kwargs.setdefault('progress', False)
    writer = load_tool('tools/make_synthetic_cd.py')
    return writer.write_synthetic_dataset(out_dir, splits, **kwargs)


def tiny_options(data_root: str, max_iters: int, interval: int = 2,
                 sched_end: Optional[int] = None) -> List[str]:
    """``--cfg-options`` that shrink ``TINY_CFG`` to a few iterations on ``data_root``."""
    opts = [
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        'train_dataloader.batch_size=2',
        'train_dataloader.dataset.pipeline.2.crop_size=[32,32]',
        f'train_cfg.max_iters={max_iters}', f'train_cfg.val_interval={interval}',
        f'default_hooks.checkpoint.interval={interval}',
        'default_hooks.checkpoint.max_keep_ckpts=5', 'default_hooks.logger.interval=1',
        'param_scheduler.0.end=2', 'param_scheduler.1.begin=2',
        f'param_scheduler.1.end={sched_end or max(max_iters, 3)}',
    ]
    for loader in ('train', 'val', 'test'):
        opts += [f'{loader}_dataloader.num_workers=0',
                 f'{loader}_dataloader.persistent_workers=False']
    return opts


def run_tool(args: List[str], env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Run ``python *args`` from the repository root; fail the test on a non-zero exit."""
    proc = subprocess.run([sys.executable] + args, cwd=REPO_ROOT, capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def train(work_dir: str, data_root: str, max_iters: int, *extra: str,
          sched_end: Optional[int] = None) -> subprocess.CompletedProcess:
    """Train ``TINY_CFG`` with ``tools/train.py`` for ``max_iters`` iterations."""
    return run_tool(['tools/train.py', TINY_CFG, '--work-dir', work_dir, *extra, '--cfg-options',
                     *tiny_options(data_root, max_iters, sched_end=sched_end)])


@pytest.fixture(scope='session')
def tiny_teacher(tmp_path_factory) -> Tuple[str, str]:
    """``TINY_CFG`` trained once per session for 2 iterations on random 64x64 pairs.

    Returns:
        ``(data_root, checkpoint)``: a LEVIR-CD-style root (4 train, 2 val, 2 test pairs) and
        the ``iter_2.pth`` checkpoint. Treat both as read-only: other tests share them.
    """
    base = tmp_path_factory.mktemp('tiny_teacher')
    root = str(base / 'levir')
    for split, n in (('train', 4), ('val', 2), ('test', 2)):
        make_levir_split(root, split, n, seed=len(split))
    work = str(base / 'work')
    train(work, root, 2)
    return root, osp.join(work, 'iter_2.pth')
