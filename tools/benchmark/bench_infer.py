"""Benchmark sliding-window inference on whole pairs: pairs per second at 1024x1024.

Builds the detector of a config (default: the CPU FC-Siam-diff, random weights: speed does not
depend on them) and times :func:`hicd_mm.apis.infer_change_mask` on a random pair, for each
window batch size, after ``--warmup`` untimed calls. Each row reports the median and the best
of ``--repeats`` timed calls (the best is the least disturbed by other processes) and the
number of windows per pair.

Usage::

    python tools/benchmark/bench_infer.py
    python tools/benchmark/bench_infer.py --size 2048 --batch-sizes 1 4 8 --repeats 5
    python tools/benchmark/bench_infer.py --config configs/bit/CONFIG.py --device cuda
"""
import argparse
import logging
import os
import os.path as osp
import statistics
import sys
import time
import warnings
from typing import Dict, List

import numpy as np
import torch
from mmengine.logging import MMLogger

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
try:
    from hicd_mm.apis import infer_change_mask, init_change_detector
    from hicd_mm.apis.inference import tile_boxes
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, REPO_ROOT)
    from hicd_mm.apis import infer_change_mask, init_change_detector
    from hicd_mm.apis.inference import tile_boxes

DEFAULT_CONFIG = osp.join(REPO_ROOT, 'configs/fc_siam_diff/fc_siam_diff_cpu-1k_synthetic.py')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='detector or HiCD config')
    parser.add_argument('--size', type=int, default=1024, help='square pair size')
    parser.add_argument('--window', type=int, default=256)
    parser.add_argument('--stride', type=int, default=192)
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 4])
    parser.add_argument('--repeats', type=int, default=3, help='timed calls per batch size')
    parser.add_argument('--warmup', type=int, default=1, help='untimed calls per batch size')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch default / OMP_NUM_THREADS)')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args()


def time_calls(model: torch.nn.Module, pair: tuple, batch_size: int,
               args: argparse.Namespace) -> List[float]:
    """Wall-clock seconds of ``args.repeats`` inference calls after the warm-up calls."""
    for _ in range(args.warmup):
        infer_change_mask(model, *pair, args.window, args.stride, batch_size)
    times = []
    for _ in range(args.repeats):
        if args.device.startswith('cuda'):
            torch.cuda.synchronize()
        start = time.perf_counter()
        infer_change_mask(model, *pair, args.window, args.stride, batch_size)
        if args.device.startswith('cuda'):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def table(rows: List[Dict], args: argparse.Namespace, windows: int) -> str:
    """A markdown table of the measurements."""
    lines = [f'{osp.basename(args.config)}, {args.size}x{args.size} pair, window {args.window}, '
             f'stride {args.stride} ({windows} windows), {torch.get_num_threads()} threads, '
             f'{args.device}, {args.repeats} repeats', '',
             '| batch size | median s/pair | best s/pair | pairs/s (best) |',
             '| ---: | ---: | ---: | ---: |']
    for r in rows:
        lines.append(f"| {r['batch_size']} | {r['median']:.3f} | {r['best']:.3f} | "
                     f"{1 / r['best']:.3f} |")
    return '\n'.join(lines)


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings('ignore')
    MMLogger.get_current_instance().setLevel(logging.ERROR)
    torch.manual_seed(0)
    model = init_change_detector(args.config, None, device=args.device)
    rng = np.random.default_rng(0)
    pair = tuple(rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
                 for _ in range(2))
    rows = []
    for batch_size in args.batch_sizes:
        times = time_calls(model, pair, batch_size, args)
        rows.append(dict(batch_size=batch_size, median=statistics.median(times),
                         best=min(times)))
        print(f'batch size {batch_size}: {[round(t, 3) for t in times]} s', file=sys.stderr,
              flush=True)
    windows = len(tile_boxes(args.size, args.size, args.window, args.stride))
    print(table(rows, args, windows))
    print(f"\nload average: {'/'.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == '__main__':
    main()
