"""Blur kernels and a fast way to apply them.

All kernels are odd-sized, centred and point-symmetric, so filtering never shifts the image
(HQ and LQ stay pixel-aligned). Borders are reflected (OpenCV's BORDER_REFLECT_101).
"""
import math

import cv2
import numpy as np

MAX_KERNEL_SIZE = 31


def kernel_size(sigma: float, truncate: float = 3.0, max_size: int = MAX_KERNEL_SIZE) -> int:
    """Odd kernel size covering ``truncate`` standard deviations on each side."""
    size = 2 * int(math.ceil(truncate * float(sigma))) + 1
    return int(max(3, min(size, max_size)))


def anisotropic_gaussian_kernel(sigma_major: float, sigma_minor: float, theta: float,
                                size: int = None) -> np.ndarray:
    """Normalised 2-D Gaussian with standard deviations ``sigma_major`` along direction
    ``theta`` (radians, from the x axis towards +y) and ``sigma_minor`` across it.

    Args:
        sigma_major (float): Standard deviation along ``theta`` (px).
        sigma_minor (float): Standard deviation across ``theta`` (px).
        theta (float): Orientation in radians.
        size (int, optional): Odd side length; default covers 3 sigma of the major axis.

    Returns:
        np.ndarray: float32 (size, size) kernel summing to 1.
    """
    size = size or kernel_size(max(sigma_major, sigma_minor))
    r = (size - 1) / 2
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    c, s = math.cos(theta), math.sin(theta)
    u = c * x + s * y       # coordinate along the major axis
    v = -s * x + c * y      # coordinate across it
    k = np.exp(-0.5 * ((u / sigma_major) ** 2 + (v / sigma_minor) ** 2))
    return (k / k.sum()).astype(np.float32)


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """Normalised, anti-aliased straight-line kernel of ``length`` px at ``angle`` (radians).

    The line is centred on the kernel centre (a symmetric motion smear), so the image is not
    shifted. Each kernel pixel is weighted by ``max(0, 1 - d)`` where ``d`` is its distance to
    the segment.
    """
    half = (float(length) - 1) / 2
    r = int(math.ceil(half)) + 1
    y, x = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    c, s = math.cos(angle), math.sin(angle)
    t = np.clip(x * c + y * s, -half, half)          # projection clamped onto the segment
    d = np.hypot(x - t * c, y - t * s)
    k = np.maximum(0.0, 1.0 - d)
    return (k / k.sum()).astype(np.float32)


def _dft_filter(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Same result as ``cv2.filter2D(img, -1, kernel, borderType=BORDER_REFLECT_101)`` for a
    point-symmetric odd kernel, via one real DFT per channel (faster for large kernels)."""
    h, w = img.shape[:2]
    r = kernel.shape[0] // 2
    padded = cv2.copyMakeBorder(img, r, r, r, r, cv2.BORDER_REFLECT_101)
    fh = cv2.getOptimalDFTSize(padded.shape[0])
    fw = cv2.getOptimalDFTSize(padded.shape[1])
    k = np.zeros((fh, fw), np.float32)
    k[:kernel.shape[0], :kernel.shape[1]] = kernel
    spectrum = cv2.dft(np.roll(k, (-r, -r), axis=(0, 1)))
    channels = [padded] if padded.ndim == 2 else cv2.split(padded)
    buf = np.zeros((fh, fw), np.float32)
    out = []
    for ch in channels:
        buf[:ch.shape[0], :ch.shape[1]] = ch
        f = cv2.mulSpectrums(cv2.dft(buf), spectrum, 0)
        res = cv2.idft(f, flags=cv2.DFT_SCALE | cv2.DFT_REAL_OUTPUT)
        out.append(res[r:r + h, r:r + w])
    return out[0].copy() if len(out) == 1 else cv2.merge(out)


def apply_kernel(img: np.ndarray, kernel: np.ndarray, max_rank: int = 3,
                 tol: float = 1e-3) -> np.ndarray:
    """Filter a float32 HxW(xC) image with an odd, point-symmetric 2-D kernel, per channel,
    with reflected borders.

    A kernel whose SVD is captured by at most ``max_rank`` separable terms (relative
    Frobenius error below ``tol``; true for isotropic and mildly anisotropic Gaussians) is
    applied as a sum of ``cv2.sepFilter2D`` passes; small kernels (up to 9x9) with
    ``cv2.filter2D``; large ones with a real DFT per channel (exact, and about 2-3x faster
    than ``cv2.filter2D`` for 13x13 to 31x31 kernels).
    """
    u, s, vt = np.linalg.svd(kernel.astype(np.float64))
    energy = np.cumsum(s ** 2) / np.sum(s ** 2)
    rank = int(np.searchsorted(energy, 1.0 - tol ** 2) + 1)
    if rank > max_rank:
        if kernel.shape[0] <= 9:
            return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
        return _dft_filter(img, kernel)
    total = float(kernel.sum())
    approx_sum = float(sum(s[i] * u[:, i].sum() * vt[i].sum() for i in range(rank)))
    gain = total / approx_sum if approx_sum else 1.0
    out = None
    for i in range(rank):
        kx = (s[i] * gain * vt[i]).astype(np.float32)
        ky = u[:, i].astype(np.float32)
        term = cv2.sepFilter2D(img, -1, kx, ky, borderType=cv2.BORDER_REFLECT_101)
        out = term if out is None else cv2.add(out, term)
    return out


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Isotropic Gaussian blur of a float32 image (separable, 3-sigma kernel)."""
    k = kernel_size(sigma)
    return cv2.GaussianBlur(img, (k, k), float(sigma), borderType=cv2.BORDER_REFLECT_101)


def shifted_gaussian_1d(sigma: float, shift: float) -> np.ndarray:
    """Odd-length normalised 1-D Gaussian whose centre lies ``shift`` px from the middle tap."""
    r = int(math.ceil(3.0 * float(sigma) + abs(shift)))
    x = np.arange(-r, r + 1, dtype=np.float64) - shift
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def shifted_gaussian_blur(img: np.ndarray, sigma: float, shift_yx) -> np.ndarray:
    """Isotropic Gaussian blur whose output at ``p`` is the blur centred at ``p - shift``.

    Used before nearest decimation so that a sample taken ``shift`` px after the exact centre
    of a low-resolution pixel carries the value of that centre (no misalignment).
    """
    # OpenCV correlates: out(p) = sum_j k[j] img(p + j - r), so a kernel centred at -shift
    # gives out(p) = blur centred at p - shift.
    ky = shifted_gaussian_1d(sigma, -shift_yx[0])
    kx = shifted_gaussian_1d(sigma, -shift_yx[1])
    return cv2.sepFilter2D(img, -1, kx, ky, borderType=cv2.BORDER_REFLECT_101)
