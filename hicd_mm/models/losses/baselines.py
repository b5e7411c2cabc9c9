"""Feature distillation baselines to compare HiCD's correlation losses with.

* :class:`FeatureMSELoss`: FitNets-style hint loss (Romero et al., ICLR 2015): a learnable 1x1
  convolution maps the student features to the teacher's channels, then mean squared error.
* :class:`ChannelWiseDivergenceLoss`: channel-wise distillation (Shu et al., ICCV 2021): each
  channel is turned into a spatial distribution by a softmax and the student matches the
  teacher's distributions in KL divergence.

Both losses own their adapter at construction time, so the optimizer and DDP see its
parameters; they must therefore live inside the trained model (e.g. as a submodule of the
distiller), and they detach the teacher features.
"""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hicd_mm.registry import MODELS

from .base_distill_loss import BaseDistillLoss
from .correlation import RESIZE_MODES, match_spatial


def _check_channels(name: str, value: Optional[int]) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
        raise ValueError(f'{name} must be a positive int, got {value!r}')


def _check_maps(feat_s: Tensor, feat_t: Tensor, expected_s: Optional[int],
                expected_t: Optional[int]) -> None:
    for name, f, c in (('student', feat_s, expected_s), ('teacher', feat_t, expected_t)):
        if f.dim() != 4:
            raise ValueError(f'{name} feature map must be (B, C, H, W), got {tuple(f.shape)}')
        if c is not None and f.shape[1] != c:
            raise ValueError(f'{name} feature map has {f.shape[1]} channels, expected {c}')
    if feat_s.shape[0] != feat_t.shape[0]:
        raise ValueError(f'batch sizes differ: student {tuple(feat_s.shape)} vs teacher '
                         f'{tuple(feat_t.shape)}')


@MODELS.register_module()
class FeatureMSELoss(BaseDistillLoss):
    """FitNets-style feature imitation: ``MSE(conv1x1(F_s), F_t)``.

    The adapter is always created (also for equal channel counts), as in FitNets. The student
    map is resized (after the adapter) to the teacher's spatial size if they differ.

    Args:
        student_channels (int): Channels of the student map.
        teacher_channels (int): Channels of the teacher map.
        loss_weight (float): Multiplier of the loss.
        resize_mode (str): ``'bilinear'`` or ``'error'`` on a spatial mismatch.
        loss_name (str, optional): Key in the loss dict (default ``'loss_feat_mse'``).
    """

    default_loss_name = 'loss_feat_mse'

    def __init__(self, student_channels: int, teacher_channels: int, loss_weight: float = 1.0,
                 resize_mode: str = 'bilinear', loss_name: Optional[str] = None) -> None:
        super().__init__(loss_weight, loss_name)
        _check_channels('student_channels', student_channels)
        _check_channels('teacher_channels', teacher_channels)
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f'resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}')
        self.student_channels = student_channels
        self.teacher_channels = teacher_channels
        self.adapter = nn.Conv2d(student_channels, teacher_channels, kernel_size=1)
        self.resize_mode = resize_mode

    def forward(self, feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            feat_s (Tensor): Student map ``(B, C_s, H, W)``.
            feat_t (Tensor): Teacher map ``(B, C_t, H', W')`` (treated as a constant).

        Returns:
            Tensor: Weighted scalar loss (mean over all elements).
        """
        _check_maps(feat_s, feat_t, self.student_channels, self.teacher_channels)
        feat_s = match_spatial(self.adapter(feat_s), feat_t, self.resize_mode)
        return self.loss_weight * F.mse_loss(feat_s, feat_t.detach())


@MODELS.register_module()
class ChannelWiseDivergenceLoss(BaseDistillLoss):
    """Channel-wise distillation (CWD).

    For sample ``b`` and channel ``c``, ``p = softmax(F[b, c].flatten() / tau)`` over the
    ``H W`` positions; the loss is
    ``tau^2 / (B C) * sum_{b, c} KL(p_t[b, c] || p_s[b, c])``.

    If ``student_channels`` and ``teacher_channels`` are given and differ, a 1x1 convolution
    adapts the student map first; otherwise the channel counts must be equal.

    Args:
        student_channels (int, optional): Channels of the student map.
        teacher_channels (int, optional): Channels of the teacher map.
        tau (float): Softmax temperature.
        loss_weight (float): Multiplier of the loss.
        resize_mode (str): ``'bilinear'`` or ``'error'`` on a spatial mismatch.
        loss_name (str, optional): Key in the loss dict (default ``'loss_cwd'``).
    """

    default_loss_name = 'loss_cwd'

    def __init__(self, student_channels: Optional[int] = None,
                 teacher_channels: Optional[int] = None, tau: float = 1.0,
                 loss_weight: float = 1.0, resize_mode: str = 'bilinear',
                 loss_name: Optional[str] = None) -> None:
        super().__init__(loss_weight, loss_name)
        _check_channels('student_channels', student_channels)
        _check_channels('teacher_channels', teacher_channels)
        if not tau > 0:
            raise ValueError(f'tau must be > 0, got {tau}')
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f'resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}')
        self.student_channels = student_channels
        self.teacher_channels = teacher_channels
        needs_adapter = (student_channels is not None and teacher_channels is not None
                         and student_channels != teacher_channels)
        self.adapter = (nn.Conv2d(student_channels, teacher_channels, kernel_size=1)
                        if needs_adapter else None)
        self.tau = float(tau)
        self.resize_mode = resize_mode

    def forward(self, feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            feat_s (Tensor): Student map ``(B, C_s, H, W)``.
            feat_t (Tensor): Teacher map ``(B, C_t, H', W')`` (treated as a constant).

        Returns:
            Tensor: Weighted scalar loss.
        """
        _check_maps(feat_s, feat_t, self.student_channels, self.teacher_channels)
        if self.adapter is not None:
            feat_s = self.adapter(feat_s)
        if feat_s.shape[1] != feat_t.shape[1]:
            raise ValueError(f'channel counts differ (student {feat_s.shape[1]}, teacher '
                             f'{feat_t.shape[1]}): pass student_channels and teacher_channels '
                             'to create an adapter')
        feat_s = match_spatial(feat_s, feat_t, self.resize_mode)
        b, c = feat_t.shape[:2]
        log_p_s = F.log_softmax(feat_s.flatten(2) / self.tau, dim=-1)
        log_p_t = F.log_softmax(feat_t.detach().flatten(2) / self.tau, dim=-1)
        kl = F.kl_div(log_p_s, log_p_t, reduction='sum', log_target=True)
        return self.loss_weight * kl * (self.tau**2 / (b * c))
