"""Class-weighted cross entropy that accepts ignore-index labels.

mmseg 1.2.2's ``CrossEntropyLoss(class_weight=...)`` computes its average factor by indexing
the class weights with every label, ignored ones included, so any 255 pixel (padding of odd
image sizes, BANDON's ignore regions) raises ``IndexError``. This loss keeps mmseg's
interface (``loss_name``, ``loss_weight``, the decode head's ``weight``/``ignore_index``
keywords) and averages like PyTorch: over non-ignored pixels, each counted with its class
weight.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hicd_mm.registry import MODELS


@MODELS.register_module()
class WeightedCrossEntropyLoss(nn.Module):
    """Softmax cross entropy with class weights and an ignore index.

    ``loss = loss_weight * sum_i w_i * w[y_i] * CE_i / sum_i w[y_i]`` over pixels ``i`` whose
    label is not ``ignore_index``; ``w_i`` is the optional per-pixel weight. A batch with no
    valid pixel gives a zero loss (with a gradient path), never NaN.

    Args:
        class_weight (Sequence[float], optional): One weight per class. Default: None (all 1).
        loss_weight (float): Multiplier of the loss. Default: 1.0.
        loss_name (str): Key in the loss dict; must start with ``loss_`` to be optimised.
    """

    def __init__(self, class_weight: Optional[Sequence[float]] = None, loss_weight: float = 1.0,
                 loss_name: str = 'loss_ce') -> None:
        super().__init__()
        if class_weight is not None:
            class_weight = [float(w) for w in class_weight]
            if any(w < 0 for w in class_weight) or not any(w > 0 for w in class_weight):
                raise ValueError(f'class_weight must be non-negative with one positive value, '
                                 f'got {class_weight}')
        self.class_weight = class_weight
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
        if self.class_weight is not None and len(self.class_weight) != num_classes:
            raise ValueError(f'class_weight has {len(self.class_weight)} entries but the logits '
                             f'have {num_classes} classes')
        valid = label != ignore_index
        bad = valid & ((label < 0) | (label >= num_classes))
        if bad.any():
            raise ValueError(f'labels must be in [0, {num_classes}) or {ignore_index}, got '
                             f'{torch.unique(label[bad]).tolist()}')
        safe_label = torch.where(valid, label, torch.zeros_like(label))
        per_pixel = F.cross_entropy(cls_score, safe_label, reduction='none')
        pixel_weight = valid.to(per_pixel.dtype)
        if self.class_weight is not None:
            cw = per_pixel.new_tensor(self.class_weight)
            pixel_weight = pixel_weight * cw[safe_label]
        denominator = pixel_weight.sum()
        if weight is not None:
            pixel_weight = pixel_weight * weight.to(per_pixel.dtype)
        loss = (per_pixel * pixel_weight).sum() / denominator.clamp_min(1e-12)
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """str: Key of this loss in the loss dict."""
        return self._loss_name
