"""Correlation maths of HiCD on prepared maps: the preparation step and the affinities.

**Preparation.** A distiller records student and teacher maps and brings each pair into the
form the correlation maths needs -- student resized to the teacher grid, teacher detached,
average-pooled to at most ``pool_size`` per side, flattened to ``(B, C, N)`` and L2-normalised
per position (:func:`prepare_pair`) -- and hands the prepared pair to every loss that asked for
those options (the role of mmrazor's connectors). A map used by several terms is therefore
prepared once per option set, and what a loss receives is visible in the call. Change-aware
terms also get class-balancing weights of the positions, computed from the ground truth resized
to the prepared grid (:func:`class_balanced_position_weights`).

**Affinities.** The student does not imitate the teacher's features themselves but the
*correlations* between feature vectors: within one image (self), between the two dates of one
pair (cross) and between positions of *different* images of the batch (cross-image, the
"global" term). Channel counts of student and teacher may differ because only
position-by-position affinities are compared.

Notation (see ``docs/method.md``): prepared features ``X`` have shape ``(B, C, N)``. Affinity
matrices such as ``A = X^T X`` are ``N x N``; the squared-error distances are evaluated through
``C x C`` Gram matrices instead, so their memory is ``O(C^2)``, not ``O(N^2)``; every
squared-error term on all positions of a prepared pair -- self, cross-image, the cross term of
the two dates, and the change-aware (weighted) ones -- shares its Gram matrices
(:meth:`PreparedPair.grams`, :func:`weighted_pair_grams`). The row-softmax KL distance goes
through chunks of rows. The explicit ``N x N`` references live in :mod:`.correlation_reference`.
"""
import functools
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import checkpoint

# ---------------------------------------------------------------------------------------------
# Preparation: recorded (student, teacher) map pair -> (B, C, N) on one grid
# ---------------------------------------------------------------------------------------------


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


@dataclass(frozen=True, eq=False)
class PreparedPair:
    """A prepared (student, teacher) pair, and what is computed from it once per step.

    A pair lives for one step (the distiller prepares it and hands it to every loss with its
    options). The squared-error terms of the full pair -- self, cross-image, and the cross term
    between the two dates' pairs -- are all built on the same per-sample Gram matrices;
    :meth:`grams` computes them on the first request and returns the same tensors to every
    later one, so they are computed once and their backward pass runs once with the sum of the
    terms' gradients. The change-aware terms share their position weights
    (:meth:`position_weights`) and the Grams of the weighted rows the same way. The memos are
    fields of this object (no global cache): they go away with the pair.

    Attributes:
        student (Tensor): ``(B, C_s, N)``, differentiable.
        teacher (Tensor): ``(B, C_t, N)``, detached.
        size (tuple[int, int]): The grid ``(H, W)`` of the ``N = H * W`` positions.
    """

    student: Tensor
    teacher: Tensor
    size: Tuple[int, int]
    _grams: Dict[Tuple[torch.dtype, bool, Optional[int]],
                 Tuple[Optional[Tensor], Tuple[Tensor, Tensor, Tensor]]] = field(
        default_factory=dict, init=False, repr=False)
    _weights: Dict[int, Tuple[Tensor, Tensor]] = field(default_factory=dict, init=False,
                                                       repr=False)

    def grams(self, dtype: torch.dtype,
              weights: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """The per-sample Gram matrices of the full pair in ``dtype``, memoised on the pair.

        ``G_ss = X_s X_s^T``, ``G_tt = X_t X_t^T`` and ``G_st = X_s X_t^T`` of
        :attr:`student` ``X_s`` and :attr:`teacher` ``X_t`` (see :func:`pair_grams`); with
        ``weights`` ``w`` the same of the weighted rows ``X diag(sqrt(w))``, i.e.
        ``X diag(w) X^T`` (:func:`weighted_pair_grams`, built on the plain ones where that is
        cheaper). The first call computes them; later calls return the same tensors,
        so every loss built on them shares one Gram product and one backward pass (autograd
        sums the gradients flowing into them). The memo is keyed by the dtype, the weights
        tensor (its identity: pass the tensor :meth:`position_weights` returned) and whether
        gradients are enabled, so Grams computed under ``torch.no_grad()`` are never reused
        where a gradient is needed.

        Args:
            dtype (torch.dtype): Accumulation dtype (:func:`accumulation_dtype`).
            weights (Tensor, optional): ``(B, N)`` non-negative position weights.

        Returns:
            tuple[Tensor, Tensor, Tensor]: ``(B, C_s, C_s)``, ``(B, C_t, C_t)``,
            ``(B, C_s, C_t)`` in ``dtype``.
        """
        key = (dtype, torch.is_grad_enabled(), None if weights is None else id(weights))
        if key not in self._grams:
            if weights is None:
                grams = pair_grams(self.student, self.teacher, dtype)
            else:
                grams = weighted_pair_grams(self.student, self.teacher, weights, dtype,
                                            plain=lambda: self.grams(dtype))
            # The weights are kept with their Grams, so their id cannot be reused meanwhile.
            self._grams[key] = (weights, grams)
        return self._grams[key][1]

    def position_weights(self, label: Tensor, ignore_index: int = 255) -> Tensor:
        """Class-balancing weights of the pair's positions, memoised per label.

        :func:`class_balanced_position_weights` of ``label`` on the pair's grid; every
        change-aware term of the pair that passes the same ``label`` tensor gets the same
        weights tensor, and through it the same weighted Grams (:meth:`grams`).

        Args:
            label (Tensor): Ground truth ``(B, [1,] H, W)``.
            ignore_index (int): Label value without a class.

        Returns:
            Tensor: ``(B, N)`` float weights.
        """
        cached = self._weights.get(ignore_index)
        if cached is None or cached[0] is not label:
            cached = (label, class_balanced_position_weights(label, self.size, ignore_index))
            self._weights[ignore_index] = cached
        return cached[1]


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
    """The grid a ``height x width`` map is pooled to (unchanged if it fits).

    Args:
        height (int): Map height.
        width (int): Map width.
        pool_size (int, optional): Largest side kept; ``None``: no pooling.

    Returns:
        tuple[int, int]: ``(height, width)`` after adaptive average pooling.
    """
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
        x = l2_normalize_positions(x, eps)
    return x


def _inverse_norms(x: Tensor, eps: float) -> Tuple[Tensor, Tensor]:
    """``1 / max(||x_n||_2, eps)`` per position ``(B, 1, N)`` and where the norm is above ``eps``.

    Computed in at least float32: in float16 ``eps ** 2`` rounds to 0 and sums of squares
    over- or underflow (a zero vector would give ``0 * inf = NaN``).
    """
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    # rsqrt(max(||x||^2, eps^2)): a plain sum of squares over the channels is several times
    # faster on a CPU than linalg.vector_norm over dim 1.
    sq_norm = work.square().sum(dim=1, keepdim=True)
    unclamped = sq_norm >= eps * eps
    return sq_norm.clamp_min_(eps * eps).rsqrt_(), unclamped


class _L2NormalizePositions(torch.autograd.Function):
    """``y = x / max(||x||_2, eps)`` over dim 1 of ``(B, C, N)``, with a fused backward.

    ``dx = (dy - y <y, dy>) / ||x||`` where the norm is above ``eps`` and ``dy / eps`` where it
    is clamped; one full-size temporary instead of the five of autograd's graph of the same
    expression (on a CPU the allocations of full-size temporaries cost more than the
    arithmetic). Half-precision inputs are normalised in float32 and the result cast back.
    Not twice differentiable.
    """

    @staticmethod
    def forward(ctx, x: Tensor, eps: float) -> Tensor:
        inv_norm, unclamped = _inverse_norms(x, eps)
        y = (x * inv_norm).to(x.dtype)
        ctx.save_for_backward(y, inv_norm, unclamped)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: Tensor) -> Tuple[Tensor, None]:
        y, inv_norm, unclamped = ctx.saved_tensors
        if y.dtype != inv_norm.dtype:  # half precision: the projection in float32
            y, grad_in = y.to(inv_norm.dtype), grad_y.to(inv_norm.dtype)
        else:
            grad_in = grad_y
        along = torch.linalg.vecdot(y, grad_in, dim=1).unsqueeze(1) * unclamped
        grad_x = y * along
        torch.sub(grad_in, grad_x, out=grad_x)
        return grad_x.mul_(inv_norm).to(grad_y.dtype), None


def l2_normalize_positions(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Divide every position vector of ``(B, C, N)`` features by ``max(||x||_2, eps)``.

    A zero vector stays zero with a finite gradient, in every floating dtype (the norms of
    float16/bfloat16 inputs are taken in float32). Equals
    ``x * x.square().sum(1, keepdim=True).clamp_min(eps ** 2).rsqrt()`` in value and gradient
    (tested), with a cheaper backward pass (:class:`_L2NormalizePositions`).

    Args:
        x (Tensor): ``(B, C, N)``.
        eps (float): Lower bound of the norm.

    Returns:
        Tensor: ``(B, C, N)``, like ``x``.
    """
    if x.dim() != 3:
        raise ValueError(f'expected (B, C, N) features, got shape {tuple(x.shape)}')
    if not (torch.is_grad_enabled() and x.requires_grad):
        return (x * _inverse_norms(x, eps)[0]).to(x.dtype)
    return _L2NormalizePositions.apply(x, eps)


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
        size (tuple[int, int]): The grid ``(h, w)``. Along a dimension where the grid is
            finer than the label a cell takes the nearest label pixel; where it is coarser,
            the mean over its label pixels.
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
        # Per dimension: repeat the label where the grid is finer (nearest), then average
        # the label pixels of every cell where it is coarser.
        finer = (max(label.shape[-2], size[0]), max(label.shape[-1], size[1]))
        if finer != tuple(label.shape[-2:]):
            valid, changed = (F.interpolate(t, size=finer, mode='nearest')
                              for t in (valid, changed))
        if finer != tuple(size):
            valid, changed = (F.adaptive_avg_pool2d(t, size) for t in (valid, changed))
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


# ---------------------------------------------------------------------------------------------
# Affinities of prepared maps and their distances
# ---------------------------------------------------------------------------------------------


DISTANCES = ('mse', 'kl')
DTypeLike = Union[torch.dtype, str, None]


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
    """Accept ``torch.float32``, ``'float64'``/``'torch.float64'`` or ``None`` (input dtype)."""
    if dtype is None or isinstance(dtype, torch.dtype):
        out = dtype
    elif isinstance(dtype, str):
        out = getattr(torch, dtype.replace('torch.', ''), None)
    else:
        out = None
    if dtype is not None and not (isinstance(out, torch.dtype) and out.is_floating_point):
        raise ValueError(f'gram_dtype must be a floating torch dtype or None, got {dtype!r}')
    return out


def accumulation_dtype(gram_dtype: DTypeLike, *input_dtypes: torch.dtype) -> torch.dtype:
    """The dtype Gram products are accumulated in: ``gram_dtype`` or the inputs' if wider.

    ``gram_dtype`` is a floor, not a cast: float64 inputs (the references of the tests) keep
    float64 under the float32 default, float16/bfloat16 inputs are accumulated in float32.

    Args:
        gram_dtype (torch.dtype | str, optional): The floor; ``None`` keeps the inputs' dtype.
        *input_dtypes (torch.dtype): Dtypes of the inputs (student and teacher), at least one.

    Returns:
        torch.dtype: The widest of the floor and the inputs' dtypes.
    """
    dtype = functools.reduce(torch.promote_types, input_dtypes)
    floor = resolve_dtype(gram_dtype)
    return dtype if floor is None else torch.promote_types(floor, dtype)


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


# When inputs are converted to the accumulation dtype, positions per chunk are chosen so that
# one converted copy of a (B, C, chunk) slice holds about this many elements: no full-size
# converted copy is ever made.
GRAM_CHUNK_ELEMENTS = 1 << 18


def _position_chunks(b: int, c: int, n: int) -> List[slice]:
    step = max(128, GRAM_CHUNK_ELEMENTS // max(b * c, 1))
    return [slice(i, i + step) for i in range(0, n, step)]


def _without_autocast(fn: Callable) -> Callable:
    """Run ``fn`` with autocast off on the device of its first tensor argument.

    Under mixed precision (``--amp``) autocast would run ``bmm`` of float32 inputs in
    float16/bfloat16, below the accumulation dtype chosen here, and half-precision Gram
    entries overflow or lose the value of the nearly cancelling terms.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        like = next(a for a in (*args, *kwargs.values()) if isinstance(a, Tensor))
        with torch.autocast(device_type=like.device.type, enabled=False):
            return fn(*args, **kwargs)

    return wrapper


@_without_autocast
def _grams(x_s: Tensor, x_t: Tensor, dtype: torch.dtype) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-sample Gram matrices ``x_s x_s^T``, ``x_t x_t^T`` and ``x_s x_t^T`` in ``dtype``.

    Inputs of another dtype are accumulated over chunks of positions in one pass, so each
    chunk is converted to ``dtype`` once and no full-size converted copy exists; inputs
    already in ``dtype`` take one product over all positions.

    Args:
        x_s (Tensor): ``(B, C_s, N)``.
        x_t (Tensor): ``(B, C_t, N)``.
        dtype (torch.dtype): Accumulation dtype.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``(B, C_s, C_s)``, ``(B, C_t, C_t)``, ``(B, C_s, C_t)``.
    """
    if x_s.dtype == dtype and x_t.dtype == dtype:
        # Nothing to convert: one product over all positions (the chunks only bound the size
        # of converted copies, and many small products are slower than one).
        return (torch.bmm(x_s, x_s.transpose(1, 2)), torch.bmm(x_t, x_t.transpose(1, 2)),
                torch.bmm(x_s, x_t.transpose(1, 2)))
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


@_without_autocast
def _gram_sum(terms: Sequence[Tuple[Optional[Tensor], Tensor]], like: Tensor) -> Tensor:
    """``sum_i g_i x_i`` per sample (in chunks of positions when converting), like ``like``.

    Args:
        terms (Sequence[tuple[Tensor | None, Tensor]]): Pairs of a ``(B, C, C_i)`` matrix in the
            accumulation dtype (``None``: a zero term) and ``(B, C_i, N)`` features.
        like (Tensor): ``(B, C, N)``; the result has its shape and dtype (zeros if every
            matrix is ``None``).

    Returns:
        Tensor: ``(B, C, N)`` in ``like.dtype``.
    """
    terms = [(g, x) for g, x in terms if g is not None]
    if not terms:
        return torch.zeros_like(like)
    (g_0, x_0), rest = terms[0], terms[1:]
    dtype, out_dtype = g_0.dtype, like.dtype
    if out_dtype == dtype and all(x.dtype == dtype for _, x in terms):
        out = torch.bmm(g_0, x_0)
        for g, x in rest:
            out.baddbmm_(g, x)
        return out
    b, c, n = like.shape
    out = like.new_empty((b, c, n))
    for sl in _position_chunks(b, max([c] + [x.shape[1] for _, x in terms]), n):
        chunk = torch.bmm(g_0, x_0[..., sl].to(dtype))
        for g, x in rest:
            chunk.baddbmm_(g, x[..., sl].to(dtype))
        out[..., sl] = chunk
    return out


class _PairGrams(torch.autograd.Function):
    """``(x_s, x_t) -> (x_s x_s^T, x_t x_t^T, x_s x_t^T)`` per sample, with analytic backward.

    With incoming gradients ``dG_ss``, ``dG_tt``, ``dG_st``::

        dx_s = (dG_ss + dG_ss^T) x_s + dG_st x_t
        dx_t = (dG_tt + dG_tt^T) x_t + dG_st^T x_s

    Only the two inputs are kept between the passes, and only the inputs that need a gradient
    get one (the teacher usually does not). Several losses built on the same output tensors
    share this node, so autograd runs this backward once with the sum of their gradients.
    Not twice differentiable.
    """

    @staticmethod
    def forward(ctx, x_s: Tensor, x_t: Tensor,
                dtype: torch.dtype) -> Tuple[Tensor, Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x_s, x_t)
        return _grams(x_s, x_t, dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, d_ss: Optional[Tensor], d_tt: Optional[Tensor],
                 d_st: Optional[Tensor]) -> Tuple[Optional[Tensor], ...]:
        x_s, x_t = ctx.saved_tensors
        grad_s = grad_t = None
        if ctx.needs_input_grad[0]:
            sym = None if d_ss is None else d_ss + d_ss.transpose(1, 2)
            grad_s = _gram_sum([(sym, x_s), (d_st, x_t)], x_s)
        if ctx.needs_input_grad[1]:
            sym = None if d_tt is None else d_tt + d_tt.transpose(1, 2)
            cross = None if d_st is None else d_st.transpose(1, 2)
            grad_t = _gram_sum([(sym, x_t), (cross, x_s)], x_t)
        return grad_s, grad_t, None


def pair_grams(x_s: Tensor, x_t: Tensor, dtype: torch.dtype) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-sample Gram matrices of a student/teacher pair, differentiable (analytic backward).

    Args:
        x_s (Tensor): Student features ``(B, C_s, N)``.
        x_t (Tensor): Teacher features ``(B, C_t, N)``.
        dtype (torch.dtype): Accumulation dtype (:func:`accumulation_dtype`).

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``G_ss = x_s x_s^T`` ``(B, C_s, C_s)``,
        ``G_tt = x_t x_t^T`` ``(B, C_t, C_t)`` and ``G_st = x_s x_t^T`` ``(B, C_s, C_t)`` in
        ``dtype`` (see :class:`_PairGrams`).
    """
    _check_student_teacher(x_s, x_s, x_t, x_t)
    return _PairGrams.apply(x_s, x_t, dtype)


@_without_autocast
def weighted_pair_grams(x_s: Tensor, x_t: Tensor, weights: Tensor, dtype: torch.dtype,
                        plain: Optional[Callable[[], Tuple[Tensor, Tensor, Tensor]]] = None
                        ) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-sample Grams of weighted positions: ``X_s W X_s^T``, ``X_t W X_t^T``, ``X_s W X_t^T``.

    ``W = diag(w_b)`` per sample. Most positions of a change mask share one weight (every
    unchanged cell gets the same value), so with ``beta_b`` the most frequent weight of
    sample ``b`` and ``d = w_b - beta_b``, exactly::

        X W X^T = beta_b X X^T + X_K diag(d_K) X_K^T

    where ``K`` are the positions with ``d != 0`` (changed cells, cells on a change boundary,
    ignored cells): the first part is the plain Grams of the pair (``plain``, shared with the
    unweighted terms), the second costs ``O(C^2 K)`` instead of ``O(C^2 N)``. Where ``K`` is
    too large for that to be cheaper (more than 5/6 of ``N``, e.g. a label of isolated pixels
    pooled to a coarse grid), the Grams of ``X diag(sqrt(w))`` are computed directly.

    Args:
        x_s (Tensor): Student features ``(B, C_s, N)``.
        x_t (Tensor): Teacher features ``(B, C_t, N)``.
        weights (Tensor): ``(B, N)`` non-negative position weights.
        dtype (torch.dtype): Accumulation dtype (:func:`accumulation_dtype`).
        plain (callable, optional): Returns the plain Grams of ``(x_s, x_t)`` in ``dtype``
            (e.g. the pair's shared ones); default :func:`pair_grams`.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``(B, C_s, C_s)``, ``(B, C_t, C_t)``, ``(B, C_s, C_t)``
        in ``dtype``, differentiable w.r.t. the inputs that need it.
    """
    if weights.shape != (x_s.shape[0], x_s.shape[2]):
        raise ValueError(f'weights must be (B, N) = {(x_s.shape[0], x_s.shape[2])}, got '
                         f'{tuple(weights.shape)}')
    w = weights.to(dtype)
    base = torch.mode(w, dim=1).values
    delta = w - base[:, None]
    moved = delta != 0
    k = int(moved.sum(1).max()) if moved.numel() else 0
    n = x_s.shape[2]
    if 6 * k > 5 * n:
        # In the accumulation dtype: sqrt(w) rounded to a half-precision input's dtype
        # would cost the dense path the precision of the other one.
        root = weights.to(dtype).sqrt()[:, None]
        return pair_grams(x_s.to(dtype) * root, x_t.to(dtype) * root, dtype)
    grams = plain() if plain is not None else pair_grams(x_s, x_t, dtype)
    scale = base.view(-1, 1, 1)
    g_ss, g_tt, g_st = (scale * g for g in grams)
    if k == 0:
        return g_ss, g_tt, g_st
    # The moved positions of every sample first; past a sample's own count d is exactly 0.
    order = torch.argsort(moved.to(torch.uint8), dim=1, descending=True, stable=True)[:, :k]
    d = delta.gather(1, order)[:, None]

    def moved_columns(x: Tensor) -> Tensor:
        return x.gather(2, order[:, None].expand(-1, x.shape[1], -1)).to(dtype)

    xs_k, xt_k = moved_columns(x_s), moved_columns(x_t)
    xs_d = xs_k * d
    return (g_ss + torch.bmm(xs_d, xs_k.transpose(1, 2)),
            g_tt + torch.bmm(xt_k * d, xt_k.transpose(1, 2)),
            g_st + torch.bmm(xs_d, xt_k.transpose(1, 2)))


def _frobenius_inner(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample Frobenius inner product ``<a, b>_F``: ``(B, P, Q) x 2 -> (B,)``."""
    return (a * b).sum(dim=(1, 2))


def _others(g: Tensor) -> Tensor:
    """``O_b = sum_b' g_b' - g_b``: what pairs with sample ``b`` in the cross-image term."""
    return g.sum(0, keepdim=True) - g


def mse_from_grams(grams: Tuple[Tensor, Tensor, Tensor], n: int, out_dtype: torch.dtype,
                   cross_image: bool = False,
                   row_grams: Optional[Tuple[Tensor, Tensor, Tensor]] = None,
                   n_rows: Optional[int] = None) -> Tensor:
    """The squared-error distance of affinities ``R^T K`` from the Gram matrices of R and K.

    With ``(K_ss, K_tt, K_st)`` the Grams of the column features (``grams``) and
    ``(R_ss, R_tt, R_st)`` those of the row features (``row_grams``, by default the columns):

    Self (``cross_image=False``, :func:`correlation_mse`): per sample
    ``||R_s^T K_s - R_t^T K_t||_F^2 = <R_ss, K_ss> - 2 <R_st, K_st> + <R_tt, K_tt>``, clamped at
    0 (rounding can push the exactly non-negative value slightly below), summed and divided by
    ``B N_r N``. Cross-image (:func:`cross_image_correlation_mse`): the column Grams of sample
    ``b`` are replaced by the sum of the other samples' (``O_b = sum_b' K_b' - K_b``), the
    total is clamped at 0 and divided by ``B (B - 1) N_r N``; needs ``B >= 2`` (the callers
    return 0 for a batch of one). Ordinary differentiable operations: the gradient reaches the
    features through the Grams' own backward pass (:class:`_PairGrams`).

    Args:
        grams (tuple[Tensor, Tensor, Tensor]): ``(K_ss, K_tt, K_st)`` of :func:`pair_grams`
            on the columns.
        n (int): Column positions ``N`` per sample.
        out_dtype (torch.dtype): Dtype of the result (the student's).
        cross_image (bool): The affinities between different images instead of within one.
        row_grams (tuple[Tensor, Tensor, Tensor], optional): ``(R_ss, R_tt, R_st)`` of the
            rows; ``None``: the rows are the columns.
        n_rows (int, optional): Row positions ``N_r`` per sample (default ``n``).

    Returns:
        Tensor: Scalar loss in ``out_dtype``.
    """
    k_ss, k_tt, k_st = grams
    r_ss, r_tt, r_st = grams if row_grams is None else row_grams
    n_r = n if n_rows is None else n_rows
    b = k_ss.shape[0]
    if not cross_image:
        per_sample = (_frobenius_inner(r_ss, k_ss) - 2 * _frobenius_inner(r_st, k_st)
                      + _frobenius_inner(r_tt, k_tt))
        return (per_sample.clamp_min(0).sum() / (b * n_r * n)).to(out_dtype)
    if b < 2:
        raise ValueError('the cross-image distance needs a batch of at least two samples')
    per_sample = (_frobenius_inner(r_ss, _others(k_ss))
                  - 2 * _frobenius_inner(r_st, _others(k_st))
                  + _frobenius_inner(r_tt, _others(k_tt)))
    return (per_sample.sum().clamp_min(0) / (b * (b - 1) * n_r * n)).to(out_dtype)


def correlation_mse(rows_s: Tensor, cols_s: Tensor, rows_t: Tensor, cols_t: Tensor,
                    gram_dtype: DTypeLike = torch.float32) -> Tensor:
    """Mean squared difference of the affinities ``R^T K`` without forming them.

    With ``S = R_s^T K_s`` and ``T = R_t^T K_t`` (each ``N_r x N_k`` per sample)::

        ||S - T||_F^2 = <R_s R_s^T, K_s K_s^T> - 2 <R_s R_t^T, K_s K_t^T> + <R_t R_t^T, K_t K_t^T>

    where every product is a ``C x C`` Gram matrix accumulated in ``gram_dtype`` (over chunks
    of positions when the inputs are converted). When ``cols is rows`` for both student and
    teacher, the first and last terms are squared Frobenius norms and each Gram matrix is
    computed once (:func:`pair_grams`, :func:`mse_from_grams`). Memory beyond the inputs
    and their gradients is ``O(C^2)`` plus one chunk; the backward pass is analytic (see
    :class:`_PairGrams`).

    Args:
        rows_s (Tensor): Student row features ``(B, C_s, N_r)``.
        cols_s (Tensor): Student column features ``(B, C_s, N_k)``.
        rows_t (Tensor): Teacher row features ``(B, C_t, N_r)``.
        cols_t (Tensor): Teacher column features ``(B, C_t, N_k)``.
        gram_dtype (torch.dtype | str, optional): Least dtype of the Gram products
            (:func:`accumulation_dtype`; default float32). The three terms nearly cancel when
            student ~ teacher: float32 is exact to ~1e-7 (relative) at the loss values of
            training (0.05-0.1), to ~4e-5 at 2e-4 and ~1e-3 at 2e-6; float64 is exact there
            too, at 2-5x the cost on CPU (and far more on most GPUs).

    Returns:
        Tensor: ``sum_b max(||S_b - T_b||_F^2, 0) / (B N_r N_k)`` in ``rows_s.dtype``.
    """
    _check_student_teacher(rows_s, cols_s, rows_t, cols_t)
    dtype = accumulation_dtype(gram_dtype, rows_s.dtype, rows_t.dtype)
    cols = _PairGrams.apply(cols_s, cols_t, dtype)
    # A tensor passed as rows and as columns still gets the sum of both gradients.
    rows = None if cols_s is rows_s and cols_t is rows_t else \
        _PairGrams.apply(rows_s, rows_t, dtype)
    return mse_from_grams(cols, cols_s.shape[2], rows_s.dtype, row_grams=rows,
                          n_rows=rows_s.shape[2])


def cross_image_correlation_mse(x_s: Tensor, x_t: Tensor,
                                gram_dtype: DTypeLike = torch.float32,
                                rows_s: Optional[Tensor] = None,
                                rows_t: Optional[Tensor] = None) -> Tensor:
    """Squared error of the affinities between positions of *different* images of the batch.

    With ``X_b`` the prepared features of sample ``b`` (rows ``R_b``, by default ``X_b``)::

        L = sum_{b != b'} ||R_{s,b}^T X_{s,b'} - R_{t,b}^T X_{t,b'}||_F^2 / (B (B - 1) N_r N)

    i.e. the off-diagonal blocks of the batch-wide ``BN x BN`` affinity; the diagonal blocks
    are the self term and are left out. Cost and memory are those of the self term (Gram
    path: :func:`mse_from_grams` with ``cross_image=True``). A batch of one has no such
    blocks: the loss is 0 (with a zero gradient).

    Args:
        x_s (Tensor): Student features ``(B, C_s, N)`` (the columns).
        x_t (Tensor): Teacher features ``(B, C_t, N)``.
        gram_dtype (torch.dtype | str, optional): See :func:`correlation_mse`.
        rows_s (Tensor, optional): Student row features ``(B, C_s, N_r)``, e.g. ``x_s``
            scaled by per-position weights; default ``x_s``.
        rows_t (Tensor, optional): Teacher row features; given together with ``rows_s``.

    Returns:
        Tensor: Scalar loss in ``x_s.dtype``.
    """
    if (rows_s is None) != (rows_t is None):
        raise ValueError('rows_s and rows_t must both be given or both be None')
    r_s = x_s if rows_s is None else rows_s
    r_t = x_t if rows_t is None else rows_t
    _check_student_teacher(r_s, x_s, r_t, x_t)
    b, n_r, n_k = x_s.shape[0], r_s.shape[2], x_s.shape[2]
    if b < 2:
        return (x_s.sum() + r_s.sum()) * 0
    dtype = accumulation_dtype(gram_dtype, x_s.dtype, x_t.dtype)
    rows = None if rows_s is None else _PairGrams.apply(r_s, r_t, dtype)
    return mse_from_grams(_PairGrams.apply(x_s, x_t, dtype), n_k, x_s.dtype, cross_image=True,
                          row_grams=rows, n_rows=n_r)


def batch_correlation_mse(x_s: Tensor, x_t: Tensor,
                          gram_dtype: DTypeLike = torch.float32) -> Tensor:
    """``||K_s - K_t||_F^2 / (B N)^2`` with ``K = X_all^T X_all``, all blocks of the batch.

    ``X_all`` is ``(C, B N)``, so its Gram matrix is ``sum_b X_b X_b^T``; the diagonal blocks of
    ``K`` are the per-image self affinities. With ``B = 1`` this is the self term.

    Args:
        x_s (Tensor): Student features ``(B, C_s, N)``.
        x_t (Tensor): Teacher features ``(B, C_t, N)``.
        gram_dtype (torch.dtype | str, optional): See :func:`correlation_mse`.

    Returns:
        Tensor: Scalar loss.
    """
    x_s, x_t = batch_to_positions(x_s), batch_to_positions(x_t)
    return correlation_mse(x_s, x_s, x_t, x_t, gram_dtype)


def pair_correlation_mse(pair: PreparedPair, gram_dtype: DTypeLike = torch.float32,
                         cross_image: bool = False, weights: Optional[Tensor] = None,
                         class_balance: str = 'rows') -> Tensor:
    """The self or cross-image squared-error distance of a full pair, on its shared Grams.

    For ``s, t = pair.student, pair.teacher`` it equals ``correlation_mse(s, s, t, t)`` (self)
    or ``cross_image_correlation_mse(s, t)`` (cross-image; 0 with a zero gradient for a batch
    of one, without computing Grams); with position ``weights`` and ``r = s sqrt(w)``
    (``class_balance='rows'``) ``correlation_mse(r_s, s, r_t, t)`` /
    ``cross_image_correlation_mse(s, t, rows_s=r_s, rows_t=r_t)``, and with
    ``class_balance='pairs'`` the same with ``r`` for the columns too. The Gram matrices come
    from :meth:`PreparedPair.grams`, so every term on the pair shares each Gram product (the
    unweighted ones, and the weighted ones of the same weights tensor) and its backward pass.

    Args:
        pair (PreparedPair): The prepared pair (all its positions).
        gram_dtype (torch.dtype | str, optional): See :func:`correlation_mse`.
        cross_image (bool): The affinities between different images instead of within one.
        weights (Tensor, optional): ``(B, N)`` position weights, from
            :meth:`PreparedPair.position_weights` so that the terms share them.
        class_balance (str): ``'rows'`` (weighted rows, plain columns) or ``'pairs'`` (both
            weighted); used with ``weights`` only.

    Returns:
        Tensor: Scalar loss in the student's dtype.
    """
    x_s = pair.student
    if cross_image and x_s.shape[0] < 2:
        return x_s.sum() * 0
    dtype = accumulation_dtype(gram_dtype, x_s.dtype, pair.teacher.dtype)
    rows = None
    if weights is None:
        cols = pair.grams(dtype)
    elif class_balance == 'pairs':
        cols = pair.grams(dtype, weights)
    elif class_balance == 'rows':
        rows, cols = pair.grams(dtype, weights), pair.grams(dtype)
    else:
        raise ValueError(f"class_balance must be 'rows' or 'pairs', got {class_balance!r}")
    return mse_from_grams(cols, x_s.shape[2], x_s.dtype, cross_image=cross_image,
                          row_grams=rows)


def date_pair_correlation_mse(pair_t1: PreparedPair, pair_t2: PreparedPair,
                              gram_dtype: DTypeLike = torch.float32) -> Tensor:
    """The cross term's squared-error distance of ``X_1^T X_2``, on the dates' shared Grams.

    Equals ``correlation_mse(s_1, s_2, t_1, t_2, gram_dtype)`` for the t1 pair's and the t2
    pair's tensors, but the row Grams are those of ``pair_t1`` and the column Grams those of
    ``pair_t2`` (:meth:`PreparedPair.grams`), the same tensors the self and cross-image terms
    of each date use: the cross term adds no Gram product of its own.

    Args:
        pair_t1 (PreparedPair): The prepared t1 pair (all positions).
        pair_t2 (PreparedPair): The prepared t2 pair, of the same shapes.
        gram_dtype (torch.dtype | str, optional): See :func:`correlation_mse`.

    Returns:
        Tensor: Scalar loss in the student's dtype.
    """
    x_s = pair_t1.student
    _check_student_teacher(x_s, pair_t2.student, pair_t1.teacher, pair_t2.teacher)
    dtype = accumulation_dtype(gram_dtype, x_s.dtype, pair_t1.teacher.dtype,
                               pair_t2.student.dtype, pair_t2.teacher.dtype)
    return mse_from_grams(pair_t2.grams(dtype), x_s.shape[2], x_s.dtype,
                          row_grams=pair_t1.grams(dtype))


# ---------------------------------------------------------------------------------------------
# KL distance over row-softmaxed affinities: chunked path
# ---------------------------------------------------------------------------------------------


@_without_autocast
def _kl_rows(rows_s: Tensor, cols_s: Tensor, rows_t: Tensor, cols_t: Tensor, tau: float,
             row_weights: Optional[Tensor], row_ids: Optional[Tensor],
             col_ids: Optional[Tensor]) -> Tensor:
    """``sum over samples and rows of w_i KL(softmax(T_i/tau) || softmax(S_i/tau))``.

    Entries whose row and column ids are equal are left out of both softmaxes (float32+).
    """
    dtype = torch.promote_types(rows_s.dtype, torch.float32)
    logit_s = torch.bmm(rows_s.transpose(1, 2).to(dtype), cols_s.to(dtype)) / tau
    logit_t = torch.bmm(rows_t.transpose(1, 2).to(dtype), cols_t.to(dtype)) / tau
    mask = None
    if row_ids is not None:
        mask = row_ids[:, :, None] == col_ids[:, None, :]
        logit_s = logit_s.masked_fill(mask, float('-inf'))
        logit_t = logit_t.masked_fill(mask, float('-inf'))
    log_p_s = F.log_softmax(logit_s, dim=-1)
    log_p_t = F.log_softmax(logit_t, dim=-1)
    if mask is not None:
        # Left-out entries have p = 0; zeroing both log-probabilities makes their term 0 * 0.
        log_p_s = log_p_s.masked_fill(mask, 0.)
        log_p_t = log_p_t.masked_fill(mask, 0.)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)
    if row_weights is not None:
        kl = kl * row_weights.to(dtype)
    return kl.sum()


def correlation_kl(rows_s: Tensor, cols_s: Tensor, rows_t: Tensor, cols_t: Tensor,
                   tau: float = 1.0, chunk_size: int = 1024,
                   row_weights: Optional[Tensor] = None, row_ids: Optional[Tensor] = None,
                   col_ids: Optional[Tensor] = None) -> Tensor:
    """Row-wise KL divergence of softmaxed affinities, computed ``chunk_size`` rows at a time.

    For every sample ``b`` and row ``i`` of the affinities ``S = R_s^T K_s`` and
    ``T = R_t^T K_t``: ``p_t = softmax(T[i] / tau)``, ``p_s = softmax(S[i] / tau)`` and the loss
    is ``tau^2 * mean_{b, i} w_{b,i} KL(p_t || p_s)`` (``w = 1`` by default).

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
        row_weights (Tensor, optional): ``(B, N_r)`` weight of every row's KL.
        row_ids (Tensor, optional): ``(B, N_r)`` integer group of every row; with ``col_ids``
            (``(B, N_k)``), entries of equal group are left out of the softmaxes (each row
            must keep at least one column).
        col_ids (Tensor, optional): See ``row_ids``.

    Returns:
        Tensor: Scalar loss in ``rows_s.dtype``.
    """
    _check_student_teacher(rows_s, cols_s, rows_t, cols_t)
    if tau <= 0:
        raise ValueError(f'tau must be > 0, got {tau}')
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
    if (row_ids is None) != (col_ids is None):
        raise ValueError('row_ids and col_ids must both be given or both be None')
    needs_grad = torch.is_grad_enabled() and any(
        t.requires_grad for t in (rows_s, cols_s, rows_t, cols_t))
    b, n_r = rows_s.shape[0], rows_s.shape[2]
    total = rows_s.new_zeros((), dtype=torch.promote_types(rows_s.dtype, torch.float32))
    for start in range(0, n_r, chunk_size):
        chunk = slice(start, start + chunk_size)
        args = (rows_s[..., chunk], cols_s, rows_t[..., chunk], cols_t, tau,
                None if row_weights is None else row_weights[:, chunk],
                None if row_ids is None else row_ids[:, chunk], col_ids)
        if needs_grad and n_r > chunk_size:
            total = total + checkpoint(_kl_rows, *args, use_reentrant=False)
        else:
            total = total + _kl_rows(*args)
    return (total * (tau**2 / (b * n_r))).to(rows_s.dtype)


def cross_image_correlation_kl(x_s: Tensor, x_t: Tensor, tau: float = 1.0,
                               chunk_size: int = 1024,
                               row_weights: Optional[Tensor] = None) -> Tensor:
    """Row-softmax KL of the affinities of every position to the positions of *other* images.

    CIRKD-style cross-image pixel relations: the batch is stacked along the positions
    (``X_all`` is ``C x BN``), and every row ``(b, i)`` of ``K = X_all^T X_all`` becomes a
    distribution over the ``(B - 1) N`` positions of the other images (its own image's block is
    left out). ``L = tau^2 * mean_{b, i} w_{b,i} KL(p_t || p_s)``. Memory
    ``O(chunk_size * B N)``; bound ``N`` with pooling or position sampling. A batch of one has
    no other image: the loss is 0.

    Args:
        x_s (Tensor): Student features ``(B, C_s, N)``.
        x_t (Tensor): Teacher features ``(B, C_t, N)``.
        tau (float): Softmax temperature (CIRKD uses 0.1).
        chunk_size (int): Rows per chunk.
        row_weights (Tensor, optional): ``(B, N)`` weight of every row.

    Returns:
        Tensor: Scalar loss.
    """
    b, _, n = x_s.shape
    if b < 2:
        return x_s.sum() * 0
    ids = torch.arange(b, device=x_s.device).repeat_interleave(n)[None]
    all_s, all_t = batch_to_positions(x_s), batch_to_positions(x_t)
    weights = None if row_weights is None else row_weights.reshape(1, b * n)
    return correlation_kl(all_s, all_s, all_t, all_t, tau, chunk_size, weights, ids, ids)
