"""Detect changes between two images of any size and write the binary change mask.

Examples::

    python tools/infer.py configs/fc_siam_diff/fc_siam_diff_cpu-1k_synthetic.py \
        work_dirs/fc_siam_diff_cpu-1k_synthetic/iter_1000.pth A.png B.png change.png
    python tools/infer.py CONFIG CHECKPOINT A.tif B.tif change.tif --window 512 --stride 384

A ``.png`` OUT holds 0 (no change) / 255 (change); a ``.tif``/``.tiff`` OUT holds uint8 0 / 1
with the georeference of A. ``--overlay FILE.png`` also writes image A with the changes blended
over it. Progress (windows, elapsed time, ETA) is shown on stderr. Images must be 8-bit; a grey
image next to a colour one is refused unless ``--allow-grey``. See docs/inference.md.
"""
import argparse
import os
import os.path as osp
import sys
import time
from typing import List, Optional

import cv2
from mmengine.logging import print_log

try:
    import hicd_mm  # noqa: F401  (registers components, checkpoint safe globals)
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from hicd_mm.apis import (check_output_path, infer_change_mask, init_change_detector,  # noqa
                          load_pair, write_mask)
from hicd_mm.apis.inference import check_tiling  # noqa: E402
from hicd_mm.visualization import overlay_changes  # noqa: E402

# Bad input (InferenceInputError is a ValueError), missing or existing files, missing tifffile.
EXPECTED_ERRORS = (ValueError, FileNotFoundError, FileExistsError, ImportError)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments of the tool."""
    parser = argparse.ArgumentParser(
        description='Change detection on a pair of images of any size (sliding windows)')
    parser.add_argument('config', help='detector config, or a HiCD config (its student)')
    parser.add_argument('checkpoint', help='detector or HiCD distiller checkpoint')
    parser.add_argument('a', help='image of the first date (PNG/JPG or GeoTIFF)')
    parser.add_argument('b', help='image of the second date, same size and grid as A')
    parser.add_argument('out', help='output mask: .png (0/255) or .tif/.tiff (0/1, '
                        'georeferenced like A)')
    parser.add_argument('--device', default='cpu', help='torch device (default: cpu)')
    parser.add_argument('--window', type=int, default=256, help='window size in pixels')
    parser.add_argument('--stride', type=int, default=192,
                        help='step between windows (<= window; overlaps are averaged)')
    parser.add_argument('--batch-size', type=int, default=4, help='windows per forward pass')
    parser.add_argument('--resample', action='store_true',
                        help='resize B to the size of A (bilinear) when their sizes differ')
    parser.add_argument('--allow-grey', action='store_true',
                        help='replicate a grey (1-band) image whose partner is in colour')
    parser.add_argument('--overlay', metavar='PNG',
                        help='also write image A with the changes blended over it (red)')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='opacity of the changes in --overlay')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace OUT (and --overlay) if it exists')
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """Check the arguments and inputs, run the detector and write the mask."""
    check_tiling(args.window, args.stride, args.batch_size)
    check_output_path(args.out, args.overwrite, inputs=(args.a, args.b))
    if args.overlay:
        if osp.splitext(args.overlay)[1].lower() != '.png':
            raise ValueError(f'--overlay {args.overlay}: expected a .png file')
        if osp.abspath(args.overlay) == osp.abspath(args.out):
            raise ValueError('--overlay must differ from OUT')
        check_output_path(args.overlay, args.overwrite, inputs=(args.a, args.b))
    if not 0 <= args.opacity <= 1:
        raise ValueError(f'--opacity must be in [0, 1], got {args.opacity}')
    img_a, img_b, geo = load_pair(args.a, args.b, resample=args.resample,
                                  allow_grey=args.allow_grey)
    model = init_change_detector(args.config, args.checkpoint, device=args.device)
    start = time.perf_counter()
    mask = infer_change_mask(model, img_a, img_b, args.window, args.stride, args.batch_size,
                             progress=not args.no_progress)
    seconds = time.perf_counter() - start
    write_mask(args.out, mask, geo)
    if args.overlay:
        os.makedirs(osp.dirname(osp.abspath(args.overlay)), exist_ok=True)
        if not cv2.imwrite(args.overlay, overlay_changes(img_a, mask, opacity=args.opacity)):
            raise ValueError(f'cannot write the overlay to {args.overlay}')
    print_log(f'{args.out}: {mask.shape[1]}x{mask.shape[0]} mask, {100 * (mask > 0).mean():.2f}% '
              f'changed, inference {seconds:.2f} s', logger='current')


def main(argv: Optional[List[str]] = None) -> int:
    """Run the tool; returns 0 on success and 2 (message on stderr) for bad input."""
    args = parse_args(argv)
    try:
        run(args)
    except EXPECTED_ERRORS as exc:
        print(f'infer.py: error: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
