"""Response (logit) distillation of the per-pixel change probability."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from hicd_mm.registry import MODELS
from .base_distill_loss import BaseDistillLoss
from .correlation import RESIZE_MODES, class_balanced_position_weights, match_spatial


@MODELS.register_module()
class ResponseKDLoss(BaseDistillLoss):
    """KL divergence of the teacher's from the student's class probabilities, per pixel.

    Applied to the classifier's logits (``(B, K, H, W)``, before upsampling), at temperature
    ``tau``: ``K >= 2`` uses a softmax over the classes, ``K = 1`` a sigmoid (binary KL of the
    change probability)::

        L = tau^2 * mean_{b, n} w_{b,n} KL(p_t[b, :, n] || p_s[b, :, n])

    It carries the teacher's "where is change" evidence directly, the response term that
    relational KD methods (CIRKD, CCKD) pair with their relation terms. With
    ``class_balance=True`` the pixels are weighted so that changed and unchanged ones count
    half each (from the ground truth resized to the logit grid); otherwise ``w = 1``.

    Args:
        tau (float): Temperature (> 0).
        loss_weight (float): Multiplier of the loss (>= 0).
        class_balance (bool): Weight pixels by class (needs ``label``).
        ignore_index (int): Label value without a class.
        resize_mode (str): ``'bilinear'`` resizes the student logits to the teacher's size;
            ``'error'`` raises on a mismatch.
        loss_name (str, optional): Key of the loss in the loss dict (must start with
            ``'loss_'``; default ``'loss_response_kd'``).
    """

    default_loss_name = 'loss_response_kd'

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0, class_balance: bool = False,
                 ignore_index: int = 255, resize_mode: str = 'bilinear',
                 loss_name: Optional[str] = None) -> None:
        super().__init__(loss_weight, loss_name)
        if not tau > 0:
            raise ValueError(f'tau must be > 0, got {tau}')
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f'resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}')
        self.tau = float(tau)
        self.class_balance = bool(class_balance)
        self.ignore_index = ignore_index
        self.resize_mode = resize_mode

    @property
    def requires_label(self) -> bool:
        """Whether ``forward`` needs the ground-truth change label."""
        return self.class_balance

    def forward(self, logits_s: Tensor, logits_t: Tensor,
                label: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            logits_s (Tensor): Student logits ``(B, K, H_s, W_s)``.
            logits_t (Tensor): Teacher logits ``(B, K, H, W)`` (treated as a constant).
            label (Tensor, optional): Ground truth ``(B, [1,] H', W')`` for ``class_balance``.

        Returns:
            Tensor: Weighted scalar loss.
        """
        for name, z in (('student', logits_s), ('teacher', logits_t)):
            if z.dim() != 4:
                raise ValueError(f'{name} logits must be (B, K, H, W), got {tuple(z.shape)}')
        if logits_s.shape[:2] != logits_t.shape[:2]:
            raise ValueError('student and teacher logits must agree in batch size and classes, '
                             f'got {tuple(logits_s.shape)} and {tuple(logits_t.shape)}')
        logits_s = match_spatial(logits_s, logits_t, self.resize_mode)
        dtype = torch.promote_types(logits_s.dtype, torch.float32)
        z_s = logits_s.to(dtype) / self.tau
        z_t = logits_t.detach().to(dtype) / self.tau
        if z_s.shape[1] == 1:
            # Binary KL from log-sigmoids: log p = logsigmoid(z), log(1 - p) = logsigmoid(-z).
            lp_s, lq_s = F.logsigmoid(z_s), F.logsigmoid(-z_s)
            lp_t, lq_t = F.logsigmoid(z_t), F.logsigmoid(-z_t)
            kl = lp_t.exp() * (lp_t - lp_s) + lq_t.exp() * (lq_t - lq_s)
            kl = kl[:, 0]
        else:
            log_p_s = F.log_softmax(z_s, dim=1)
            log_p_t = F.log_softmax(z_t, dim=1)
            kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(1)
        kl = kl.flatten(1)  # (B, N)
        if self.class_balance:
            if label is None:
                raise ValueError('ResponseKDLoss(class_balance=True) needs the ground-truth '
                                 'change label')
            kl = kl * class_balanced_position_weights(label, tuple(logits_t.shape[-2:]),
                                                      self.ignore_index)
        return (self.loss_weight * self.tau**2 * kl.mean()).to(logits_s.dtype)
