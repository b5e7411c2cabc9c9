"""Cross-correlation distillation: relations between the two dates of a pair."""
from torch import Tensor

from hicd_mm.registry import MODELS
from .base_correlation_loss import BaseCorrelationLoss
from .correlation import PreparedPair, date_pair_correlation_mse, sample_positions


@MODELS.register_module()
class CrossCorrelationLoss(BaseCorrelationLoss):
    """Compares ``M_b = X_{1,b}^T X_{2,b}`` (``N x N`` per pair) of student and teacher.

    Rows are t1 positions, columns t2 positions. See :class:`BaseCorrelationLoss` for the
    arguments (``class_balance`` is not supported).
    """

    default_loss_name = 'loss_cross_corr'

    def __init__(self, **kwargs) -> None:
        if kwargs.get('class_balance') is not None:
            raise ValueError('CrossCorrelationLoss does not support class_balance')
        super().__init__(**kwargs)

    def forward(self, s_t1: Tensor, s_t2: Tensor, t_t1: Tensor, t_t2: Tensor) -> Tensor:
        """Compute the loss from raw maps.

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
        return self.forward_prepared(self.prepare(s_t1, t_t1), self.prepare(s_t2, t_t2))

    def forward_prepared(self, pair_t1: PreparedPair, pair_t2: PreparedPair) -> Tensor:
        """Compute the loss from the t1 and t2 pairs prepared with :attr:`preparation`."""
        if pair_t1.student.shape != pair_t2.student.shape or \
                pair_t1.teacher.shape != pair_t2.teacher.shape:
            raise ValueError('prepared t1 and t2 features must have the same shapes, got '
                             f'{tuple(pair_t1.student.shape)} / {tuple(pair_t2.student.shape)}'
                             f' (student), {tuple(pair_t1.teacher.shape)} / '
                             f'{tuple(pair_t2.teacher.shape)} (teacher)')
        if self.distance == 'mse' and self.sample_pixels is None:
            # Rows from the t1 pair's Grams, columns from the t2 pair's: the same tensors the
            # self and cross-image terms of each date use, so no Gram product of its own.
            return self.loss_weight * date_pair_correlation_mse(pair_t1, pair_t2,
                                                                self.gram_dtype)
        x1_s, x2_s, x1_t, x2_t = sample_positions(
            [pair_t1.student, pair_t2.student, pair_t1.teacher, pair_t2.teacher],
            self.sample_pixels)
        return self.loss_weight * self.pair_distance(x1_s, x2_s, x1_t, x2_t)
