"""Explicit references of the correlation distances: they materialise every affinity matrix.

Slow and ``O(N^2)`` in memory on purpose: the fast paths of :mod:`.correlation` are tested
against them on random inputs, and ``tools/benchmark/bench_correlation.py`` times both.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .correlation import _check_student_teacher, batch_to_positions


def correlation_mse_explicit(rows_s: Tensor, cols_s: Tensor, rows_t: Tensor,
                             cols_t: Tensor) -> Tensor:
    """Reference of :func:`~.correlation.correlation_mse` with the ``N_r x N_k`` affinities.

    Returns:
        Tensor: ``sum_b ||R_s^T K_s - R_t^T K_t||_F^2 / (B N_r N_k)`` in the input dtype.
    """
    _check_student_teacher(rows_s, cols_s, rows_t, cols_t)
    aff_s = torch.bmm(rows_s.transpose(1, 2), cols_s)
    aff_t = torch.bmm(rows_t.transpose(1, 2), cols_t)
    return F.mse_loss(aff_s, aff_t, reduction='mean')


def batch_correlation_mse_explicit(x_s: Tensor, x_t: Tensor) -> Tensor:
    """Reference of :func:`~.correlation.batch_correlation_mse` (``BN x BN`` affinity)."""
    x_s, x_t = batch_to_positions(x_s), batch_to_positions(x_t)
    return correlation_mse_explicit(x_s, x_s, x_t, x_t)


def cross_image_correlation_mse_explicit(x_s: Tensor, x_t: Tensor,
                                         rows_s: Optional[Tensor] = None,
                                         rows_t: Optional[Tensor] = None) -> Tensor:
    """Reference of :func:`~.correlation.cross_image_correlation_mse`: a loop over image pairs."""
    r_s = x_s if rows_s is None else rows_s
    r_t = x_t if rows_t is None else rows_t
    b = x_s.shape[0]
    total = x_s.new_zeros(())
    for i in range(b):
        for j in range(b):
            if i != j:
                diff = r_s[i].T @ x_s[j] - r_t[i].T @ x_t[j]
                total = total + diff.square().sum()
    return total / max(b * (b - 1) * r_s.shape[2] * x_s.shape[2], 1)


def correlation_kl_explicit(rows_s: Tensor, cols_s: Tensor, rows_t: Tensor, cols_t: Tensor,
                            tau: float = 1.0, row_weights: Optional[Tensor] = None) -> Tensor:
    """Reference of :func:`~.correlation.correlation_kl` with the full affinities at once."""
    _check_student_teacher(rows_s, cols_s, rows_t, cols_t)
    log_p_s = F.log_softmax(torch.bmm(rows_s.transpose(1, 2), cols_s) / tau, dim=-1)
    log_p_t = F.log_softmax(torch.bmm(rows_t.transpose(1, 2), cols_t) / tau, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)
    if row_weights is not None:
        kl = kl * row_weights
    return kl.mean() * tau**2


def cross_image_correlation_kl_explicit(x_s: Tensor, x_t: Tensor, tau: float = 1.0,
                                        row_weights: Optional[Tensor] = None) -> Tensor:
    """Reference of :func:`~.correlation.cross_image_correlation_kl`: per row, the affinities
    to the other images' positions are concatenated and softmaxed."""
    b, _, n = x_s.shape
    total = x_s.new_zeros(())
    for i in range(b):
        others = [j for j in range(b) if j != i]
        cols_s = torch.cat([x_s[j] for j in others], dim=1)
        cols_t = torch.cat([x_t[j] for j in others], dim=1)
        log_p_s = F.log_softmax(x_s[i].T @ cols_s / tau, dim=-1)
        log_p_t = F.log_softmax(x_t[i].T @ cols_t / tau, dim=-1)
        kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)
        if row_weights is not None:
            kl = kl * row_weights[i]
        total = total + kl.sum()
    return total / (b * n) * tau**2
