"""Benchmark the synthetic change-detection generator on one core.

Measures, with OpenCV limited to one thread (``cv2.setNumThreads(1)``) and no torch work:

* in memory: ``make_synthetic_pair`` for ``--n`` pairs (each with its own seeded generator,
  exactly as the dataset writer does);
* to disk: the same pairs written as png files (A, B, label) into a temporary folder with
  ``write_synthetic_dataset`` of ``tools/make_synthetic_cd.py`` (generation + png encoding +
  file writes).

It prints pairs per second, the extrapolated time for 1000 pairs and the ratio of that time
to the 60 s target (< 1 means faster than the target), plus the changed-pixel statistics.

Usage::

    python tools/benchmark/bench_synthetic.py                 # 1000 pairs of 256 x 256
    python tools/benchmark/bench_synthetic.py --n 200 --size 512
"""
import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault('OMP_NUM_THREADS', '1')  # before numpy/cv2 are imported

import cv2  # noqa: E402
import numpy as np  # noqa: E402

TOOLS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    from hicd_mm.datasets import synthetic  # noqa: E402
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, os.path.dirname(TOOLS_DIR))
    from hicd_mm.datasets import synthetic  # noqa: E402
sys.path.insert(0, TOOLS_DIR)  # the dataset writer is the tool tools/make_synthetic_cd.py
from make_synthetic_cd import write_synthetic_dataset  # noqa: E402

TARGET_S_PER_1000 = 60.0


def bench_in_memory(n: int, size: int, seed: int) -> tuple:
    """Generate ``n`` pairs in memory; returns (seconds, changed fractions)."""
    fractions = np.empty(n)
    start = time.perf_counter()
    for i in range(n):
        _, _, label = synthetic.make_synthetic_pair(size, synthetic.sample_rng(seed, 'bench', i))
        fractions[i] = cv2.countNonZero(label) / label.size
    return time.perf_counter() - start, fractions


def bench_to_disk(n: int, size: int, seed: int) -> float:
    """Generate and write ``n`` pairs into a temporary folder; returns seconds."""
    with tempfile.TemporaryDirectory(prefix='bench_synthetic_') as tmp:
        start = time.perf_counter()
        write_synthetic_dataset(os.path.join(tmp, 'data'), {'bench': n}, size=size, seed=seed,
                                progress=False)
        return time.perf_counter() - start


def report(name: str, seconds: float, n: int) -> None:
    per_1000 = seconds / n * 1000
    print(f'{name:<10} {n:5d} pairs in {seconds:7.2f} s = {n / seconds:6.1f} pairs/s, '
          f'{1000 * seconds / n:6.2f} ms/pair; 1000 pairs: {per_1000:6.1f} s '
          f'= {per_1000 / TARGET_S_PER_1000:.2f} x the {TARGET_S_PER_1000:.0f} s target')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--n', type=int, default=1000, help='number of pairs (default 1000)')
    parser.add_argument('--size', type=int, default=256, help='image size (default 256)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    print(f'OpenCV {cv2.__version__} (threads: {cv2.getNumThreads()}), numpy {np.__version__}, '
          f'generator {synthetic.GENERATOR_VERSION}, {args.size}x{args.size}')
    synthetic.make_synthetic_pair(args.size, synthetic.sample_rng(args.seed, 'warmup', 0))
    seconds, fractions = bench_in_memory(args.n, args.size, args.seed)
    report('in memory', seconds, args.n)
    report('to disk', bench_to_disk(args.n, args.size, args.seed), args.n)
    print(f'changed pixels: mean {100 * fractions.mean():.2f} %, median '
          f'{100 * np.median(fractions):.2f} %, max {100 * fractions.max():.2f} %; '
          f'pairs without change: {100 * np.mean(fractions == 0):.1f} %')
    return 0


if __name__ == '__main__':
    sys.exit(main())
