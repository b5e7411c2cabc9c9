"""Helpers shared by the degradation functions: input checks, float <-> uint8, interpolation."""
from typing import Tuple

import cv2
import numpy as np

# Resampling kernels accepted by the resolution and multi degradations. ``nearest`` samples
# the source pixel nearest to each target pixel centre (see :func:`nearest_indices`); OpenCV's
# plain INTER_NEAREST takes the top-left one and shifts the image by (s - 1) / 2 px.
INTERPOLATIONS = {
    'bicubic': cv2.INTER_CUBIC,
    'bilinear': cv2.INTER_LINEAR,
    'area': cv2.INTER_AREA,
    'nearest': cv2.INTER_NEAREST_EXACT,
}


def check_image(img: np.ndarray, what: str = 'image') -> None:
    """Raise a clear error unless ``img`` is a uint8 HxW, HxWx1 or HxWx3 array.

    4-band (e.g. BGR + NIR) images are rejected rather than guessed at: JPEG, haze airlight and
    the colour noise models are defined for 1 or 3 channels only.
    """
    if not isinstance(img, np.ndarray):
        raise TypeError(f'{what} must be a numpy array, got {type(img).__name__}')
    if img.dtype != np.uint8:
        raise TypeError(
            f'{what} must be uint8 (0-255), got dtype {img.dtype}; degrade before any '
            'conversion to float (e.g. do not load with to_float32=True)')
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (1, 3)):
        if img.shape[0] < 1 or img.shape[1] < 1:
            raise ValueError(f'{what} is empty: shape {img.shape}')
        return
    raise ValueError(
        f'{what} has shape {img.shape}; degradations support HxW, HxWx1 (grayscale) and '
        'HxWx3 (BGR) uint8 images only. 4-band images are not supported: load them with '
        "color_type='color' (drops the 4th band) or degrade the first three bands yourself")


def squeeze_gray(img: np.ndarray) -> Tuple[np.ndarray, tuple]:
    """Return (HxW or HxWx3 view, original shape): OpenCV drops a trailing 1-channel axis."""
    shape = img.shape
    if img.ndim == 3 and shape[2] == 1:
        img = img[..., 0]
    return np.ascontiguousarray(img), shape


def to_float(img: np.ndarray) -> np.ndarray:
    """uint8 -> float32 on the 0-255 scale (a new array)."""
    return img.astype(np.float32)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float -> uint8: round and clip to [0, 255] (values saturate, they never wrap)."""
    x = np.clip(x, 0.0, 255.0)
    np.rint(x, out=x)
    return x.astype(np.uint8)


def lr_size(h: int, w: int, factor: float) -> Tuple[int, int]:
    """(height, width) of an image downsampled by ``factor`` (at least 1x1)."""
    return max(1, int(round(h / factor))), max(1, int(round(w / factor)))


def nearest_indices(src: int, dst: int) -> np.ndarray:
    """Source index of each of ``dst`` target pixels: ``floor((i + 0.5) * src / dst)``.

    The exact centre of target pixel ``i`` is ``(i + 0.5) * s - 0.5``; for an even integer
    factor ``s`` it lies between two source pixels and the later one is taken (a +0.5 px
    offset at full resolution, see :func:`nearest_offset`).
    """
    idx = np.floor((np.arange(dst) + 0.5) * (src / dst)).astype(np.intp)
    return np.minimum(idx, src - 1)


def nearest_offset(src: int, dst: int) -> float:
    """Mean offset (source px) between the sampled and the exact centres of
    :func:`nearest_indices` (0.5 for even integer factors, 0 for odd ones)."""
    centres = (np.arange(dst) + 0.5) * (src / dst) - 0.5
    return float(np.mean(nearest_indices(src, dst) - centres))


def resize(img: np.ndarray, size_hw: Tuple[int, int], kernel: str) -> np.ndarray:
    """Resize to ``size_hw`` (height, width) with a named kernel; same size returns ``img``."""
    if tuple(img.shape[:2]) == tuple(size_hw):
        return img
    if kernel == 'nearest':
        rows = nearest_indices(img.shape[0], size_hw[0])
        cols = nearest_indices(img.shape[1], size_hw[1])
        return np.ascontiguousarray(img[rows][:, cols])
    return cv2.resize(img, (size_hw[1], size_hw[0]), interpolation=INTERPOLATIONS[kernel])


def jpeg_roundtrip(img_u8: np.ndarray, quality: int) -> np.ndarray:
    """Encode a uint8 HxW or HxWx3 image as JPEG at ``quality`` and decode it again."""
    ok, buf = cv2.imencode('.jpg', img_u8, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f'OpenCV could not JPEG-encode an image of shape {img_u8.shape}')
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def r6(x: float) -> float:
    """A JSON-friendly float rounded to 6 decimals (only for the recorded parameters)."""
    return round(float(x), 6)
