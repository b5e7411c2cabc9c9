"""Resolution difference: downsample by a factor, then resample back to the original size."""
from typing import Tuple, Union

import numpy as np

from ._common import lr_size, r6, resize

Scale = Union[float, Tuple[float, float]]


def draw_factor(scale: Scale, rng: np.random.Generator) -> float:
    """The downsampling factor of one sample.

    A number is used as is; a ``(lo, hi)`` range draws the size *ratio* uniformly in
    ``[1/hi, 1/lo]`` (e.g. ``(4, 8)``: the low-resolution image is 1/8 to 1/4 of the size) and
    returns its inverse. A degenerate range ``(s, s)`` returns ``s`` without drawing.
    """
    if isinstance(scale, (tuple, list)):
        lo, hi = float(scale[0]), float(scale[1])
        if lo == hi:
            return lo
        return 1.0 / rng.uniform(1.0 / hi, 1.0 / lo)
    return float(scale)


def resolution_degradation(img: np.ndarray, rng: np.random.Generator, scale: Scale,
                           kernel: str = 'bicubic', up_kernel: str = 'bicubic'
                           ) -> Tuple[np.ndarray, dict]:
    """Simulate a coarser sensor: resize down by a factor, then back to the input size.

    Args:
        img (np.ndarray): uint8 HxW or HxWx3 image.
        rng (np.random.Generator): Source of randomness (only used for a scale range).
        scale (float | tuple): Factor >= 1, or a ``(lo, hi)`` range of factors.
        kernel (str): Downsampling kernel: ``bicubic``, ``bilinear``, ``area`` or ``nearest``.
            OpenCV's bicubic/bilinear/nearest do not low-pass filter before decimation
            (they alias, like most SR data pipelines); ``area`` averages the covered pixels.
        up_kernel (str): Kernel of the resampling back to the original size.

    Returns:
        (np.ndarray, dict): uint8 image of the input shape and the parameters used.
    """
    factor = draw_factor(scale, rng)
    h, w = img.shape[:2]
    small_hw = lr_size(h, w, factor)
    small = resize(img, small_hw, kernel)
    out = resize(small, (h, w), up_kernel)
    if out is img:
        out = img.copy()
    return out, dict(factor=r6(factor), lr_size=list(small_hw), kernel=kernel,
                     up_kernel=up_kernel)
