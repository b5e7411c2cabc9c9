"""Write the embedded synthetic bi-temporal change-detection dataset (LEVIR-CD layout).

Example (from the repository root)::

    python tools/make_synthetic_cd.py data/synthetic_cd --train 800 --val 100 --test 100

Writes ``OUT_DIR/{train,val,test}/{A,B,label}/*.png`` and ``OUT_DIR/meta.json``. The same
arguments always give byte-identical files. See docs/synthetic.md.
"""
import argparse
import os.path as osp
import sys
import time

try:
    from hicd_mm.datasets.synthetic import MIN_SIZE, write_synthetic_dataset
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from hicd_mm.datasets.synthetic import MIN_SIZE, write_synthetic_dataset


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
                                          overwrite=args.overwrite, progress=not args.quiet)
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
