"""Multi-degradation in the style of BSRGAN (Zhang et al., ICCV 2021), parameterised by the
scale factor ``sf``, written from the published description with OpenCV and NumPy.

Six operations run in a random order (a fresh permutation per image, with the two
downsampling steps kept in order), then a final JPEG and a bicubic resampling back to the input
size, so the low-quality image stays aligned with the high-quality one:

=========  ===========  ============================================================
step       probability  parameters (``sf`` = scale factor, U = uniform)
=========  ===========  ============================================================
blur_1     1            isotropic (50 %): sigma ~ U(0.1, 2 + 0.2 sf);
                        anisotropic (50 %): variances l1 ~ U(0.1, 4 + sf),
                        l2 ~ U(0.1, 2 + 0.2 sf), angle ~ U(0, pi)
blur_2     1            as blur_1, drawn independently
down_1     1            resize (75 %): by f ~ U(1, 2 sf), kernel from
                        {bilinear, bicubic, area};
                        or (25 %): Gaussian pre-filter sigma ~ U(0.1, 0.6 sf), shifted
                        by the sampling offset, and nearest sampling straight to the
                        low-resolution size
down_2     1            resize to the low-resolution size H/sf x W/sf, kernel from
                        {bilinear, bicubic, area} (skipped if already there)
noise      1            Gaussian, sigma ~ U(2, 25) (0-255 scale): per-channel 40 %,
                        gray (same on all channels) 40 %, channel-correlated 20 %
jpeg       0.9          quality ~ U{30, ..., 95}
final      1            JPEG quality ~ U{30, ..., 95}, then bicubic back to H x W
=========  ===========  ============================================================

Differences from BSRGAN: no camera-ISP noise (it needs an external model); the pre-filter of
the nearest branch is shifted by the exact sampling offset (0.5 px for even factors) so that
the result stays centred; blur kernels are truncated at 3 sigma (at most 31 px) rather than
drawn in size; and the result is resampled to the input size.
"""
import math
from typing import List, Tuple

import cv2
import numpy as np

from ._common import jpeg_roundtrip, lr_size, nearest_offset, r6, resize, to_float, to_uint8
from .kernels import (anisotropic_gaussian_kernel, apply_kernel, gaussian_blur, kernel_size,
                      shifted_gaussian_blur)

STEPS = ('blur_1', 'blur_2', 'down_1', 'down_2', 'noise', 'jpeg')
RESIZE_KERNELS = ('bilinear', 'bicubic', 'area')

# Probabilities and ranges, referenced by the docs and the tests.
P_ISOTROPIC = 0.5
P_RANDOM_RESIZE = 0.75
P_NOISE_COLOR, P_NOISE_GRAY = 0.4, 0.4        # correlated: the remaining 0.2
NOISE_SIGMA = (2.0, 25.0)
P_JPEG = 0.9
JPEG_QUALITY = (30, 95)


def _blur(x: np.ndarray, rng: np.random.Generator, sf: float) -> Tuple[np.ndarray, dict]:
    if rng.random() < P_ISOTROPIC:
        sigma = float(rng.uniform(0.1, 2.0 + 0.2 * sf))
        return gaussian_blur(x, sigma), dict(type='isotropic', sigma=r6(sigma),
                                             kernel_size=kernel_size(sigma))
    l1 = float(rng.uniform(0.1, 4.0 + sf))
    l2 = float(rng.uniform(0.1, 2.0 + 0.2 * sf))
    theta = float(rng.uniform(0.0, math.pi))
    kernel = anisotropic_gaussian_kernel(math.sqrt(l1), math.sqrt(l2), theta)
    return apply_kernel(x, kernel), dict(type='anisotropic', sigma_1=r6(math.sqrt(l1)),
                                         sigma_2=r6(math.sqrt(l2)), theta=r6(theta),
                                         kernel_size=int(kernel.shape[0]))


def _down_1(x, rng, sf, lr_hw):
    if rng.random() < P_RANDOM_RESIZE:
        f = float(rng.uniform(1.0, 2.0 * sf))
        kernel = RESIZE_KERNELS[int(rng.integers(len(RESIZE_KERNELS)))]
        size = lr_size(x.shape[0], x.shape[1], f)
        return resize(x, size, kernel), dict(type='resize', factor=r6(f), kernel=kernel,
                                             size=list(size))
    sigma = float(rng.uniform(0.1, 0.6 * sf))
    shift = (nearest_offset(x.shape[0], lr_hw[0]), nearest_offset(x.shape[1], lr_hw[1]))
    x = shifted_gaussian_blur(x, sigma, shift)
    return resize(x, lr_hw, 'nearest'), dict(type='blur_nearest', sigma=r6(sigma),
                                             size=list(lr_hw))


def _down_2(x, rng, lr_hw):
    kernel = RESIZE_KERNELS[int(rng.integers(len(RESIZE_KERNELS)))]
    if tuple(x.shape[:2]) == tuple(lr_hw):
        return x, dict(type='skipped')
    return resize(x, lr_hw, kernel), dict(type='resize', kernel=kernel, size=list(lr_hw))


def _noise(x, rng):
    sigma = float(rng.uniform(*NOISE_SIGMA))
    u = rng.random()
    if x.ndim == 2 or (P_NOISE_COLOR <= u < P_NOISE_COLOR + P_NOISE_GRAY):
        kind = 'gray'
        noise = rng.standard_normal(x.shape[:2], dtype=np.float32)
        noise *= np.float32(sigma)
        if x.ndim == 3:
            noise = cv2.merge([noise] * x.shape[2])
    elif u < P_NOISE_COLOR:
        kind = 'color'
        noise = rng.standard_normal(x.shape, dtype=np.float32)
        noise *= np.float32(sigma)
    else:
        kind = 'correlated'
        # Random channel covariance C = Q diag(d) Q^T with trace 3 (average variance sigma^2):
        # noise = M z with M = Q sqrt(diag(d)) sigma and z ~ N(0, I) per pixel.
        q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
        d = rng.uniform(0.0, 1.0, 3) + 1e-3
        d *= 3.0 / d.sum()
        mix = (q * np.sqrt(d) * sigma).astype(np.float32)
        noise = cv2.transform(rng.standard_normal(x.shape, dtype=np.float32), mix)
    return cv2.add(x, noise), dict(type=kind, sigma=r6(sigma))


def _jpeg(x, rng, p=1.0):
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    if rng.random() >= p:
        return x, dict(type='skipped')
    out = jpeg_roundtrip(to_uint8(x), quality).astype(np.float32)
    return out, dict(type='jpeg', quality=quality)


def shuffled_steps(rng: np.random.Generator) -> List[str]:
    """A random order of :data:`STEPS` in which ``down_1`` comes before ``down_2``."""
    order = [STEPS[i] for i in rng.permutation(len(STEPS))]
    i1, i2 = order.index('down_1'), order.index('down_2')
    if i1 > i2:
        order[i1], order[i2] = order[i2], order[i1]
    return order


def multi_degradation(img: np.ndarray, rng: np.random.Generator, sf: float
                      ) -> Tuple[np.ndarray, dict]:
    """BSRGAN-style random degradation of a uint8 HxW or HxWx3 image at scale factor ``sf``.

    Args:
        img (np.ndarray): uint8 image.
        rng (np.random.Generator): Source of all randomness.
        sf (float): Scale factor (>= 1); the paper's settings are 4 (LEVIR-CD) and 8 (BANDON).

    Returns:
        (np.ndarray, dict): uint8 image of the input shape; ``params`` holds the step order and
        the parameters of each step.
    """
    h, w = img.shape[:2]
    lr_hw = lr_size(h, w, sf)
    x = to_float(img)
    order = shuffled_steps(rng)
    steps = []
    for name in order:
        if name in ('blur_1', 'blur_2'):
            x, p = _blur(x, rng, sf)
        elif name == 'down_1':
            x, p = _down_1(x, rng, sf, lr_hw)
        elif name == 'down_2':
            x, p = _down_2(x, rng, lr_hw)
        elif name == 'noise':
            x, p = _noise(x, rng)
        else:
            x, p = _jpeg(x, rng, P_JPEG)
        steps.append(dict(step=name, **p))
    x, p = _jpeg(x, rng)
    steps.append(dict(step='final_jpeg', **p))
    x = cv2.resize(to_uint8(x), (w, h), interpolation=cv2.INTER_CUBIC) \
        if tuple(x.shape[:2]) != (h, w) else to_uint8(x)
    return x, dict(sf=r6(sf), lr_size=list(lr_hw), steps=steps)
