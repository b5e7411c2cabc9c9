"""Correlation distillation losses of HiCD.

The student does not imitate the teacher's features themselves but the *correlations* between
feature vectors: within one image (self), between the two dates of one pair (cross) and between
all positions of all images in the batch (global). Channel counts of student and teacher may
differ because only position-by-position affinity matrices are compared.

Notation (see ``docs/method.md``): a feature map ``F`` of shape ``(B, C, H, W)`` is
flattened to ``X`` of shape ``(B, C, N)`` with ``N = H * W`` and, by default, every position
vector is L2-normalised over the channels. Affinity matrices such as ``A = X^T X`` are
``N x N``; the squared-error losses are evaluated through ``C x C`` Gram matrices instead, so
their memory is ``O(C^2)``, not ``O(N^2)``. The ``*_explicit`` functions materialise the
``N x N`` matrices and serve as references for tests and the benchmark.

The first half of this module is a functional core in pure torch; the registered loss modules
below wrap it with feature preparation (resizing, pooling, normalisation, sampling).
"""
import contextlib
import threading
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import checkpoint

from hicd_mm.registry import MODELS

DISTANCES = ('mse', 'kl')
RESIZE_MODES = ('bilinear', 'error')
DTypeLike = Union[torch.dtype, str, None]

# ---------------------------------------------------------------------------------------------
# Feature preparation
# ---------------------------------------------------------------------------------------------


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
    h, w = feat.shape[-2:]
    if pool_size is not None and (h > pool_size or w > pool_size):
        feat = F.adaptive_avg_pool2d(feat, (min(h, pool_size), min(w, pool_size)))
    x = feat.flatten(2)
    if normalize:
        # 1 / max(||x||, eps) as rsqrt(max(||x||^2, eps^2)): a plain sum of squares over the
        # channels is several times faster on a CPU than linalg.vector_norm over dim 1, and
        # multiplying by the (B, 1, N) factor keeps fewer full-size tensors for the backward
        # pass than a division does.
        sq_norm = x.square().sum(dim=1, keepdim=True)
        x = x * sq_norm.clamp_min(eps * eps).rsqrt()
    return x


_PREPARED = threading.local()


@contextlib.contextmanager
def shared_feature_preparation() -> Iterator[None]:
    """Prepare each feature map once for all correlation losses computed inside the block.

    A distiller applies several terms (self, cross, global) to the same maps; inside this
    block :meth:`BaseCorrelationLoss.prepare` memoises its flattened, normalised output per
    (student map, teacher map, options), so the normalisation and its backward pass run once
    per map instead of once per term. Values and gradients are unchanged.
    """
    outer = getattr(_PREPARED, 'cache', None)
    _PREPARED.cache = {} if outer is None else outer
    try:
        yield
    finally:
        _PREPARED.cache = outer


def _active_preparation_cache() -> Optional[Dict]:
    return getattr(_PREPARED, 'cache', None)


def batch_to_positions(x: Tensor) -> Tensor:
    """Stack the batch along the positions: ``(B, C, N) -> (1, C, B * N)``.

    Sample ``b``'s position ``n`` becomes column ``b * N + n``.
    """
    b, c, n = x.shape
    return x.transpose(0, 1).reshape(1, c, b * n)


def sample_positions(xs: Sequence[Tensor], num: Optional[int]) -> List[Tensor]:
    """Keep the same random subset of positions in every ``(B, C, N)`` tensor of ``xs``.

    Indices come from ``torch.randperm`` with the global RNG of the tensors' device (seed it
    with ``torch.manual_seed`` for reproducibility); all samples of the batch share them.

    Args:
        xs (Sequence[Tensor]): Tensors with equal ``N``.
        num (int, optional): Positions to keep; ``None`` or ``num >= N`` keeps all.

    Returns:
        list[Tensor]: The (sub-sampled) tensors.
    """
    n = xs[0].shape[-1]
    if num is None or num >= n:
        return list(xs)
    idx = torch.randperm(n, device=xs[0].device)[:num]
    return [x[..., idx] for x in xs]


def resolve_dtype(dtype: DTypeLike) -> Optional[torch.dtype]:
    """Accept ``torch.float64``, ``'float64'``/``'torch.float64'`` or ``None`` (input dtype)."""
    if dtype is None or isinstance(dtype, torch.dtype):
        out = dtype
    elif isinstance(dtype, str):
        out = getattr(torch, dtype.replace('torch.', ''), None)
    else:
        out = None
    if dtype is not None and not (isinstance(out, torch.dtype) and out.is_floating_point):
        raise ValueError(f'gram_dtype must be a floating torch dtype or None, got {dtype!r}')
    return out


# ---------------------------------------------------------------------------------------------
# Squared-error distance: Gram path and explicit reference
# ---------------------------------------------------------------------------------------------


def _check_pair(rows: Tensor, cols: Tensor, name: str) -> None:
    if rows.dim() != 3 or cols.dim() != 3 or rows.shape[:2] != cols.shape[:2]:
        raise ValueError(f'{name}: rows and cols must be (B, C, N) with equal B and C, got '
                         f'{tuple(rows.shape)} and {tuple(cols.shape)}')


def _check_student_teacher(rows_s: Tensor, cols_s: Tensor, rows_t: Tensor,
                           cols_t: Tensor) -> None:
    _check_pair(rows_s, cols_s, 'student')
    _check_pair(rows_t, cols_t, 'teacher')
    if (rows_s.shape[0], rows_s.shape[2], cols_s.shape[2]) != \
            (rows_t.shape[0], rows_t.shape[2], cols_t.shape[2]):
        raise ValueError('student and teacher must agree in batch size and positions, got '
                         f'rows {tuple(rows_s.shape)} / {tuple(rows_t.shape)}, cols '
                         f'{tuple(cols_s.shape)} / {tuple(cols_t.shape)}')


# Positions per chunk are chosen so that one float64 copy of a (B, C, chunk) slice holds about
# this many elements: the float64 arithmetic never needs a full-size float64 copy.
GRAM_CHUNK_ELEMENTS = 1 << 18


def _position_chunks(b: int, c: int, n: int) -> List[slice]:
    step = max(128, GRAM_CHUNK_ELEMENTS // max(b * c, 1))
    return [slice(i, i + step) for i in range(0, n, step)]


def _grams(x_s: Tensor, x_t: Tensor, dtype: torch.dtype) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-sample Gram matrices ``x_s x_s^T``, ``x_t x_t^T`` and ``x_s x_t^T`` in ``dtype``.

    They are accumulated over chunks of positions in one pass, so each chunk of the inputs is
    converted to ``dtype`` once.

    Args:
        x_s (Tensor): ``(B, C_s, N)``.
        x_t (Tensor): ``(B, C_t, N)``.
        dtype (torch.dtype): Accumulation dtype.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``(B, C_s, C_s)``, ``(B, C_t, C_t)``, ``(B, C_s, C_t)``.
    """
    b, c_s, n = x_s.shape
    c_t = x_t.shape[1]
    g_ss = x_s.new_zeros((b, c_s, c_s), dtype=dtype)
    g_tt = x_s.new_zeros((b, c_t, c_t), dtype=dtype)
    g_st = x_s.new_zeros((b, c_s, c_t), dtype=dtype)
    for sl in _position_chunks(b, max(c_s, c_t), n):
        chunk_s, chunk_t = x_s[..., sl].to(dtype), x_t[..., sl].to(dtype)
        g_ss.baddbmm_(chunk_s, chunk_s.transpose(1, 2))
        g_tt.baddbmm_(chunk_t, chunk_t.transpose(1, 2))
        g_st.baddbmm_(chunk_s, chunk_t.transpose(1, 2))
    return g_ss, g_tt, g_st


def _gram_apply(g_1: Tensor, x_1: Tensor, g_2: Tensor, x_2: Tensor, coef: Tensor,
                out_dtype: torch.dtype) -> Tensor:
    """``coef * (g_1 x_1 - g_2 x_2)`` per sample, in chunks of positions.

    Args:
        g_1 (Tensor): ``(B, C, C_1)`` in the accumulation dtype.
        x_1 (Tensor): ``(B, C_1, N)``.
        g_2 (Tensor): ``(B, C, C_2)`` in the accumulation dtype.
        x_2 (Tensor): ``(B, C_2, N)``.
        coef (Tensor): ``(B, 1, 1)`` per-sample factor in the accumulation dtype.
        out_dtype (torch.dtype): Dtype of the result.

    Returns:
        Tensor: ``(B, C, N)`` in ``out_dtype``.
    """
    dtype = g_1.dtype
    b, c, n = x_1.shape[0], g_1.shape[1], x_1.shape[2]
    out = x_1.new_empty((b, c, n), dtype=out_dtype)
    for sl in _position_chunks(b, max(c, x_1.shape[1], x_2.shape[1]), n):
        chunk = torch.bmm(g_1, x_1[..., sl].to(dtype))
        chunk.baddbmm_(g_2, x_2[..., sl].to(dtype), alpha=-1).mul_(coef)
        out[..., sl] = chunk
    return out


def _frobenius_inner(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample Frobenius inner product ``<a, b>_F``: ``(B, P, Q) x 2 -> (B,)``."""
    return (a * b).sum(dim=(1, 2))


class _GramCorrelationMSE(torch.autograd.Function):
    """Per-sample ``max(||R_s^T K_s - R_t^T K_t||_F^2, 0)`` from ``C x C`` Gram matrices.

    The backward pass is analytic, so only the inputs and six small Gram matrices are kept
    between the passes. With ``D = R_s^T K_s - R_t^T K_t``::

        d/dR_s =  2 K_s D^T =  2 (K_s K_s^T R_s - K_s K_t^T R_t)
        d/dK_s =  2 R_s D   =  2 (R_s R_s^T K_s - R_s R_t^T K_t)
        d/dR_t = -2 K_t D^T = -2 (K_t K_s^T R_s - K_t K_t^T R_t)
        d/dK_t = -2 R_t D   = -2 (R_t R_s^T K_s - R_t R_t^T K_t)

    ``None`` column inputs (both or neither) mean "the same tensors as the rows"
    (self-correlation): each Gram matrix is then computed once and the columns' gradient is
    folded into the rows' gradient. Not twice differentiable.
    """

    @staticmethod
    def forward(ctx, rows_s: Tensor, cols_s: Optional[Tensor], rows_t: Tensor,
                cols_t: Optional[Tensor], dtype: torch.dtype) -> Tensor:
        same = cols_s is None
        if same != (cols_t is None):
            raise ValueError('cols_s and cols_t must both be None or both be tensors')
        g_r_ss, g_r_tt, g_r_st = _grams(rows_s, rows_t, dtype)
        if same:
            g_k_ss, g_k_tt, g_k_st = g_r_ss, g_r_tt, g_r_st
        else:
            g_k_ss, g_k_tt, g_k_st = _grams(cols_s, cols_t, dtype)
        per_sample = (_frobenius_inner(g_r_ss, g_k_ss) - 2 * _frobenius_inner(g_r_st, g_k_st)
                      + _frobenius_inner(g_r_tt, g_k_tt))
        ctx.save_for_backward(rows_s, cols_s, rows_t, cols_t, g_r_ss, g_k_ss, g_r_tt, g_k_tt,
                              g_r_st, g_k_st, per_sample)
        # Rounding can push an (exactly non-negative) distance slightly below 0.
        return per_sample.clamp_min(0)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> Tuple[Optional[Tensor], ...]:
        (rows_s, cols_s, rows_t, cols_t, g_r_ss, g_k_ss, g_r_tt, g_k_tt, g_r_st, g_k_st,
         per_sample) = ctx.saved_tensors
        # Like clamp_min: the gradient passes where the unclamped value is >= 0.
        coef = (2 * grad_out.to(per_sample.dtype) * (per_sample >= 0)).view(-1, 1, 1)
        # Self-correlation: the rows also act as the columns, which doubles their gradient.
        coef_rows = coef * 2 if cols_s is None else coef
        need = ctx.needs_input_grad
        grads: List[Optional[Tensor]] = [None] * 5
        if need[0]:
            grads[0] = _gram_apply(g_k_ss, rows_s, g_k_st, rows_t, coef_rows, rows_s.dtype)
        if need[1]:
            grads[1] = _gram_apply(g_r_ss, cols_s, g_r_st, cols_t, coef, cols_s.dtype)
        if need[2]:
            grads[2] = _gram_apply(g_k_st.transpose(1, 2), rows_s, g_k_tt, rows_t, -coef_rows,
                                   rows_t.dtype)
        if need[3]:
            grads[3] = _gram_apply(g_r_st.transpose(1, 2), cols_s, g_r_tt, cols_t, -coef,
                                   cols_t.dtype)
        return tuple(grads)


def correlation_mse(rows_s: Tensor, cols_s: Tensor, rows_t: Tensor, cols_t: Tensor,
                    gram_dtype: DTypeLike = torch.float64) -> Tensor:
    """Mean squared difference of the affinities ``R^T K`` without forming them.

    With ``S = R_s^T K_s`` and ``T = R_t^T K_t`` (each ``N_r x N_k`` per sample)::

        ||S - T||_F^2 = <R_s R_s^T, K_s K_s^T> - 2 <R_s R_t^T, K_s K_t^T> + <R_t R_t^T, K_t K_t^T>

    where every product is a ``C x C`` Gram matrix accumulated in ``gram_dtype`` over chunks
    of positions. When ``cols is rows`` for both student and teacher, the first and last terms
    are squared Frobenius norms and each Gram matrix is computed once. Memory beyond the inputs
    and their gradients is ``O(C^2)`` plus one chunk; the backward pass is analytic (see
    :class:`_GramCorrelationMSE`).

    Args:
        rows_s (Tensor): Student row features ``(B, C_s, N_r)``.
        cols_s (Tensor): Student column features ``(B, C_s, N_k)``.
        rows_t (Tensor): Teacher row features ``(B, C_t, N_r)``.
        cols_t (Tensor): Teacher column features ``(B, C_t, N_k)``.
        gram_dtype (torch.dtype | str, optional): Dtype of the Gram products (default float64:
            the three terms nearly cancel when student ~ teacher). ``None`` keeps the input
            dtype.

    Returns:
        Tensor: ``sum_b max(||S_b - T_b||_F^2, 0) / (B N_r N_k)`` in ``rows_s.dtype``.
    """
    _check_student_teacher(rows_s, cols_s, rows_t, cols_t)
    dtype = resolve_dtype(gram_dtype) or rows_s.dtype
    if cols_s is rows_s and cols_t is rows_t:
        per_sample = _GramCorrelationMSE.apply(rows_s, None, rows_t, None, dtype)
    else:  # a tensor passed twice still gets the sum of both gradients from autograd
        per_sample = _GramCorrelationMSE.apply(rows_s, cols_s, rows_t, cols_t, dtype)
    b, n_r, n_k = rows_s.shape[0], rows_s.shape[2], cols_s.shape[2]
    return (per_sample.sum() / (b * n_r * n_k)).to(rows_s.dtype)


def correlation_mse_explicit(rows_s: Tensor, cols_s: Tensor, rows_t: Tensor,
                             cols_t: Tensor) -> Tensor:
    """Reference of :func:`correlation_mse` that materialises the ``N_r x N_k`` affinities.

    Returns:
        Tensor: ``sum_b ||R_s^T K_s - R_t^T K_t||_F^2 / (B N_r N_k)`` in the input dtype.
    """
    _check_student_teacher(rows_s, cols_s, rows_t, cols_t)
    aff_s = torch.bmm(rows_s.transpose(1, 2), cols_s)
    aff_t = torch.bmm(rows_t.transpose(1, 2), cols_t)
    return F.mse_loss(aff_s, aff_t, reduction='mean')


def self_correlation_mse(x_s: Tensor, x_t: Tensor,
                         gram_dtype: DTypeLike = torch.float64) -> Tensor:
    """``L_self = sum_b ||X_s^T X_s - X_t^T X_t||_F^2 / (B N^2)`` via Gram matrices.

    Args:
        x_s (Tensor): Student features ``(B, C_s, N)``.
        x_t (Tensor): Teacher features ``(B, C_t, N)``.
        gram_dtype (torch.dtype | str, optional): See :func:`correlation_mse`.

    Returns:
        Tensor: Scalar loss.
    """
    return correlation_mse(x_s, x_s, x_t, x_t, gram_dtype)


def self_correlation_mse_explicit(x_s: Tensor, x_t: Tensor) -> Tensor:
    """Explicit ``N x N`` reference of :func:`self_correlation_mse`."""
    return correlation_mse_explicit(x_s, x_s, x_t, x_t)


def cross_correlation_mse(x1_s: Tensor, x2_s: Tensor, x1_t: Tensor, x2_t: Tensor,
                          gram_dtype: DTypeLike = torch.float64) -> Tensor:
    """``L_cross = sum_b ||X1_s^T X2_s - X1_t^T X2_t||_F^2 / (B N^2)`` via Gram matrices.

    Args:
        x1_s (Tensor): Student t1 features ``(B, C_s, N)``.
        x2_s (Tensor): Student t2 features ``(B, C_s, N)``.
        x1_t (Tensor): Teacher t1 features ``(B, C_t, N)``.
        x2_t (Tensor): Teacher t2 features ``(B, C_t, N)``.
        gram_dtype (torch.dtype | str, optional): See :func:`correlation_mse`.

    Returns:
        Tensor: Scalar loss.
    """
    return correlation_mse(x1_s, x2_s, x1_t, x2_t, gram_dtype)


def cross_correlation_mse_explicit(x1_s: Tensor, x2_s: Tensor, x1_t: Tensor,
                                   x2_t: Tensor) -> Tensor:
    """Explicit ``N x N`` reference of :func:`cross_correlation_mse`."""
    return correlation_mse_explicit(x1_s, x2_s, x1_t, x2_t)


def global_correlation_mse(x_s: Tensor, x_t: Tensor,
                           gram_dtype: DTypeLike = torch.float64) -> Tensor:
    """``L_global = ||K_s - K_t||_F^2 / (B N)^2`` with ``K = X_all^T X_all`` over the batch.

    ``X_all`` is ``(C, B N)``, so its Gram matrix is ``sum_b X_b X_b^T``. With ``B = 1`` this is
    :func:`self_correlation_mse` of that image.

    Args:
        x_s (Tensor): Student features ``(B, C_s, N)``.
        x_t (Tensor): Teacher features ``(B, C_t, N)``.
        gram_dtype (torch.dtype | str, optional): See :func:`correlation_mse`.

    Returns:
        Tensor: Scalar loss.
    """
    return self_correlation_mse(batch_to_positions(x_s), batch_to_positions(x_t), gram_dtype)


def global_correlation_mse_explicit(x_s: Tensor, x_t: Tensor) -> Tensor:
    """Explicit ``BN x BN`` reference of :func:`global_correlation_mse`."""
    return self_correlation_mse_explicit(batch_to_positions(x_s), batch_to_positions(x_t))


# ---------------------------------------------------------------------------------------------
# KL distance over row-softmaxed affinities: chunked path and explicit reference
# ---------------------------------------------------------------------------------------------


def _kl_rows_sum(rows_s: Tensor, cols_s: Tensor, rows_t: Tensor, cols_t: Tensor,
                 tau: float) -> Tensor:
    """``sum over samples and rows of KL(softmax(T/tau) || softmax(S/tau))`` (float32+)."""
    dtype = torch.promote_types(rows_s.dtype, torch.float32)
    logit_s = torch.bmm(rows_s.transpose(1, 2).to(dtype), cols_s.to(dtype)) / tau
    logit_t = torch.bmm(rows_t.transpose(1, 2).to(dtype), cols_t.to(dtype)) / tau
    log_p_s = F.log_softmax(logit_s, dim=-1)
    log_p_t = F.log_softmax(logit_t, dim=-1)
    return F.kl_div(log_p_s, log_p_t, reduction='sum', log_target=True)


def correlation_kl(rows_s: Tensor, cols_s: Tensor, rows_t: Tensor, cols_t: Tensor,
                   tau: float = 1.0, chunk_size: int = 1024) -> Tensor:
    """Row-wise KL divergence of softmaxed affinities, computed ``chunk_size`` rows at a time.

    For every sample ``b`` and row ``i`` of the affinities ``S = R_s^T K_s`` and
    ``T = R_t^T K_t``: ``p_t = softmax(T[i] / tau)``, ``p_s = softmax(S[i] / tau)`` and the loss
    is ``tau^2 * mean_{b, i} KL(p_t || p_s)``.

    Each chunk runs under activation checkpointing when gradients are needed, so peak memory
    stays ``O(B * chunk_size * N_k)`` in the forward and the backward pass (at the price of
    recomputing each chunk once in the backward pass).

    Args:
        rows_s (Tensor): Student row features ``(B, C_s, N_r)``.
        cols_s (Tensor): Student column features ``(B, C_s, N_k)``.
        rows_t (Tensor): Teacher row features ``(B, C_t, N_r)``.
        cols_t (Tensor): Teacher column features ``(B, C_t, N_k)``.
        tau (float): Softmax temperature.
        chunk_size (int): Rows per chunk.

    Returns:
        Tensor: Scalar loss in ``rows_s.dtype``.
    """
    _check_student_teacher(rows_s, cols_s, rows_t, cols_t)
    if tau <= 0:
        raise ValueError(f'tau must be > 0, got {tau}')
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
    needs_grad = torch.is_grad_enabled() and any(
        t.requires_grad for t in (rows_s, cols_s, rows_t, cols_t))
    b, n_r = rows_s.shape[0], rows_s.shape[2]
    total = rows_s.new_zeros((), dtype=torch.promote_types(rows_s.dtype, torch.float32))
    for start in range(0, n_r, chunk_size):
        chunk = slice(start, start + chunk_size)
        args = (rows_s[..., chunk], cols_s, rows_t[..., chunk], cols_t, tau)
        if needs_grad and n_r > chunk_size:
            total = total + checkpoint(_kl_rows_sum, *args, use_reentrant=False)
        else:
            total = total + _kl_rows_sum(*args)
    return (total * (tau**2 / (b * n_r))).to(rows_s.dtype)


def correlation_kl_explicit(rows_s: Tensor, cols_s: Tensor, rows_t: Tensor, cols_t: Tensor,
                            tau: float = 1.0) -> Tensor:
    """Reference of :func:`correlation_kl` that materialises the full affinities at once."""
    _check_student_teacher(rows_s, cols_s, rows_t, cols_t)
    log_p_s = F.log_softmax(torch.bmm(rows_s.transpose(1, 2), cols_s) / tau, dim=-1)
    log_p_t = F.log_softmax(torch.bmm(rows_t.transpose(1, 2), cols_t) / tau, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)
    return kl.mean() * tau**2


def self_correlation_kl(x_s: Tensor, x_t: Tensor, tau: float = 1.0,
                        chunk_size: int = 1024) -> Tensor:
    """KL distance between the rows of ``X_s^T X_s`` and ``X_t^T X_t`` (chunked)."""
    return correlation_kl(x_s, x_s, x_t, x_t, tau, chunk_size)


def self_correlation_kl_explicit(x_s: Tensor, x_t: Tensor, tau: float = 1.0) -> Tensor:
    """Explicit reference of :func:`self_correlation_kl`."""
    return correlation_kl_explicit(x_s, x_s, x_t, x_t, tau)


def cross_correlation_kl(x1_s: Tensor, x2_s: Tensor, x1_t: Tensor, x2_t: Tensor,
                         tau: float = 1.0, chunk_size: int = 1024) -> Tensor:
    """KL distance between the rows of ``X1_s^T X2_s`` and ``X1_t^T X2_t`` (chunked)."""
    return correlation_kl(x1_s, x2_s, x1_t, x2_t, tau, chunk_size)


def cross_correlation_kl_explicit(x1_s: Tensor, x2_s: Tensor, x1_t: Tensor, x2_t: Tensor,
                                  tau: float = 1.0) -> Tensor:
    """Explicit reference of :func:`cross_correlation_kl`."""
    return correlation_kl_explicit(x1_s, x2_s, x1_t, x2_t, tau)


def global_correlation_kl(x_s: Tensor, x_t: Tensor, tau: float = 1.0,
                          chunk_size: int = 1024) -> Tensor:
    """KL distance between the rows of the batch-wide ``BN x BN`` affinities (chunked)."""
    return self_correlation_kl(batch_to_positions(x_s), batch_to_positions(x_t), tau,
                               chunk_size)


def global_correlation_kl_explicit(x_s: Tensor, x_t: Tensor, tau: float = 1.0) -> Tensor:
    """Explicit reference of :func:`global_correlation_kl`."""
    return self_correlation_kl_explicit(batch_to_positions(x_s), batch_to_positions(x_t), tau)


# ---------------------------------------------------------------------------------------------
# Registered loss modules
# ---------------------------------------------------------------------------------------------


class BaseCorrelationLoss(nn.Module):
    """Shared options and feature preparation of the correlation losses.

    Args:
        loss_weight (float): Multiplier of the loss.
        normalize (bool): L2-normalise every position vector over the channels.
        pool_size (int, optional): Adaptive-average-pool maps larger than this (per side).
        distance (str): ``'mse'`` (squared Frobenius distance, Gram path) or ``'kl'`` (row-wise
            KL divergence of softmaxed affinities, chunked).
        tau (float): Softmax temperature of ``distance='kl'`` (unused by ``'mse'``).
        chunk_size (int): Rows per chunk of ``distance='kl'`` (unused by ``'mse'``).
        sample_pixels (int, optional): Use only this many randomly chosen positions (the same
            for student and teacher, drawn with the global RNG by ``torch.randperm``) for either
            distance. ``None`` uses all positions.
        resize_mode (str): ``'bilinear'`` resizes student maps to the teacher's size; ``'error'``
            raises on a spatial mismatch.
        gram_dtype (torch.dtype | str, optional): Dtype of the Gram products of ``'mse'``;
            ``None`` keeps the input dtype.
        loss_name (str): Key of the loss in the loss dict; must start with ``'loss_'`` for
            MMEngine to add it to the total loss.
    """

    default_loss_name = 'loss_corr'

    def __init__(self, loss_weight: float = 1.0, normalize: bool = True,
                 pool_size: Optional[int] = None, distance: str = 'mse', tau: float = 1.0,
                 chunk_size: int = 1024, sample_pixels: Optional[int] = None,
                 resize_mode: str = 'bilinear', gram_dtype: DTypeLike = torch.float64,
                 loss_name: Optional[str] = None) -> None:
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f'distance must be one of {DISTANCES}, got {distance!r}')
        if not tau > 0:
            raise ValueError(f'tau must be > 0, got {tau}')
        for name, value in (('pool_size', pool_size), ('chunk_size', chunk_size),
                            ('sample_pixels', sample_pixels)):
            if value is None and name != 'chunk_size':
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f'resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}')
        loss_name = loss_name or self.default_loss_name
        if not loss_name.startswith('loss_'):
            raise ValueError(f"loss_name must start with 'loss_', got {loss_name!r}")
        self.loss_weight = float(loss_weight)
        self.normalize = normalize
        self.pool_size = pool_size
        self.distance = distance
        self.tau = float(tau)
        self.chunk_size = chunk_size
        self.sample_pixels = sample_pixels
        self.resize_mode = resize_mode
        self.gram_dtype = resolve_dtype(gram_dtype)
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        """Key of this loss in the loss dict."""
        return self._loss_name

    def extra_repr(self) -> str:
        return (f'loss_weight={self.loss_weight}, distance={self.distance!r}, '
                f'normalize={self.normalize}, pool_size={self.pool_size}, tau={self.tau}, '
                f'sample_pixels={self.sample_pixels}, resize_mode={self.resize_mode!r}')

    def prepare(self, feat_s: Tensor, feat_t: Tensor) -> Tuple[Tensor, Tensor]:
        """Check, resize, detach (teacher), pool, flatten and normalise one map pair.

        Args:
            feat_s (Tensor): Student map ``(B, C_s, H_s, W_s)``.
            feat_t (Tensor): Teacher map ``(B, C_t, H_t, W_t)``.

        Returns:
            tuple[Tensor, Tensor]: ``(B, C_s, N)`` and ``(B, C_t, N)``.
        """
        for name, f in (('student', feat_s), ('teacher', feat_t)):
            if f.dim() != 4:
                raise ValueError(f'{name} feature map must be (B, C, H, W), got '
                                 f'{tuple(f.shape)}')
        if feat_s.shape[0] != feat_t.shape[0]:
            raise ValueError(f'batch sizes differ: student {tuple(feat_s.shape)} vs teacher '
                             f'{tuple(feat_t.shape)}')
        cache = _active_preparation_cache()
        key = (id(feat_s), id(feat_t), self.resize_mode, self.normalize, self.pool_size)
        if cache is not None and key in cache:
            return cache[key][1]
        resized = match_spatial(feat_s, feat_t, self.resize_mode)
        prepared = (flatten_features(resized, self.normalize, self.pool_size),
                    flatten_features(feat_t.detach(), self.normalize, self.pool_size))
        if cache is not None:
            # The inputs are kept alive with the entry so that their ids cannot be reused.
            cache[key] = ((feat_s, feat_t), prepared)
        return prepared

    def distance_fn(self, rows_s: Tensor, cols_s: Tensor, rows_t: Tensor,
                    cols_t: Tensor) -> Tensor:
        """The configured distance between ``R_s^T K_s`` and ``R_t^T K_t``."""
        if self.distance == 'mse':
            return correlation_mse(rows_s, cols_s, rows_t, cols_t, self.gram_dtype)
        return correlation_kl(rows_s, cols_s, rows_t, cols_t, self.tau, self.chunk_size)


@MODELS.register_module()
class SelfCorrelationLoss(BaseCorrelationLoss):
    """Self-correlation distillation: relations between the positions of one image.

    Compares ``A = X^T X`` (``N x N`` per sample) of student and teacher. See
    :class:`BaseCorrelationLoss` for the arguments.
    """

    default_loss_name = 'loss_self_corr'

    def forward(self, feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            feat_s (Tensor): Student map ``(B, C_s, H, W)``.
            feat_t (Tensor): Teacher map ``(B, C_t, H', W')`` (treated as a constant).

        Returns:
            Tensor: Weighted scalar loss.
        """
        x_s, x_t = self.prepare(feat_s, feat_t)
        x_s, x_t = sample_positions([x_s, x_t], self.sample_pixels)
        return self.loss_weight * self.distance_fn(x_s, x_s, x_t, x_t)


@MODELS.register_module()
class CrossCorrelationLoss(BaseCorrelationLoss):
    """Cross-correlation distillation: relations between the two dates of a pair.

    Compares ``M = X_1^T X_2`` (``N x N`` per pair) of student and teacher; rows are t1
    positions, columns t2 positions. See :class:`BaseCorrelationLoss` for the arguments.
    """

    default_loss_name = 'loss_cross_corr'

    def forward(self, s_t1: Tensor, s_t2: Tensor, t_t1: Tensor, t_t2: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            s_t1 (Tensor): Student map of the t1 images ``(B, C_s, H, W)``.
            s_t2 (Tensor): Student map of the t2 images ``(B, C_s, H, W)``.
            t_t1 (Tensor): Teacher map of the t1 images ``(B, C_t, H', W')`` (constant).
            t_t2 (Tensor): Teacher map of the t2 images ``(B, C_t, H', W')`` (constant).

        Returns:
            Tensor: Weighted scalar loss.
        """
        for model, a, b in (('student', s_t1, s_t2), ('teacher', t_t1, t_t2)):
            if a.shape != b.shape:
                raise ValueError(f'{model} t1 and t2 maps must have the same shape, got '
                                 f'{tuple(a.shape)} and {tuple(b.shape)}')
        x1_s, x1_t = self.prepare(s_t1, t_t1)
        x2_s, x2_t = self.prepare(s_t2, t_t2)
        x1_s, x2_s, x1_t, x2_t = sample_positions([x1_s, x2_s, x1_t, x2_t], self.sample_pixels)
        return self.loss_weight * self.distance_fn(x1_s, x2_s, x1_t, x2_t)


@MODELS.register_module()
class GlobalCorrelationLoss(BaseCorrelationLoss):
    """Global correlation distillation: relations between all positions of all images.

    Stacks the batch along the positions (``X_all`` is ``C x BN``) and compares
    ``K = X_all^T X_all``. With a batch of one it equals :class:`SelfCorrelationLoss`.
    ``sample_pixels`` samples from all ``B N`` positions. See :class:`BaseCorrelationLoss` for
    the arguments.
    """

    default_loss_name = 'loss_global_corr'

    def forward(self, feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            feat_s (Tensor): Student map ``(B, C_s, H, W)``.
            feat_t (Tensor): Teacher map ``(B, C_t, H', W')`` (treated as a constant).

        Returns:
            Tensor: Weighted scalar loss.
        """
        x_s, x_t = self.prepare(feat_s, feat_t)
        x_s, x_t = sample_positions([batch_to_positions(x_s), batch_to_positions(x_t)],
                                    self.sample_pixels)
        return self.loss_weight * self.distance_fn(x_s, x_s, x_t, x_t)
