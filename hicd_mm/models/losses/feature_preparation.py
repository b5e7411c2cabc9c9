"""The explicit preparation step between recorded feature maps and the correlation losses.

A distiller records student and teacher maps, brings each pair into the form the correlation
maths needs -- student resized to the teacher grid, teacher detached, average-pooled to at most
``pool_size`` per side, flattened to ``(B, C, N)`` and L2-normalised per position -- and hands
the prepared pair to every loss that asked for those options (the role of mmrazor's
connectors). A map used by several terms is therefore prepared once per option set, and what a
loss receives is visible in the call. Change-aware terms also get class-balancing weights of
the positions, computed from the ground truth resized to the prepared grid.
"""
from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

RESIZE_MODES = ('bilinear', 'error')


@dataclass(frozen=True)
class FeaturePreparation:
    """How a (student, teacher) map pair is prepared; hashable, so it keys a per-step cache.

    Args:
        normalize (bool): L2-normalise every position vector over the channels.
        pool_size (int, optional): Adaptive-average-pool maps larger than this (per side).
        resize_mode (str): ``'bilinear'`` resizes the student map to the teacher's size;
            ``'error'`` raises on a spatial mismatch.
    """

    normalize: bool = True
    pool_size: Optional[int] = None
    resize_mode: str = 'bilinear'

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f'resize_mode must be one of {RESIZE_MODES}, got '
                             f'{self.resize_mode!r}')
        value = self.pool_size
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise ValueError(f'pool_size must be a positive int, got {value!r}')


class PreparedPair(NamedTuple):
    """A prepared (student, teacher) pair.

    Attributes:
        student (Tensor): ``(B, C_s, N)``, differentiable.
        teacher (Tensor): ``(B, C_t, N)``, detached.
        size (tuple[int, int]): The grid ``(H, W)`` of the ``N = H * W`` positions.
    """

    student: Tensor
    teacher: Tensor
    size: Tuple[int, int]


def match_spatial(feat_s: Tensor, feat_t: Tensor, resize_mode: str = 'bilinear') -> Tensor:
    """Bring the student map to the teacher's spatial size.

    Args:
        feat_s (Tensor): Student map ``(B, C_s, H_s, W_s)``.
        feat_t (Tensor): Teacher map ``(B, C_t, H_t, W_t)``.
        resize_mode (str): ``'bilinear'`` resizes the student map (``align_corners=False``);
            ``'error'`` raises a ValueError when the sizes differ.

    Returns:
        Tensor: The student map with spatial size ``(H_t, W_t)``.
    """
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f'resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}')
    if feat_s.shape[-2:] == feat_t.shape[-2:]:
        return feat_s
    if resize_mode == 'error':
        raise ValueError('student and teacher feature maps differ in spatial size: student '
                         f'{tuple(feat_s.shape)} vs teacher {tuple(feat_t.shape)} '
                         "(use resize_mode='bilinear' to resize the student map)")
    return F.interpolate(feat_s, size=feat_t.shape[-2:], mode='bilinear', align_corners=False)


def pooled_size(height: int, width: int, pool_size: Optional[int]) -> Tuple[int, int]:
    """The grid a ``height x width`` map is pooled to (unchanged if it fits)."""
    if pool_size is None or (height <= pool_size and width <= pool_size):
        return height, width
    return min(height, pool_size), min(width, pool_size)


def flatten_features(feat: Tensor, normalize: bool = True, pool_size: Optional[int] = None,
                     eps: float = 1e-6) -> Tensor:
    """Pool, flatten and L2-normalise a feature map.

    Args:
        feat (Tensor): Feature map ``(B, C, H, W)``.
        normalize (bool): Divide each position vector by ``max(||x||_2, eps)``, so a zero vector
            stays zero (finite value and gradient).
        pool_size (int, optional): If H or W exceeds it, adaptive-average-pool to
            ``(min(H, pool_size), min(W, pool_size))``.
        eps (float): Lower bound of the norm.

    Returns:
        Tensor: ``(B, C, N)`` with ``N`` the (pooled) ``H * W``.
    """
    if feat.dim() != 4:
        raise ValueError(f'expected a (B, C, H, W) feature map, got shape {tuple(feat.shape)}')
    size = pooled_size(*feat.shape[-2:], pool_size)
    if size != tuple(feat.shape[-2:]):
        feat = F.adaptive_avg_pool2d(feat, size)
    x = feat.flatten(2)
    if normalize:
        # 1 / max(||x||, eps) as rsqrt(max(||x||^2, eps^2)): a plain sum of squares over the
        # channels is several times faster on a CPU than linalg.vector_norm over dim 1, and
        # multiplying by the (B, 1, N) factor keeps fewer full-size tensors for the backward
        # pass than a division does.
        sq_norm = x.square().sum(dim=1, keepdim=True)
        x = x * sq_norm.clamp_min(eps * eps).rsqrt()
    return x


def prepare_pair(feat_s: Tensor, feat_t: Tensor,
                 preparation: FeaturePreparation) -> PreparedPair:
    """Check, resize, detach (teacher), pool, flatten and normalise one map pair.

    Args:
        feat_s (Tensor): Student map ``(B, C_s, H_s, W_s)``.
        feat_t (Tensor): Teacher map ``(B, C_t, H_t, W_t)``.
        preparation (FeaturePreparation): The options.

    Returns:
        PreparedPair: ``(B, C_s, N)`` and ``(B, C_t, N)`` on the (pooled) teacher grid.
    """
    for name, f in (('student', feat_s), ('teacher', feat_t)):
        if f.dim() != 4:
            raise ValueError(f'{name} feature map must be (B, C, H, W), got {tuple(f.shape)}')
    if feat_s.shape[0] != feat_t.shape[0]:
        raise ValueError(f'batch sizes differ: student {tuple(feat_s.shape)} vs teacher '
                         f'{tuple(feat_t.shape)}')
    resized = match_spatial(feat_s, feat_t, preparation.resize_mode)
    size = pooled_size(*feat_t.shape[-2:], preparation.pool_size)
    return PreparedPair(
        flatten_features(resized, preparation.normalize, preparation.pool_size),
        flatten_features(feat_t.detach(), preparation.normalize, preparation.pool_size), size)


def change_fraction_on_grid(label: Tensor, size: Tuple[int, int],
                            ignore_index: int = 255) -> Tuple[Tensor, Tensor]:
    """Fraction of changed and of valid label pixels in every cell of a coarser grid.

    Args:
        label (Tensor): Ground truth ``(B, H, W)`` or ``(B, 1, H, W)`` with 0 (unchanged),
            1 (changed) and ``ignore_index``.
        size (tuple[int, int]): The grid ``(h, w)``. A grid finer than the label takes the
            nearest label pixel.
        ignore_index (int): Label value without a class.

    Returns:
        tuple[Tensor, Tensor]: ``changed`` and ``valid`` fractions, each ``(B, h * w)`` float,
        with ``0 <= changed <= valid <= 1``.
    """
    if label.dim() == 4 and label.shape[1] == 1:
        label = label[:, 0]
    if label.dim() != 3:
        raise ValueError(f'label must be (B, H, W) or (B, 1, H, W), got {tuple(label.shape)}')
    valid = (label != ignore_index).float()[:, None]
    changed = (label == 1).float()[:, None] * valid
    if tuple(label.shape[-2:]) != tuple(size):
        if label.shape[-2] >= size[0] and label.shape[-1] >= size[1]:
            valid, changed = (F.adaptive_avg_pool2d(t, size) for t in (valid, changed))
        else:
            valid, changed = (F.interpolate(t, size=size, mode='nearest')
                              for t in (valid, changed))
    return changed.flatten(1), valid.flatten(1)


def class_balanced_position_weights(label: Tensor, size: Tuple[int, int],
                                    ignore_index: int = 255) -> Tensor:
    """Weights of the grid positions under which changed and unchanged ones count equally.

    Per sample, with ``c_n`` / ``u_n`` the changed / unchanged fraction of cell ``n``::

        w_n = N * (c_n / (2 sum c) + u_n / (2 sum u))

    so the weights sum to ``N`` (uniform weights are all 1), half of it on changed positions
    and half on unchanged ones. A sample with only one class present puts all ``N`` on that
    class; one without valid pixels gets zero weights.

    Args:
        label (Tensor): Ground truth ``(B, [1,] H, W)``.
        size (tuple[int, int]): The grid of the prepared features.
        ignore_index (int): Label value without a class.

    Returns:
        Tensor: ``(B, N)`` float weights, ``N = size[0] * size[1]``.
    """
    changed, valid = change_fraction_on_grid(label, size, ignore_index)
    unchanged = valid - changed
    n = changed.shape[1]
    sum_c = changed.sum(1, keepdim=True)
    sum_u = unchanged.sum(1, keepdim=True)
    both = (sum_c > 0) & (sum_u > 0)
    half = torch.where(both, torch.full_like(sum_c, 0.5), torch.ones_like(sum_c))
    weights = (changed * half / sum_c.clamp_min(1e-12) + unchanged * half /
               sum_u.clamp_min(1e-12))
    return weights * n
