"""Level-wise fusion of the t1 and t2 feature pyramids."""
from typing import Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor

from hicd_mm.registry import MODELS

FUSION_POLICIES = ('concat', 'sum', 'diff', 'abs_diff')


@MODELS.register_module()
class FeatureFusionNeck(BaseModule):
    """Fuse two feature tuples level by level.

    Args:
        policy (str): ``'concat'`` (``[f_t1 | f_t2]`` on channels, the Open-CD convention),
            ``'sum'``, ``'diff'`` (``f_t2 - f_t1``) or ``'abs_diff'``.
        out_indices (Sequence[int], optional): Levels to return (default: all).
    """

    def __init__(self, policy: str = 'concat', out_indices: Optional[Sequence[int]] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if policy not in FUSION_POLICIES:
            raise ValueError(f'unknown fusion policy {policy!r}; choose from {FUSION_POLICIES}')
        self.policy = policy
        self.out_indices = None if out_indices is None else tuple(out_indices)

    def fuse(self, x1: Tensor, x2: Tensor) -> Tensor:
        """Fuse one level."""
        if self.policy == 'concat':
            return torch.cat([x1, x2], dim=1)
        if self.policy == 'sum':
            return x1 + x2
        if self.policy == 'diff':
            return x2 - x1
        return torch.abs(x1 - x2)

    def forward(self, feats_t1: Sequence[Tensor], feats_t2: Sequence[Tensor]) -> Tuple[Tensor]:
        """Fuse the pyramids; returns a tuple with one fused map per selected level."""
        if len(feats_t1) != len(feats_t2):
            raise ValueError(f't1 has {len(feats_t1)} feature levels but t2 has '
                             f'{len(feats_t2)}')
        fused = [self.fuse(a, b) for a, b in zip(feats_t1, feats_t2)]
        if self.out_indices is not None:
            fused = [fused[i] for i in self.out_indices]
        return tuple(fused)
