"""Write the embedded synthetic bi-temporal change-detection dataset (LEVIR-CD layout).

Example (from the repository root)::

    python tools/make_synthetic_cd.py data/synthetic_cd --train 800 --val 100 --test 100
    python tools/make_synthetic_cd.py data/synthetic_cd_rare --change-fraction 0.02

Writes ``OUT_DIR/{train,val,test}/{A,B,label}/*.png`` and ``OUT_DIR/meta.json``. The same
arguments always give byte-identical files. The pairs come from
``hicd_mm.datasets.synthetic.make_synthetic_pair``; this file only writes them (data
preparation, like the other dataset tools). See docs/synthetic.md.
"""
import argparse
import json
import os
import os.path as osp
import re
import shutil
import sys
import time
from typing import Dict, List, Optional

import cv2
import numpy as np

try:
    from hicd_mm.datasets.synthetic import (GENERATOR_VERSION, MAX_CHANGE_FRACTION,
                                            MAX_MISREGISTRATION_PX, MIN_SIZE, change_budget,
                                            check_size, make_synthetic_pair, sample_rng)
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from hicd_mm.datasets.synthetic import (GENERATOR_VERSION, MAX_CHANGE_FRACTION,
                                            MAX_MISREGISTRATION_PX, MIN_SIZE, change_budget,
                                            check_size, make_synthetic_pair, sample_rng)

META_FILE = 'meta.json'
SUBFOLDERS = ('A', 'B', 'label')
_SPLIT_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')


def sample_name(split: str, index: int, count: int) -> str:
    """File stem of a sample, e.g. ``train_0007`` (at least 4 digits, zero padded).

    Args:
        split: Split name.
        index: Sample index.
        count: Number of samples in the split (sets the number of digits).

    Returns:
        The stem without extension.
    """
    digits = max(4, len(str(max(count - 1, 0))))
    return f'{split}_{index:0{digits}d}'


def _check_splits(splits: Dict[str, int]) -> None:
    """Raise if a split name is not a plain folder name or a count is not an int >= 0."""
    if not isinstance(splits, dict) or not splits:
        raise ValueError(f'splits must be a non-empty dict of name -> count, got {splits!r}')
    for name, count in splits.items():
        if not isinstance(name, str) or not _SPLIT_NAME.match(name) or name in ('.', '..'):
            raise ValueError(f'split name {name!r} is not a valid folder name (use letters, '
                             f'digits, "_", "-" or "." and start with a letter or digit)')
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
            raise TypeError(f'count of split {name!r} must be an int, got {count!r}')
        if count < 0:
            raise ValueError(f'count of split {name!r} must be >= 0, got {count}')


def _existing_dataset_parts(out_dir: str, splits: Dict[str, int]) -> List[str]:
    """Paths below ``out_dir`` that belong to a previously written dataset."""
    found = []
    meta_path = osp.join(out_dir, META_FILE)
    names = set(splits)
    if osp.lexists(meta_path):
        found.append(meta_path)
        try:
            with open(meta_path, encoding='utf-8') as f:
                names |= set(json.load(f).get('splits', {}))
        except (OSError, ValueError):
            pass
    for name in sorted(names):
        if not isinstance(name, str) or not _SPLIT_NAME.match(name):
            continue  # never follow odd names from a foreign meta.json
        for sub in SUBFOLDERS:
            path = osp.join(out_dir, name, sub)
            if osp.lexists(path):
                found.append(path)
    return found


def _remove_dataset_parts(out_dir: str, parts: List[str]) -> None:
    """Delete the given dataset files/folders; they all lie inside ``out_dir``."""
    root = osp.realpath(out_dir)
    for path in parts:
        if osp.commonpath([root, osp.realpath(osp.dirname(path))]) != root:
            raise RuntimeError(f'refusing to delete {path!r}: it is outside {out_dir!r}')
        if osp.islink(path) or osp.isfile(path):
            os.remove(path)
        else:
            shutil.rmtree(path)
        parent = osp.dirname(path)
        if parent != out_dir and osp.isdir(parent) and not os.listdir(parent):
            os.rmdir(parent)


def _write_png(path: str, image: np.ndarray) -> None:
    """Write a png file; raise instead of failing silently."""
    if not cv2.imwrite(path, image):
        raise OSError(f'could not write {path}')


def write_synthetic_dataset(out_dir: str, splits: Dict[str, int], size: int = 256,
                            seed: int = 0, overwrite: bool = False, progress: bool = True,
                            change_fraction: Optional[float] = None) -> dict:
    """Write a synthetic change-detection dataset in the LEVIR-CD folder layout.

    Files: ``out_dir/{split}/A/{split}_{i:04d}.png``, ``.../B/...`` and ``.../label/...``
    (labels 0/255) plus ``out_dir/meta.json`` describing the parameters. Sample ``i`` of
    split ``s`` is generated from :func:`sample_rng` ``(seed, s, i)`` only.

    Args:
        out_dir: Output folder (created if needed).
        splits: Split name -> number of samples, e.g. ``{'train': 800, 'val': 100}``. Names
            must be valid folder names.
        size: Side length of the square images in pixels (>= 32).
        seed: Dataset seed (non-negative int).
        overwrite: Replace a dataset already written in ``out_dir``. Only the dataset's own
            ``{split}/A|B|label`` folders and ``meta.json`` are deleted.
        progress: Print progress lines.
        change_fraction: Target mean fraction of changed pixels (e.g. 0.02), or None for the
            generator's default mix; see ``hicd_mm.datasets.synthetic.change_budget``.
            Recorded in ``meta.json`` when given.

    Returns:
        Summary dict with ``out_dir``, ``size``, ``seed``, ``generator_version``,
        ``elapsed_s`` and ``splits``: per split ``count``, ``changed_fraction`` (changed
        pixels / all pixels) and ``unchanged_samples`` (samples without any change).

    Raises:
        FileExistsError: ``out_dir`` already holds a dataset and ``overwrite`` is False.
        ValueError, TypeError: Invalid arguments.
    """
    check_size(size)
    _check_splits(splits)
    change_budget(change_fraction)  # raises on a bad value before anything is written
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}')
    out_dir = osp.abspath(out_dir)
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise FileExistsError(f'{out_dir} exists and is not a folder')
    existing = _existing_dataset_parts(out_dir, splits) if osp.isdir(out_dir) else []
    if existing and not overwrite:
        raise FileExistsError(
            f'{out_dir} already contains a dataset ({", ".join(existing[:3])}'
            f'{", ..." if len(existing) > 3 else ""}); pass overwrite=True (--overwrite) to '
            f'replace it or choose another folder')
    if existing:
        _remove_dataset_parts(out_dir, existing)

    start = time.perf_counter()
    stats = {split: _write_split(out_dir, split, count, size, seed, progress, change_fraction)
             for split, count in splits.items()}
    _write_meta(out_dir, size, seed, stats, change_fraction)
    return dict(out_dir=out_dir, size=int(size), seed=int(seed),
                generator_version=GENERATOR_VERSION,
                elapsed_s=round(time.perf_counter() - start, 3), splits=stats)


def _write_split(out_dir: str, split: str, count: int, size: int, seed: int, progress: bool,
                 change_fraction: Optional[float]) -> dict:
    """Generate and write the samples of one split; returns its statistics."""
    folders = [osp.join(out_dir, split, sub) for sub in SUBFOLDERS]
    for folder in folders:
        os.makedirs(folder, exist_ok=True)
    changed_pixels, unchanged_samples = 0, 0
    step = max(1, count // 10)
    start = time.perf_counter()
    for i in range(count):
        img_a, img_b, label = make_synthetic_pair(size, sample_rng(seed, split, i),
                                                  change_fraction)
        name = sample_name(split, i, count) + '.png'
        for folder, array in zip(folders, (img_a, img_b, label)):
            _write_png(osp.join(folder, name), array)
        n_changed = cv2.countNonZero(label)
        changed_pixels += n_changed
        unchanged_samples += n_changed == 0
        if progress and ((i + 1) % step == 0 or i + 1 == count):
            print(f'[synthetic] {split}: {i + 1}/{count} pairs '
                  f'({time.perf_counter() - start:.1f} s)', flush=True)
    return dict(count=int(count),
                changed_fraction=changed_pixels / (count * size * size) if count else 0.0,
                unchanged_samples=int(unchanged_samples))


def _write_meta(out_dir: str, size: int, seed: int, stats: Dict[str, dict],
                change_fraction: Optional[float]) -> None:
    """Write ``meta.json``: generator, parameters and per-split statistics."""
    meta = dict(
        generator='hicd_mm.datasets.synthetic', generator_version=GENERATOR_VERSION,
        seed=int(seed), size=int(size), splits=stats,
        layout='LEVIR-CD: {split}/A, {split}/B, {split}/label, png files',
        labels='0 = unchanged, 255 = changed (new or demolished building footprint, cleared '
               'ground); shadows and pseudo-changes are not labelled',
        geometry=f'labels are aligned with A; B is misregistered by at most '
                 f'{MAX_MISREGISTRATION_PX:g} px',
        sample_seed='numpy SeedSequence([seed, crc32(split name), index])')
    if change_fraction is not None:  # absent for the default mix (keeps old files identical)
        meta['change_fraction'] = float(change_fraction)
    with open(osp.join(out_dir, META_FILE), 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=2)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {value}')
    return value


def image_size(text: str) -> int:
    """argparse type: an image side length >= MIN_SIZE."""
    value = int(text)
    if value < MIN_SIZE:
        raise argparse.ArgumentTypeError(f'must be >= {MIN_SIZE}, got {value}')
    return value


def change_fraction(text: str) -> float:
    """argparse type: a fraction of changed pixels in [0, MAX_CHANGE_FRACTION]."""
    value = float(text)
    if not 0.0 <= value <= MAX_CHANGE_FRACTION:
        raise argparse.ArgumentTypeError(
            f'must be in [0, {MAX_CHANGE_FRACTION}] (a fraction, e.g. 0.02), got {value}')
    return value


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate a procedural bi-temporal change-detection dataset that looks '
                    'like aerial imagery (parcels, roads, buildings with shadows, trees).')
    parser.add_argument('out_dir', help='output folder (LEVIR-CD layout)')
    parser.add_argument('--train', type=non_negative_int, default=800,
                        help='number of training pairs (default: 800)')
    parser.add_argument('--val', type=non_negative_int, default=100,
                        help='number of validation pairs (default: 100)')
    parser.add_argument('--test', type=non_negative_int, default=100,
                        help='number of test pairs (default: 100)')
    parser.add_argument('--size', type=image_size, default=256,
                        help='side length of the square images in pixels (default: 256)')
    parser.add_argument('--seed', type=non_negative_int, default=0,
                        help='dataset seed (default: 0)')
    parser.add_argument('--change-fraction', type=change_fraction, default=None,
                        help='target mean fraction of changed pixels, e.g. 0.02 for rare '
                             'changes (default: the generator\'s mix, a budget of 8 %%)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a dataset already written in OUT_DIR (only its '
                             'split/A|B|label folders and meta.json are deleted)')
    parser.add_argument('--quiet', action='store_true', help='do not print progress lines')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    splits = {'train': args.train, 'val': args.val, 'test': args.test}
    start = time.perf_counter()
    try:
        summary = write_synthetic_dataset(args.out_dir, splits, size=args.size, seed=args.seed,
                                          overwrite=args.overwrite, progress=not args.quiet,
                                          change_fraction=args.change_fraction)
    except FileExistsError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    total = sum(s['count'] for s in summary['splits'].values())
    print(f'Wrote {total} pairs of {args.size}x{args.size} to {summary["out_dir"]} '
          f'(seed {args.seed}) in {elapsed:.1f} s')
    for name, stats in summary['splits'].items():
        print(f'  {name:>5}: {stats["count"]:5d} pairs, changed pixels '
              f'{100 * stats["changed_fraction"]:5.2f} %, {stats["unchanged_samples"]} pairs '
              f'without change')
    return 0


if __name__ == '__main__':
    sys.exit(main())
