"""Global correlation distillation: relations between positions of different images."""
from typing import Optional

from torch import Tensor

from hicd_mm.registry import MODELS
from .base_correlation_loss import BaseCorrelationLoss
from .correlation import (PreparedPair, batch_to_positions, cross_image_correlation_kl,
                          cross_image_correlation_mse)

GLOBAL_BLOCKS = ('cross_image', 'all')


@MODELS.register_module()
class GlobalCorrelationLoss(BaseCorrelationLoss):
    """Batch-level relations: every position against the positions of the other images.

    The batch is stacked along the positions (``X_all`` is ``C x BN``) and ``K = X_all^T X_all``
    is compared. Its diagonal ``N x N`` blocks are the per-image self affinities, which the
    self term already distils; by default (``blocks='cross_image'``) only the off-diagonal
    blocks -- relations between *different* images -- are compared, so the term is not a
    second copy of the self term. With ``distance='kl'`` and a sharp ``tau`` (e.g. 0.1) plus
    ``sample_pixels`` it is CIRKD's mini-batch pixel-relation term: each row is a softmax over
    the other images' positions. A batch of one has no other image: the loss is 0.

    Args:
        blocks (str): ``'cross_image'`` (off-diagonal blocks only) or ``'all'`` (the whole
            ``BN x BN`` affinity, the definition before the cross-image one; with ``B = 1``
            it equals the self term).
        **kwargs: See :class:`BaseCorrelationLoss`; ``sample_pixels`` counts positions per
            image.
    """

    default_loss_name = 'loss_global_corr'

    def __init__(self, blocks: str = 'cross_image', **kwargs) -> None:
        if blocks not in GLOBAL_BLOCKS:
            raise ValueError(f'blocks must be one of {GLOBAL_BLOCKS}, got {blocks!r}')
        super().__init__(**kwargs)
        self.blocks = blocks

    def extra_repr(self) -> str:
        return f'blocks={self.blocks!r}, ' + super().extra_repr()

    def forward_prepared(self, pair: PreparedPair, label: Optional[Tensor] = None) -> Tensor:
        """Compute the loss from a pair prepared with :attr:`preparation`."""
        x_s, x_t, w = self.sample(pair.student, pair.teacher, self.position_weights(pair, label))
        if self.blocks == 'all':
            w_all = None if w is None else w.reshape(1, -1)
            return self.loss_weight * self.self_distance(
                batch_to_positions(x_s), batch_to_positions(x_t), w_all)
        if self.distance == 'kl':
            value = cross_image_correlation_kl(x_s, x_t, self.tau, self.chunk_size, w)
        elif self.uses_pair_grams(pair, x_s, x_t):
            # The Gram matrices are shared with the other terms on this pair.
            value = self.shared_pair_mse(pair, w, cross_image=True)
        elif w is None:
            value = cross_image_correlation_mse(x_s, x_t, self.gram_dtype)
        else:
            root = w.sqrt()[:, None].to(x_s.dtype)
            r_s, r_t = x_s * root, x_t * root
            if self.class_balance == 'pairs':
                value = cross_image_correlation_mse(r_s, r_t, self.gram_dtype)
            else:
                value = cross_image_correlation_mse(x_s, x_t, self.gram_dtype, r_s, r_t)
        return self.loss_weight * value
