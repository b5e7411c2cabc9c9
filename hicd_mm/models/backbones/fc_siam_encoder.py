"""The per-image encoder of the FC-Siam networks (Daudt et al., ICIP 2018)."""
from typing import List, Sequence, Tuple

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from hicd_mm.registry import MODELS


@MODELS.register_module()
class FCSiamEncoder(BaseModule):
    """A small U-Net encoder: stages of 3x3 conv-BN-ReLU blocks separated by 2x2 max pooling.

    With the defaults (``base_channels=16``, ``num_convs=(2, 2, 3, 3)``) the four stages output
    16, 32, 64 and 128 channels at strides 1, 2, 4 and 8, as in FC-Siam-diff.

    Args:
        in_channels (int): Channels of one image.
        base_channels (int): Channels of the first stage; doubled at every stage.
        num_convs (Sequence[int]): Conv blocks per stage.
        norm_cfg (dict): Normalisation layer config.
        dropout (float): Dropout after every stage (0 disables it).
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 16,
                 num_convs: Sequence[int] = (2, 2, 3, 3), norm_cfg: dict = dict(type='BN'),
                 dropout: float = 0.0, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.stages = nn.ModuleList()
        self.out_channels: List[int] = []
        channels = in_channels
        for i, n in enumerate(num_convs):
            out = base_channels * 2**i
            layers = [ConvModule(channels if j == 0 else out, out, 3, padding=1,
                                 norm_cfg=norm_cfg) for j in range(n)]
            if dropout > 0:
                layers.append(nn.Dropout2d(dropout))
            self.stages.append(nn.Sequential(*layers))
            self.out_channels.append(out)
            channels = out
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Returns one feature map per stage, finest first."""
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x if i == 0 else self.pool(x))
            outs.append(x)
        return tuple(outs)
