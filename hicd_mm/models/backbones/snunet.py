"""The per-image encoder of SNUNet-CD (Fang, Li, Shi and Jiang, IEEE GRSL 2022).

Written from the paper "SNUNet-CD: A Densely Connected Siamese Network for Change Detection of
VHR Images" (doi:10.1109/LGRS.2021.3056416). SNUNet-CD is a siamese UNet++: a shared encoder
(the column j = 0 of the nested UNet, nodes x^{i,0}) applied to each date, and a nested,
densely connected decoder over both dates' features with an ensemble channel attention
module (ECAM), see :class:`hicd_mm.models.decode_heads.SNUNetECAMHead`.
"""
from typing import List, Tuple

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from hicd_mm.registry import MODELS


class SNUNetBlock(nn.Module):
    """The SNUNet node: conv3x3-BN-ReLU, conv3x3-BN, residual add of the first output, ReLU.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        norm_cfg (dict): Normalisation config.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        self.conv1 = ConvModule(in_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg)
        self.conv2 = ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg,
                                act_cfg=None)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        return self.relu(x + self.conv2(x))


@MODELS.register_module()
class SNUNetEncoder(BaseModule):
    """Siamese (shared) encoder of SNUNet-CD: nodes x^{0,0} ... x^{4,0}.

    Level i has ``base_channels * 2**i`` channels at stride ``2**i`` (2x2 max pooling between
    levels), e.g. 16, 32, 64, 128, 256 channels at strides 1..16 for ``base_channels=16``
    (SNUNet-CD/16). Inputs must be divisible by ``2**(num_stages - 1)``; the data
    preprocessor's ``size_divisor=32`` guarantees it.

    Args:
        in_channels (int): Channels of one image.
        base_channels (int): Channels of the first level (16 or 32 in the paper).
        num_stages (int): Encoder levels (5 in the paper).
        norm_cfg (dict): Normalisation config.
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 16, num_stages: int = 5,
                 norm_cfg: dict = dict(type='BN', requires_grad=True), init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.out_channels: List[int] = [base_channels * 2**i for i in range(num_stages)]
        chans = [in_channels] + self.out_channels
        self.stages = nn.ModuleList(
            SNUNetBlock(chans[i], chans[i + 1], norm_cfg) for i in range(num_stages))
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Returns the ``num_stages`` maps x^{i,0}, finest first."""
        divisor = 2**(len(self.stages) - 1)
        if x.shape[-2] % divisor or x.shape[-1] % divisor:
            raise ValueError(f'SNUNetEncoder needs H and W divisible by {divisor}, got '
                             f'{tuple(x.shape[-2:])}; pad the input (size_divisor=32)')
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x if i == 0 else self.pool(x))
            outs.append(x)
        return tuple(outs)
