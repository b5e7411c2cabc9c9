"""What every distillation loss of hicd_mm shares: a non-negative weight and its loss-dict key."""
from typing import Optional

import torch.nn as nn


class BaseDistillLoss(nn.Module):
    """Base of the distillation losses (correlation terms, response KD, FitNets, CWD).

    Args:
        loss_weight (float): Multiplier of the loss (``>= 0``; 0 switches the term off).
        loss_name (str, optional): Key of the loss in the loss dict; must start with
            ``'loss_'`` so that mmengine's ``parse_losses`` counts it. Default:
            :attr:`default_loss_name` of the subclass.

    Raises:
        ValueError: ``loss_weight`` is None, a bool, negative or NaN, or ``loss_name`` does not
            start with ``'loss_'``.
    """

    default_loss_name = 'loss_distill'

    def __init__(self, loss_weight: float = 1.0, loss_name: Optional[str] = None) -> None:
        super().__init__()
        if (loss_weight is None or isinstance(loss_weight, bool)
                or not float(loss_weight) >= 0):
            raise ValueError(f'loss_weight must be a number >= 0, got {loss_weight!r}')
        loss_name = loss_name or self.default_loss_name
        if not loss_name.startswith('loss_'):
            raise ValueError(f"loss_name must start with 'loss_', got {loss_name!r}")
        self.loss_weight = float(loss_weight)
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        """Key of this loss in the loss dict."""
        return self._loss_name
