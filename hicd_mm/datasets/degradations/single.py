"""Single degradations with five severity levels each.

Every function has the signature ``fn(img, rng, severity) -> (degraded, params)``: ``img`` is a
uint8 HxW or HxWx3 image, ``rng`` a ``numpy.random.Generator`` (the only source of randomness),
``severity`` an int in 1..5. The result is uint8 of the same shape, rounded and clipped to
[0, 255] (values saturate, never wrap); ``params`` is a JSON-serialisable dict of what was used.

The severity tables (:data:`SEVERITY_TABLES`) are chosen for 256-1024 px aerial tiles at about
0.5 m/px; they are documented in ``docs/degradations.md``. Only the listed quantities depend on
the severity; orientations, signs and haze thickness fields are drawn per image.
"""
import math
from typing import Callable, Dict, Tuple

import cv2
import numpy as np

from ._common import jpeg_roundtrip, r6, to_float, to_uint8
from .kernels import (anisotropic_gaussian_kernel, apply_kernel, gaussian_blur, kernel_size,
                      motion_kernel)

# name -> {parameter: (value at severity 1, ..., value at severity 5)}
SEVERITY_TABLES: Dict[str, Dict[str, tuple]] = {
    'gaussian_blur': dict(sigma=(0.8, 1.2, 1.8, 2.6, 3.6)),
    'anisotropic_blur': dict(sigma_major=(1.5, 2.2, 3.0, 4.0, 5.0),
                             sigma_minor=(0.5, 0.6, 0.8, 1.0, 1.2)),
    'motion_blur': dict(length=(5, 9, 13, 19, 25)),
    'gaussian_noise': dict(sigma=(5, 10, 15, 25, 35)),
    'poisson_noise': dict(photons=(250, 120, 60, 30, 15)),
    'jpeg': dict(quality=(60, 40, 25, 15, 8)),
    'haze': dict(transmission=(0.85, 0.7, 0.55, 0.42, 0.3)),
    'low_light': dict(gamma=(1.4, 1.7, 2.0, 2.4, 2.8), gain=(0.85, 0.72, 0.6, 0.5, 0.4),
                      noise_sigma=(2, 3, 4, 5, 6)),
    'contrast_brightness': dict(contrast=(0.7, 0.55, 0.4, 0.3, 0.2),
                                brightness=(10, 20, 30, 40, 50)),
}

# Quantities drawn per image (not set by the severity), for the documentation.
RANDOM_PARTS: Dict[str, str] = {
    'gaussian_blur': '-',
    'anisotropic_blur': 'orientation theta ~ U[0, pi)',
    'motion_blur': 'direction ~ U[0, pi)',
    'gaussian_noise': 'noise field (independent per pixel and channel)',
    'poisson_noise': 'noise field',
    'jpeg': '-',
    'haze': 'airlight ~ U[0.75, 0.95] (slightly bluish), smooth thickness field (+-25 %)',
    'low_light': 'noise field',
    'contrast_brightness': 'sign of the brightness shift (+/-, 50/50)',
}

DESCRIPTIONS: Dict[str, str] = {
    'gaussian_blur': 'isotropic Gaussian blur (defocus / atmosphere), 3-sigma kernel',
    'anisotropic_blur': 'anisotropic Gaussian blur (directional PSF)',
    'motion_blur': 'linear motion smear centred on each pixel (platform motion)',
    'gaussian_noise': 'additive white Gaussian noise (read noise), 0-255 scale',
    'poisson_noise': 'shot noise: Poisson(x * photons) / photons with x = I / 255',
    'jpeg': 'JPEG compression (OpenCV/libjpeg quality)',
    'haze': 'atmospheric scattering I = J t + A (1 - t), t = t_mean ** d with a smooth '
            'random thickness field d',
    'low_light': 'I = 255 * gain * (J / 255) ** gamma + Gaussian noise',
    'contrast_brightness': 'I = (J - mean) * contrast + mean +/- brightness',
}


def _value(name: str, key: str, severity: int):
    return SEVERITY_TABLES[name][key][severity - 1]


def _noise(shape: tuple, rng: np.random.Generator, sigma: float) -> np.ndarray:
    noise = rng.standard_normal(shape, dtype=np.float32)
    noise *= np.float32(sigma)
    return noise


def gaussian_blur_deg(img, rng, severity):
    sigma = _value('gaussian_blur', 'sigma', severity)
    out = gaussian_blur(to_float(img), sigma)
    return to_uint8(out), dict(sigma=sigma, kernel_size=kernel_size(sigma))


def anisotropic_blur_deg(img, rng, severity):
    s1 = _value('anisotropic_blur', 'sigma_major', severity)
    s2 = _value('anisotropic_blur', 'sigma_minor', severity)
    theta = float(rng.uniform(0.0, math.pi))
    kernel = anisotropic_gaussian_kernel(s1, s2, theta)
    out = apply_kernel(to_float(img), kernel)
    return to_uint8(out), dict(sigma_major=s1, sigma_minor=s2, theta=r6(theta),
                               kernel_size=int(kernel.shape[0]))


def motion_blur_deg(img, rng, severity):
    length = _value('motion_blur', 'length', severity)
    angle = float(rng.uniform(0.0, math.pi))
    kernel = motion_kernel(length, angle)
    out = apply_kernel(to_float(img), kernel)
    return to_uint8(out), dict(length=length, angle=r6(angle))


def gaussian_noise_deg(img, rng, severity):
    sigma = _value('gaussian_noise', 'sigma', severity)
    out = to_float(img)
    out += _noise(img.shape, rng, sigma)
    return to_uint8(out), dict(sigma=sigma)


def poisson_noise_deg(img, rng, severity):
    photons = _value('poisson_noise', 'photons', severity)
    lam = img.astype(np.float64) * (photons / 255.0)
    out = rng.poisson(lam).astype(np.float32)
    out *= np.float32(255.0 / photons)
    return to_uint8(out), dict(photons=photons)


def jpeg_deg(img, rng, severity):
    quality = _value('jpeg', 'quality', severity)
    return jpeg_roundtrip(img, quality), dict(quality=quality)


def smooth_field(shape_hw: Tuple[int, int], rng: np.random.Generator,
                 cells: int = 4) -> np.ndarray:
    """A smooth random float32 field in about [-1, 1]: a coarse grid of uniform values
    resized (bicubic) to ``shape_hw``."""
    grid = rng.uniform(-1.0, 1.0, (cells, cells)).astype(np.float32)
    return cv2.resize(grid, (shape_hw[1], shape_hw[0]), interpolation=cv2.INTER_CUBIC)


def haze_deg(img, rng, severity):
    t_mean = _value('haze', 'transmission', severity)
    airlight = float(rng.uniform(0.75, 0.95))
    # Slightly bluish airlight: B a bit above, R a bit below the mean (BGR order).
    tint = np.array([1.03, 1.0, 0.97], np.float32)
    thickness = 1.0 + 0.25 * smooth_field(img.shape[:2], rng)
    t = np.power(np.float32(t_mean), thickness, dtype=np.float32)
    x = to_float(img)
    if x.ndim == 3:
        t = t[..., None]
        a = np.minimum(airlight * tint * 255.0, 255.0).astype(np.float32)
    else:
        a = np.float32(airlight * 255.0)
    out = x * t + a * (1.0 - t)
    return to_uint8(out), dict(transmission=t_mean, airlight=r6(airlight),
                               thickness_variation=0.25)


def low_light_deg(img, rng, severity):
    gamma = _value('low_light', 'gamma', severity)
    gain = _value('low_light', 'gain', severity)
    sigma = _value('low_light', 'noise_sigma', severity)
    x = to_float(img)
    x *= np.float32(1.0 / 255.0)
    out = np.power(x, np.float32(gamma), dtype=np.float32)
    out *= np.float32(255.0 * gain)
    out += _noise(img.shape, rng, sigma)
    return to_uint8(out), dict(gamma=gamma, gain=gain, noise_sigma=sigma)


def contrast_brightness_deg(img, rng, severity):
    contrast = _value('contrast_brightness', 'contrast', severity)
    magnitude = _value('contrast_brightness', 'brightness', severity)
    sign = 1 if rng.random() < 0.5 else -1
    x = to_float(img)
    mean = float(x.mean())
    out = (x - mean) * np.float32(contrast) + np.float32(mean + sign * magnitude)
    return to_uint8(out), dict(contrast=contrast, brightness=sign * magnitude,
                               mean=r6(mean))


SINGLE_DEGRADATIONS: Dict[str, Callable] = {
    'gaussian_blur': gaussian_blur_deg,
    'anisotropic_blur': anisotropic_blur_deg,
    'motion_blur': motion_blur_deg,
    'gaussian_noise': gaussian_noise_deg,
    'poisson_noise': poisson_noise_deg,
    'jpeg': jpeg_deg,
    'haze': haze_deg,
    'low_light': low_light_deg,
    'contrast_brightness': contrast_brightness_deg,
}
