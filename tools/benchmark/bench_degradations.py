"""Benchmark the degradation transforms on one core: pairs per second at 256^2 and 1024^2.

Each measurement runs the registered ``DegradeImage`` transform exactly as a training pipeline
does (``keep_hq=True``, fresh random parameters on every call: a new generator, the HQ copy of
the pair, the degradation of B) on a synthetic aerial pair, with OpenCV, OpenMP and BLAS
limited to one thread. Every configuration is timed ``--repeat`` times for about ``--seconds``
each and the best run is reported (the least disturbed by other processes).

The target of the project is >= 150 pairs/s for the multi-degradation at 256^2; the ratio
measured / target is printed for ``multi x4`` and ``multi x8``.

Usage::

    python tools/benchmark/bench_degradations.py
    python tools/benchmark/bench_degradations.py --sizes 256 --seconds 2 --json bench.json
"""
import argparse
import json
import os
import sys
import time

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, '1')  # before numpy/cv2 are imported

import cv2  # noqa: E402
import numpy as np  # noqa: E402

try:
    from hicd_mm.datasets.transforms import DegradeImage  # noqa: E402
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    from hicd_mm.datasets.transforms import DegradeImage  # noqa: E402
from hicd_mm.datasets.degradations import SINGLE_NAMES  # noqa: E402

TARGET_PAIRS_PER_S = 150.0


def configurations():
    """(label, DegradeImage kwargs) of every benchmarked transform."""
    rows = [('resolution x4 bicubic', dict(degradation='resolution', scale=4)),
            ('resolution x4-x8 area', dict(degradation='resolution', scale=(4, 8),
                                           kernel='area'))]
    rows += [(f'{name} sev 3', dict(degradation=name, severity=3)) for name in SINGLE_NAMES]
    rows += [('single (all 9) sev 1-5', dict(degradation=list(SINGLE_NAMES),
                                             severity=[1, 2, 3, 4, 5])),
             ('multi x4', dict(degradation='multi', scale=4)),
             ('multi x8', dict(degradation='multi', scale=8))]
    return rows


def make_pair(size: int):
    try:
        from hicd_mm.datasets.synthetic import make_synthetic_pair
        img_a, img_b, _ = make_synthetic_pair(size, np.random.default_rng(0))
    except ImportError:  # a smooth random texture
        rng = np.random.default_rng(0)
        coarse = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        img_a = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
        img_b = img_a[::-1].copy()
    return img_a, img_b


def pairs_per_second(transform, pair, seconds: float, repeat: int) -> float:
    """Best of ``repeat`` runs of about ``seconds`` each."""
    img_a, img_b = pair
    transform(dict(img=[img_a, img_b], sample_idx=0))  # warm-up
    best = 0.0
    for _ in range(repeat):
        n, start = 0, time.perf_counter()
        while True:
            transform(dict(img=[img_a, img_b], sample_idx=n))
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds and n >= 5:
                break
        best = max(best, n / elapsed)
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[256, 1024])
    p.add_argument('--seconds', type=float, default=1.0, help='time per run')
    p.add_argument('--repeat', type=int, default=3, help='runs per configuration (best kept)')
    p.add_argument('--only', nargs='+', help='labels containing any of these words')
    p.add_argument('--json', help='also write the numbers to this JSON file')
    args = p.parse_args(argv)
    cv2.setNumThreads(1)
    np.random.seed(0)
    rows = configurations()
    if args.only:
        rows = [r for r in rows if any(w in r[0] for w in args.only)]
    pairs = {s: make_pair(s) for s in args.sizes}
    results = {}
    header = f'{"transform":<26}' + ''.join(f'{f"{s}x{s} pairs/s":>20}' for s in args.sizes)
    print(f'DegradeImage (keep_hq=True, training mode), one core, best of {args.repeat} x '
          f'{args.seconds:g} s')
    print(header)
    print('-' * len(header))
    for label, kwargs in rows:
        t = DegradeImage(keep_hq=True, **kwargs)
        results[label] = {str(s): pairs_per_second(t, pairs[s], args.seconds, args.repeat)
                          for s in args.sizes}
        print(f'{label:<26}' + ''.join(f'{results[label][str(s)]:>20.1f}' for s in args.sizes),
              flush=True)
    if 256 in args.sizes:
        for label in ('multi x4', 'multi x8'):
            if label in results:
                v = results[label]['256']
                print(f'{label} at 256x256: {v:.1f} pairs/s = {v / TARGET_PAIRS_PER_S:.2f} x '
                      f'the target of {TARGET_PAIRS_PER_S:.0f} pairs/s')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(unit='pairs/s', one_core=True, repeat=args.repeat,
                           seconds=args.seconds, results=results), f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
