"""Shared fixtures: tiny change-detection folders written on the fly."""
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest

from hicd_mm.utils import register_all_modules

register_all_modules(init_default_scope=True)

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
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
