"""Self-correlation distillation: relations between the positions of one image."""
from typing import Optional

from torch import Tensor

from hicd_mm.registry import MODELS
from .base_correlation_loss import BaseCorrelationLoss
from .correlation import PreparedPair


@MODELS.register_module()
class SelfCorrelationLoss(BaseCorrelationLoss):
    """Compares ``A_b = X_b^T X_b`` (``N x N`` per sample) of student and teacher.

    See :class:`BaseCorrelationLoss` for the arguments (``class_balance`` makes it
    change-aware).
    """

    default_loss_name = 'loss_self_corr'

    def forward_prepared(self, pair: PreparedPair, label: Optional[Tensor] = None) -> Tensor:
        """Compute the loss from a pair prepared with :attr:`preparation`."""
        x_s, x_t, w = self.sample(pair.student, pair.teacher, self.position_weights(pair, label))
        if self.uses_pair_grams(pair, x_s, x_t):
            # The Gram matrices are shared with the other terms on this pair.
            return self.loss_weight * self.shared_pair_mse(pair, w)
        return self.loss_weight * self.self_distance(x_s, x_t, w)
