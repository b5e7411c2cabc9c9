"""Raster primitives shared by scene sampling and rendering: polygons, noise, blending."""
from typing import List, Tuple

import cv2
import numpy as np

_SHIFT = 3  # fractional bits of the sub-pixel coordinates given to cv2 drawing functions
_ONE = 1 << _SHIFT


def _fixed(points) -> np.ndarray:
    """Convert float (x, y) points to the int32 fixed-point form used with ``shift=_SHIFT``."""
    return np.rint(np.asarray(points, np.float64) * _ONE).astype(np.int32)


def _colour(rgb) -> Tuple[float, float, float]:
    """A colour as the tuple that cv2 drawing functions expect."""
    return tuple(float(c) for c in rgb)


def _value_noise(size: int, rng: np.random.Generator, feature_px: float, octaves: int,
                 persistence: float = 0.5) -> np.ndarray:
    """Multi-octave value noise with zero mean and unit standard deviation.

    The octaves are summed on a canvas with about two pixels per cell of the finest octave
    and the sum is then resized to ``size`` (much cheaper than resizing every octave).

    Args:
        size: Side of the square output.
        rng: Random generator.
        feature_px: Size in pixels of the largest features (first octave).
        octaves: Number of octaves; each halves the feature size.
        persistence: Amplitude ratio between consecutive octaves.

    Returns:
        ``(size, size)`` float32 array.
    """
    finest_px = feature_px / 2 ** (octaves - 1)
    work = int(min(size, max(16, np.ceil(size * 2 / finest_px))))
    out = np.zeros((work, work), np.float32)
    amplitude = 1.0
    for octave in range(octaves):
        cells = max(3, int(round(size / (feature_px / 2 ** octave))))
        grid = rng.random((cells + 2, cells + 2), dtype=np.float32)
        # Resize one extra cell on every side and crop, so that the borders are not flat.
        big = int(np.ceil(work * (cells + 2) / cells))
        off = (big - work) // 2
        layer = cv2.resize(grid, (big, big), interpolation=cv2.INTER_CUBIC)
        out += amplitude * layer[off:off + work, off:off + work]
        amplitude *= persistence
    if work != size:
        out = cv2.resize(out, (size, size), interpolation=cv2.INTER_CUBIC)
    mean, std = cv2.meanStdDev(out)
    out -= float(mean[0, 0])
    return out / float(std[0, 0]) if std[0, 0] > 1e-6 else out


def _rect_corners(centre: np.ndarray, axis_u: np.ndarray, axis_v: np.ndarray,
                  u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
    """Corners of the rectangle ``[u0, u1] x [v0, v1]`` of a local frame, as (4, 2) (x, y)."""
    us = np.array([u0, u1, u1, u0])
    vs = np.array([v0, v0, v1, v1])
    return centre + us[:, None] * axis_u + vs[:, None] * axis_v


def _draw_polygon(image: np.ndarray, polygon: np.ndarray, value) -> None:
    """Fill a polygon (float (x, y) vertices) with the rule that is also used for labels."""
    cv2.fillPoly(image, [_fixed(polygon)], value, cv2.LINE_8, _SHIFT)


def _polygon_area(size: int, polygons: List[np.ndarray]) -> int:
    """Number of pixels the polygons cover (as rasterised into the label)."""
    mask = np.zeros((size, size), np.uint8)
    for poly in polygons:
        _draw_polygon(mask, poly, 1)
    return int(cv2.countNonZero(mask))


def _is_free(occupied: np.ndarray, polygon: np.ndarray) -> bool:
    """Whether a polygon lies (at least partly) in the image and overlaps no occupied pixel."""
    size = occupied.shape[0]
    points = _fixed(polygon)
    x, y, w, h = cv2.boundingRect(points)
    x0, y0 = max((x >> _SHIFT) - 1, 0), max((y >> _SHIFT) - 1, 0)
    x1, y1 = min(((x + w) >> _SHIFT) + 2, size), min(((y + h) >> _SHIFT) + 2, size)
    if x0 >= x1 or y0 >= y1:
        return False
    window = occupied[y0:y1, x0:x1]
    if not cv2.countNonZero(window):
        return True
    patch = np.zeros_like(window)
    cv2.fillPoly(patch, [points - np.int32([x0 << _SHIFT, y0 << _SHIFT])], 1, cv2.LINE_8, _SHIFT)
    return not cv2.countNonZero(patch & window)


def _blend(image: np.ndarray, layer: np.ndarray, alpha_u8: np.ndarray) -> np.ndarray:
    """``image * (1 - alpha) + layer * alpha`` with ``alpha = alpha_u8 / 255``."""
    alpha = alpha_u8.astype(np.float32) * np.float32(1.0 / 255)
    return cv2.blendLinear(image, layer, 1.0 - alpha, alpha)
