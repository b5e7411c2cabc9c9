"""FC-Siam-diff decoder: upsampling path over absolute feature differences."""
from typing import List

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
import torch.nn.functional as F
from torch import Tensor

from hicd_mm.registry import MODELS


def match_size(x: Tensor, ref: Tensor) -> Tensor:
    """Crop or zero-pad ``x`` at the bottom/right to the spatial size of ``ref`` (odd sizes)."""
    dh, dw = ref.shape[-2] - x.shape[-2], ref.shape[-1] - x.shape[-1]
    if dh or dw:
        x = F.pad(x, (0, max(dw, 0), 0, max(dh, 0)))[..., :ref.shape[-2], :ref.shape[-1]]
    return x


@MODELS.register_module()
class FCSiamDiffHead(BaseDecodeHead):
    """Decoder of FC-Siam-diff over fused (``abs_diff``) features.

    It starts from the deepest difference map and, level by level, upsamples with a transposed
    convolution, concatenates the difference map of the next finer level (the skip connection)
    and applies two conv blocks. The last feature (``channels`` wide, full input resolution)
    is the change feature passed to ``conv_seg``.

    Args:
        in_channels (list[int]): Channels of the fused levels, finest first.
        channels (int): Channels of the change feature.
        **kwargs: Passed to :class:`BaseDecodeHead` (``num_classes``, ``loss_decode``, ...).
    """

    def __init__(self, in_channels: List[int], channels: int, **kwargs) -> None:
        kwargs.setdefault('in_index', list(range(len(in_channels))))
        kwargs.setdefault('input_transform', 'multiple_select')
        super().__init__(in_channels=in_channels, channels=channels, **kwargs)
        self.ups = nn.ModuleList()
        self.fuse = nn.ModuleList()
        for level in range(len(in_channels) - 1, 0, -1):
            deep = in_channels[level]  # the previous fuse block outputs this width
            skip = in_channels[level - 1]
            out = channels if level == 1 else skip
            self.ups.append(nn.ConvTranspose2d(deep, skip, 2, stride=2))
            self.fuse.append(nn.Sequential(
                ConvModule(2 * skip, skip, 3, padding=1, norm_cfg=self.norm_cfg),
                ConvModule(skip, out, 3, padding=1, norm_cfg=self.norm_cfg)))

    def forward(self, inputs: List[Tensor]) -> Tensor:
        feats = self._transform_inputs(inputs)
        x = feats[-1]
        for i, level in enumerate(range(len(feats) - 1, 0, -1)):
            skip = feats[level - 1]
            x = self.ups[i](x)
            x = match_size(x, skip)
            x = self.fuse[i](torch.cat([x, skip], dim=1))
        return self.cls_seg(x)
