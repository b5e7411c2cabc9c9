"""Soft Dice loss of the changed class.

mmseg 1.2.2's ``DiceLoss`` flattens all classes of a sample into one vector before taking the
Dice ratio, so in change detection (a few percent of changed pixels) the unchanged class
dominates it: a model that predicts "no change" everywhere gets a loss near 0. This loss takes
the Dice ratio of the *changed* class only, over every valid pixel of the batch, so a model
that misses all changes gets a loss near 1 whatever the class balance.
"""
from typing import Optional

import torch.nn as nn
from torch import Tensor

from hicd_mm.registry import MODELS


@MODELS.register_module()
class ChangeDiceLoss(nn.Module):
    """Soft Dice loss of one class (the changed class) over the whole batch.

    With ``p_i`` the softmax probability of ``change_index`` at pixel ``i``, ``y_i`` its 0/1
    target and ``w_i`` the optional per-pixel weight, over pixels whose label is not
    ``ignore_index``::

        loss = loss_weight * (1 - (2 * sum_i w_i p_i y_i + smooth)
                                  / (sum_i w_i p_i + sum_i w_i y_i + smooth))

    ``smooth > 0`` keeps the loss finite (and 0 for a perfect empty prediction) when the batch
    has no changed pixel; a batch with no valid pixel gives 0 with a gradient path.

    Args:
        change_index (int): Class index of "changed". Default: 1.
        smooth (float): Added to numerator and denominator. Default: 1.0.
        loss_weight (float): Multiplier of the loss. Default: 1.0.
        loss_name (str): Key in the loss dict; must start with ``loss_`` to be optimised.
    """

    def __init__(self, change_index: int = 1, smooth: float = 1.0, loss_weight: float = 1.0,
                 loss_name: str = 'loss_dice') -> None:
        super().__init__()
        if smooth <= 0:
            raise ValueError(f'smooth must be positive (it keeps empty batches finite), '
                             f'got {smooth}')
        self.change_index = change_index
        self.smooth = smooth
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, cls_score: Tensor, label: Tensor, weight: Optional[Tensor] = None,
                ignore_index: int = 255, **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            cls_score (Tensor): Logits ``(N, K, H, W)``.
            label (Tensor): Labels ``(N, H, W)``; ``ignore_index`` marks ignored pixels.
            weight (Tensor, optional): Per-pixel weights ``(N, H, W)``.
            ignore_index (int): Label value to ignore. Default: 255.

        Returns:
            Tensor: The scalar loss.
        """
        num_classes = cls_score.shape[1]
        if not 0 <= self.change_index < num_classes:
            raise ValueError(f'change_index {self.change_index} is not a class of logits with '
                             f'{num_classes} classes')
        if cls_score.shape[-2:] != label.shape[-2:]:
            raise ValueError(f'logits {tuple(cls_score.shape)} and labels '
                             f'{tuple(label.shape)} differ in spatial size')
        prob = cls_score.softmax(dim=1)[:, self.change_index]
        pixel_weight = (label != ignore_index).to(prob.dtype)
        if weight is not None:
            pixel_weight = pixel_weight * weight.to(prob.dtype)
        target = (label == self.change_index).to(prob.dtype)
        intersection = (pixel_weight * prob * target).sum()
        total = (pixel_weight * prob).sum() + (pixel_weight * target).sum()
        dice = (2 * intersection + self.smooth) / (total + self.smooth)
        return self.loss_weight * (1 - dice)

    @property
    def loss_name(self) -> str:
        """str: Key of this loss in the loss dict."""
        return self._loss_name
