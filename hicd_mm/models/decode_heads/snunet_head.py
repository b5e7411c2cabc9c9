"""SNUNet-CD decoder: nested dense skip connections + ensemble channel attention (ECAM).

Written from the paper "SNUNet-CD: A Densely Connected Siamese Network for Change Detection of
VHR Images" (Fang et al., IEEE GRSL 2022, doi:10.1109/LGRS.2021.3056416).
"""
from typing import Dict, Sequence, Tuple

import torch
import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from torch import Tensor

from hicd_mm.models.backbones.snunet import SNUNetBlock
from hicd_mm.registry import MODELS


class ChannelAttention(nn.Module):
    """CBAM-style channel attention map: sigmoid(MLP(avgpool(x)) + MLP(maxpool(x))).

    Returns the (N, C, 1, 1) weights, not the re-weighted features.
    """

    def __init__(self, channels: int, ratio: int) -> None:
        super().__init__()
        hidden = max(channels // ratio, 2)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False),
                                 nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, channels, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        avg = self.mlp(torch.mean(x, dim=(2, 3), keepdim=True))
        mx = self.mlp(torch.amax(x, dim=(2, 3), keepdim=True))
        return torch.sigmoid(avg + mx)


@MODELS.register_module()
class SNUNetECAMHead(BaseDecodeHead):
    """Nested (UNet++) decoder of SNUNet-CD over both dates, with ECAM.

    Input: the fused levels of :class:`FeatureFusionNeck` with ``policy='concat'`` over the
    outputs of :class:`SNUNetEncoder` (level i: ``[x_t1^{i,0} | x_t2^{i,0}]``, 2 c_i channels,
    c_i = c * 2**i). Node x^{i,j} (j >= 1, i + j <= K - 1 for K levels) is a SNUNet block on

    * j = 1: ``[x_t1^{i,0}, x_t2^{i,0}, Up(x_t2^{i+1,0})]``,
    * j > 1: ``[x_t1^{i,0}, x_t2^{i,0}, x^{i,1}, ..., x^{i,j-1}, Up(x^{i+1,j-1})]``

    (dense skip connections; Up is a 2x2 stride-2 transposed conv). The K - 1 full-resolution
    outputs x^{0,1..K-1} are ensembled by ECAM: with F = [x^{0,1}, ..., x^{0,K-1}] and
    F_intra = sum_j x^{0,j}, G = F + repeat(M_intra(F_intra)) and the **change feature**
    is M_inter(G) * G ((K-1) c channels at full resolution, e.g. (N, 64, 256, 256) for
    SNUNet-CD/16 at 256x256), which ``cls_seg`` (a 1x1 conv) classifies.

    Args:
        in_channels (list[int]): Fused channels per level (2 c_i), finest first.
        channels (int, optional): Change-feature channels; must be (K - 1) * c (default).
        intra_ratio (int): Reduction ratio of the intra-group channel attention.
        inter_ratio (int): Reduction ratio of the inter-group channel attention.
        **kwargs: :class:`BaseDecodeHead` arguments.
    """

    def __init__(self, in_channels: Sequence[int], channels: int = None,
                 intra_ratio: int = 4, inter_ratio: int = 16, **kwargs) -> None:
        in_channels = list(in_channels)
        if any(c % 2 for c in in_channels):
            raise ValueError(f'in_channels must be the concatenated pair (even), got '
                             f'{in_channels}')
        self.level_channels = [c // 2 for c in in_channels]
        num_levels = len(in_channels)
        if num_levels < 2:
            raise ValueError('SNUNetECAMHead needs at least 2 levels')
        expected = (num_levels - 1) * self.level_channels[0]
        if channels is None:
            channels = expected
        elif channels != expected:
            raise ValueError(f'channels must be (levels - 1) * c0 = {expected} (the ECAM '
                             f'ensemble width), got {channels}')
        kwargs.setdefault('in_index', list(range(num_levels)))
        kwargs.setdefault('input_transform', 'multiple_select')
        kwargs.setdefault('norm_cfg', dict(type='BN', requires_grad=True))
        super().__init__(in_channels=in_channels, channels=channels, **kwargs)
        self.num_levels = num_levels
        ch = self.level_channels
        self.ups = nn.ModuleDict()
        self.nodes = nn.ModuleDict()
        for j in range(1, num_levels):
            for i in range(num_levels - j):
                self.ups[f'{i + 1}_{j - 1}'] = nn.ConvTranspose2d(
                    ch[i + 1], ch[i + 1], 2, stride=2)
                node_in = (j + 1) * ch[i] + ch[i + 1]
                self.nodes[f'{i}_{j}'] = SNUNetBlock(node_in, ch[i], self.norm_cfg)
        self.intra_attn = ChannelAttention(ch[0], intra_ratio)
        self.inter_attn = ChannelAttention(channels, inter_ratio)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        feats = self._transform_inputs(inputs)
        t1: Dict[int, Tensor] = {}
        nodes: Dict[Tuple[int, int], Tensor] = {}
        for i, (x, c) in enumerate(zip(feats, self.in_channels)):
            if x.shape[1] != c:
                raise ValueError(
                    f'SNUNetECAMHead level {i} expects the concatenated pair with {c} '
                    f"channels (FeatureFusionNeck(policy='concat')), got {x.shape[1]}")
            t1[i], nodes[(i, 0)] = torch.chunk(x, 2, dim=1)  # x^{i,0}: the t2 encoder node
        for j in range(1, self.num_levels):
            for i in range(self.num_levels - j):
                up = self.ups[f'{i + 1}_{j - 1}'](nodes[(i + 1, j - 1)])
                dense = [t1[i]] + [nodes[(i, k)] for k in range(j)] + [up]
                nodes[(i, j)] = self.nodes[f'{i}_{j}'](torch.cat(dense, dim=1))
        outs = [nodes[(0, j)] for j in range(1, self.num_levels)]
        ensemble = torch.cat(outs, dim=1)
        intra = self.intra_attn(torch.stack(outs, dim=0).sum(dim=0))
        g = ensemble + intra.repeat(1, len(outs), 1, 1)
        return self.cls_seg(self.inter_attn(g) * g)
