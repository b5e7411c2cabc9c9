"""Render one image pair under every degradation and severity as a grid PNG.

Examples::

    # the figure of docs/degradations.md (a synthetic 256x256 pair, seed 0)
    python tools/render_degradations.py --out docs/figures/degradations.png
    # a real pair
    python tools/render_degradations.py --a data/LEVIR-CD/test/A/test_1.png \\
        --b data/LEVIR-CD/test/B/test_1.png --out levir_degradations.png --crop 160

Rows: the clean pair, ``resolution`` at factors 2/3/4/6/8, the nine single degradations at
severities 1-5, and ``multi`` at sf 4 and sf 8 (five random draws each). Every tile is B
degraded at full size and then cropped (the centre ``--crop`` pixels, shown 1:1 so blur,
noise and JPEG blocks stay visible). Tile ``j`` of a row uses ``default_rng([seed, j])``.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from hicd_mm.datasets.degradations import SINGLE_NAMES, degradation_rng, degrade

RESOLUTION_SCALES = (2, 3, 4, 6, 8)
LABEL_W = 150
CAPTION_H = 16


def rows_to_render() -> List[Tuple[str, List[Tuple[str, dict]]]]:
    """(row title, [(column caption, degrade() options)]) for every row."""
    rows = [('resolution', [(f'x{s}', dict(degradation='resolution', scale=s))
                            for s in RESOLUTION_SCALES])]
    for name in SINGLE_NAMES:
        rows.append((name, [(f'severity {k}', dict(degradation=name, severity=k))
                            for k in range(1, 6)]))
    for sf in (4, 8):
        rows.append((f'multi sf={sf}', [(f'draw {j + 1}', dict(degradation='multi', scale=sf))
                                        for j in range(5)]))
    return rows


def _crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    size = min(size, h, w)
    y, x = (h - size) // 2, (w - size) // 2
    return img[y:y + size, x:x + size]


def _text(canvas: np.ndarray, text: str, x: int, y: int, scale: float = 0.4) -> None:
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                cv2.LINE_AA)


def render_grid(img_a: np.ndarray, img_b: np.ndarray, crop: int = 112, seed: int = 0,
                rows: Optional[list] = None) -> np.ndarray:
    """The figure as a uint8 BGR array (white background)."""
    rows = rows if rows is not None else rows_to_render()
    tile = min(crop, *img_b.shape[:2])
    cell_h, cell_w = tile + CAPTION_H, tile + 4
    n_cols = max(len(cols) for _, cols in rows)
    height = (len(rows) + 1) * cell_h + 4
    width = LABEL_W + n_cols * cell_w
    canvas = np.full((height, width, 3), 255, np.uint8)

    def put(img, r, c, caption):
        y, x = r * cell_h + CAPTION_H, LABEL_W + c * cell_w
        canvas[y:y + tile, x:x + tile] = _crop(img, tile)
        _text(canvas, caption, x, y - 4)

    _text(canvas, 'clean pair', 4, CAPTION_H + tile // 2)
    put(img_a, 0, 0, 'A (t1)')
    put(img_b, 0, 1, 'B (t2, high quality)')
    for r, (title, cols) in enumerate(rows, start=1):
        _text(canvas, title, 4, r * cell_h + CAPTION_H + tile // 2)
        for c, (caption, options) in enumerate(cols):
            options = dict(options)
            name = options.pop('degradation')
            out, _ = degrade(img_b, name, degradation_rng(seed, c), **options)
            put(out, r, c, caption)
    return canvas


def procedural_pair(size: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """A synthetic aerial-looking pair (hicd_mm.datasets.synthetic)."""
    from hicd_mm.datasets.synthetic import make_synthetic_pair
    img_a, img_b, _ = make_synthetic_pair(size, np.random.default_rng(seed))
    return img_a, img_b


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--a', help='image A (default: a synthetic pair)')
    p.add_argument('--b', help='image B (default: a synthetic pair)')
    p.add_argument('--size', type=int, default=256, help='size of the synthetic pair')
    p.add_argument('--crop', type=int, default=112, help='side of the 1:1 centre crop shown')
    p.add_argument('--seed', type=int, default=0, help='seed of pair and degradations')
    p.add_argument('--out', default='docs/figures/degradations.png', help='output PNG')
    args = p.parse_args(argv)
    if bool(args.a) != bool(args.b):
        p.error('give both --a and --b, or neither')
    if args.a:
        img_a, img_b = (cv2.imread(f, cv2.IMREAD_COLOR) for f in (args.a, args.b))
        if img_a is None or img_b is None:
            p.error(f'cannot read {args.a!r} or {args.b!r}')
    else:
        img_a, img_b = procedural_pair(args.size, args.seed)
    grid = render_grid(img_a, img_b, args.crop, args.seed)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    if not cv2.imwrite(args.out, grid, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        print(f'error: could not write {args.out!r}', file=sys.stderr)
        return 1
    print(f'wrote {args.out} ({grid.shape[1]}x{grid.shape[0]}, '
          f'{osp.getsize(args.out) / 1e6:.2f} MB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
