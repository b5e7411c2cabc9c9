"""Options shared by the correlation losses and the distances they all use."""
from typing import Optional, Tuple

import torch
from torch import Tensor

from .base_distill_loss import BaseDistillLoss
from .correlation import (DISTANCES, DTypeLike, FeaturePreparation, PreparedPair,
                          correlation_kl, correlation_mse, pair_correlation_mse, prepare_pair,
                          resolve_dtype, sample_positions)

CLASS_BALANCE_MODES = ('rows', 'pairs')


class BaseCorrelationLoss(BaseDistillLoss):
    """Shared options, feature preparation and distances of the correlation losses.

    A loss is called either on raw feature maps (``forward``: it prepares them itself) or on
    pairs a distiller has already prepared with :attr:`preparation` (``forward_prepared``).

    Args:
        loss_weight (float): Multiplier of the loss (``>= 0``).
        normalize (bool): L2-normalise every position vector over the channels.
        pool_size (int, optional): Adaptive-average-pool maps larger than this (per side).
        distance (str): ``'mse'`` (squared Frobenius distance, Gram path) or ``'kl'`` (row-wise
            KL divergence of softmaxed affinities, chunked).
        tau (float): Softmax temperature of ``distance='kl'`` (unused by ``'mse'``).
        chunk_size (int): Rows per chunk of ``distance='kl'`` (unused by ``'mse'``).
        sample_pixels (int, optional): Use only this many randomly chosen positions per image
            (the same for student and teacher and every image of the batch, drawn with the
            global RNG by ``torch.randperm``) for either distance. ``None`` uses all positions.
        resize_mode (str): ``'bilinear'`` resizes student maps to the teacher's size; ``'error'``
            raises on a spatial mismatch.
        gram_dtype (torch.dtype | str, optional): Least dtype of the Gram products of
            ``'mse'`` (default float32; wider inputs keep theirs, see
            :func:`~hicd_mm.models.losses.correlation.accumulation_dtype`); ``None`` keeps
            the input dtype; ``'float64'`` for exact values when student ~ teacher.
        class_balance (str, optional): Change-aware weighting from the ground truth resized to
            the feature grid (the loss then needs ``label``): ``'rows'`` weights every affinity
            row so that changed and unchanged positions carry half of the total each;
            ``'pairs'`` (``'mse'`` only) weights every entry ``(i, j)`` by ``w_i w_j``.
            ``None`` (default): uniform.
        ignore_index (int): Label value without a class (for ``class_balance``).
        loss_name (str): Key of the loss in the loss dict; must start with ``'loss_'`` for
            MMEngine to add it to the total loss.
    """

    default_loss_name = 'loss_corr'

    def __init__(self, loss_weight: float = 1.0, normalize: bool = True,
                 pool_size: Optional[int] = None, distance: str = 'mse', tau: float = 1.0,
                 chunk_size: int = 1024, sample_pixels: Optional[int] = None,
                 resize_mode: str = 'bilinear', gram_dtype: DTypeLike = torch.float32,
                 class_balance: Optional[str] = None, ignore_index: int = 255,
                 loss_name: Optional[str] = None) -> None:
        super().__init__(loss_weight, loss_name)
        if distance not in DISTANCES:
            raise ValueError(f'distance must be one of {DISTANCES}, got {distance!r}')
        if not tau > 0:
            raise ValueError(f'tau must be > 0, got {tau}')
        for name, value in (('chunk_size', chunk_size), ('sample_pixels', sample_pixels)):
            if value is None and name != 'chunk_size':
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        if class_balance is not None and class_balance not in CLASS_BALANCE_MODES:
            raise ValueError(f'class_balance must be None or one of {CLASS_BALANCE_MODES}, '
                             f'got {class_balance!r}')
        if class_balance == 'pairs' and distance == 'kl':
            raise ValueError("class_balance='pairs' needs distance='mse' (a softmax row has no "
                             "per-column weights); use class_balance='rows'")
        self.preparation = FeaturePreparation(normalize, pool_size, resize_mode)
        self.distance = distance
        self.tau = float(tau)
        self.chunk_size = chunk_size
        self.sample_pixels = sample_pixels
        self.gram_dtype = resolve_dtype(gram_dtype)
        self.class_balance = class_balance
        self.ignore_index = ignore_index

    @property
    def requires_label(self) -> bool:
        """Whether ``forward``/``forward_prepared`` need the ground-truth change label."""
        return self.class_balance is not None

    def extra_repr(self) -> str:
        p = self.preparation
        return (f'loss_weight={self.loss_weight}, distance={self.distance!r}, '
                f'normalize={p.normalize}, pool_size={p.pool_size}, tau={self.tau}, '
                f'sample_pixels={self.sample_pixels}, resize_mode={p.resize_mode!r}, '
                f'class_balance={self.class_balance!r}')

    def forward(self, feat_s: Tensor, feat_t: Tensor, label: Optional[Tensor] = None) -> Tensor:
        """Compute the loss from one raw (student, teacher) map pair (single-map losses;
        :class:`CrossCorrelationLoss` takes both dates instead).

        Args:
            feat_s (Tensor): Student map ``(B, C_s, H, W)``.
            feat_t (Tensor): Teacher map ``(B, C_t, H', W')`` (treated as a constant).
            label (Tensor, optional): Ground truth ``(B, [1,] H, W)`` for ``class_balance``.

        Returns:
            Tensor: Weighted scalar loss.
        """
        return self.forward_prepared(self.prepare(feat_s, feat_t), label)

    def forward_prepared(self, pair: PreparedPair, label: Optional[Tensor] = None) -> Tensor:
        """Compute the loss from a pair prepared with :attr:`preparation`."""
        raise NotImplementedError

    def prepare(self, feat_s: Tensor, feat_t: Tensor) -> PreparedPair:
        """Prepare one raw (student, teacher) map pair with this loss's options."""
        return prepare_pair(feat_s, feat_t, self.preparation)

    def position_weights(self, pair: PreparedPair, label: Optional[Tensor]) -> Optional[Tensor]:
        """Class-balancing weights ``(B, N)`` of the pair's positions, or ``None``."""
        if self.class_balance is None:
            return None
        if label is None:
            raise ValueError(f'{type(self).__name__}(class_balance={self.class_balance!r}) '
                             'needs the ground-truth change label')
        if label.shape[0] != pair.student.shape[0]:
            raise ValueError(f'label batch size {label.shape[0]} != feature batch size '
                             f'{pair.student.shape[0]}')
        # Memoised on the pair: the change-aware terms of one pair share the weights tensor.
        return pair.position_weights(label, self.ignore_index)

    def sample(self, x_s: Tensor, x_t: Tensor,
               weights: Optional[Tensor]) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        """The same random positions of ``(B, C, N)`` features and ``(B, N)`` weights.

        Without ``sample_pixels`` the inputs come back as they are (the same tensors), so the
        terms can still share the pair's Gram matrices (:meth:`uses_pair_grams`).
        """
        if self.sample_pixels is None:
            return x_s, x_t, weights
        if weights is None:
            x_s, x_t = sample_positions([x_s, x_t], self.sample_pixels)
            return x_s, x_t, None
        x_s, x_t, w = sample_positions([x_s, x_t, weights[:, None]], self.sample_pixels)
        return x_s, x_t, w[:, 0]

    def uses_pair_grams(self, pair: PreparedPair, x_s: Tensor, x_t: Tensor) -> bool:
        """Whether this call's distance can take the pair's shared Gram matrices.

        True for ``distance='mse'`` on all positions of the pair: ``x_s`` and ``x_t`` (after
        :meth:`sample`) are the pair's own tensors. The value is then computed from
        :meth:`PreparedPair.grams` (weighted ones with the pair's memoised position weights),
        which every such term on the pair shares.

        Args:
            pair (PreparedPair): The prepared pair of this call.
            x_s (Tensor): Student features after :meth:`sample`.
            x_t (Tensor): Teacher features after :meth:`sample`.

        Returns:
            bool: Whether the shared Gram matrices give this call's value.
        """
        return self.distance == 'mse' and x_s is pair.student and x_t is pair.teacher

    def shared_pair_mse(self, pair: PreparedPair, weights: Optional[Tensor],
                        cross_image: bool = False) -> Tensor:
        """:func:`pair_correlation_mse` of the pair with this loss's dtype and weighting."""
        return pair_correlation_mse(pair, self.gram_dtype, cross_image, weights,
                                    self.class_balance or 'rows')

    def self_distance(self, x_s: Tensor, x_t: Tensor, weights: Optional[Tensor]) -> Tensor:
        """Distance of ``X_s^T X_s`` and ``X_t^T X_t`` (``(B, C, N)``), optionally weighted."""
        if self.distance == 'kl':
            return correlation_kl(x_s, x_s, x_t, x_t, self.tau, self.chunk_size, weights)
        if weights is None:
            return correlation_mse(x_s, x_s, x_t, x_t, self.gram_dtype)
        root = weights.sqrt()[:, None].to(x_s.dtype)
        r_s, r_t = x_s * root, x_t * root
        if self.class_balance == 'pairs':
            return correlation_mse(r_s, r_s, r_t, r_t, self.gram_dtype)
        return correlation_mse(r_s, x_s, r_t, x_t, self.gram_dtype)

    def pair_distance(self, rows_s: Tensor, cols_s: Tensor, rows_t: Tensor,
                      cols_t: Tensor) -> Tensor:
        """The configured distance between ``R_s^T K_s`` and ``R_t^T K_t``."""
        if self.distance == 'mse':
            return correlation_mse(rows_s, cols_s, rows_t, cols_t, self.gram_dtype)
        return correlation_kl(rows_s, cols_s, rows_t, cols_t, self.tau, self.chunk_size)
