"""ChangeFormer decoder (Bandara and Patel, IGARSS 2022).

Written from the paper "A Transformer-Based Siamese Network for Change Detection"
(arXiv:2201.01293): a hierarchical (MiT / SegFormer-style) transformer encoder is applied to
each date; at each of the four scales a *difference module* computes change features from the
concatenated pair; a lightweight *MLP decoder* unifies their channels, upsamples them to 1/4,
fuses them, upsamples the fused map (to the input resolution with transposed convolutions in
the paper) and classifies every pixel.
"""
import math
from typing import List, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_norm_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from torch import Tensor

from hicd_mm.registry import MODELS


class DifferenceModule(nn.Module):
    """conv3x3(cat[t1, t2]) -> ReLU -> BN -> conv3x3 -> ReLU, the paper's difference module.

    Args:
        channels (int): Channels of one projected date; the module maps 2C -> C.
        norm_cfg (dict): Normalisation after the first conv.
    """

    def __init__(self, channels: int, norm_cfg: dict) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2 * channels, channels, 3, padding=1)
        self.norm = build_norm_layer(norm_cfg, channels)[1]
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, f_t1: Tensor, f_t2: Tensor) -> Tensor:
        x = self.norm(self.relu(self.conv1(torch.cat([f_t1, f_t2], dim=1))))
        return self.relu(self.conv2(x))


class UpsampleBlock(nn.Module):
    """x2 transposed convolution followed by a residual block of two 3x3 convs."""

    def __init__(self, channels: int, norm_cfg: dict, act_cfg: dict) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1)
        self.res = nn.Sequential(
            ConvModule(channels, channels, 3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg),
            ConvModule(channels, channels, 3, padding=1, norm_cfg=norm_cfg, act_cfg=None))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.up(x))
        return self.relu(x + self.res(x))


@MODELS.register_module()
class ChangeFormerHead(BaseDecodeHead):
    """Difference modules + MLP decoder of ChangeFormer.

    Input: the four fused levels of :class:`FeatureFusionNeck` with ``policy='concat'``
    (``[f_t1 | f_t2]`` per level, split back with ``torch.chunk``). For each level i
    (finest first, strides 4, 8, 16, 32 for MiT):

    1. a linear layer (1x1 conv, shared by both dates) projects f_t1 and f_t2 to
       ``channels`` (the embedding dimension);
    2. a difference module gives D_i; the maps are refined progressively from coarse to
       fine, ``D_i <- D_i + up(D_{i+1})``;
    3. every D_i is upsampled to the finest level (1/4), the four are concatenated and fused
       by an MLP (1x1 conv-BN-ReLU);
    4. ``log2(final_upsample)`` blocks of (x2 transposed conv + residual conv block) bring
       the map to 1/1 (``final_upsample=4``, the paper) or leave it at 1/4 (``1``, a
       SegFormer-like light variant; the logits are then resized bilinearly by mmseg);
    5. the result is the **change feature** (``channels`` wide) fed to ``cls_seg``.

    With MiT-b0 and a 256x256 input: change feature (N, channels, 256, 256) for
    ``final_upsample=4``, (N, channels, 64, 64) for ``final_upsample=1``.

    Args:
        in_channels (list[int]): Fused channels per level (2x the backbone's).
        channels (int): Embedding dimension of the decoder.
        final_upsample (int): 1, 2 or 4: upsampling applied after the fusion.
        **kwargs: :class:`BaseDecodeHead` arguments.
    """

    def __init__(self, in_channels: Sequence[int], channels: int = 256,
                 final_upsample: int = 4, **kwargs) -> None:
        kwargs.setdefault('in_index', list(range(len(in_channels))))
        kwargs.setdefault('input_transform', 'multiple_select')
        kwargs.setdefault('norm_cfg', dict(type='BN', requires_grad=True))
        super().__init__(in_channels=list(in_channels), channels=channels, **kwargs)
        if final_upsample < 1 or 2**int(round(math.log2(final_upsample))) != final_upsample:
            raise ValueError(f'final_upsample must be 1, 2, 4, ..., got {final_upsample}')
        for c in self.in_channels:
            if c % 2:
                raise ValueError(f'in_channels must be the concatenated pair (even), got '
                                 f'{self.in_channels}')
        self.final_upsample = final_upsample
        self.proj = nn.ModuleList(nn.Conv2d(c // 2, channels, 1) for c in self.in_channels)
        self.diff = nn.ModuleList(
            DifferenceModule(channels, self.norm_cfg) for _ in self.in_channels)
        self.fuse = ConvModule(len(self.in_channels) * channels, channels, 1,
                               conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                               act_cfg=self.act_cfg)
        self.upsample = nn.Sequential(*[
            UpsampleBlock(channels, self.norm_cfg, self.act_cfg)
            for _ in range(int(round(math.log2(final_upsample))))])

    def _split_dates(self, inputs) -> List[tuple]:
        feats = self._transform_inputs(inputs)
        pairs = []
        for i, (x, c) in enumerate(zip(feats, self.in_channels)):
            if x.shape[1] != c:
                raise ValueError(
                    f'ChangeFormerHead level {i} expects the concatenated pair with {c} '
                    f"channels (FeatureFusionNeck(policy='concat')), got {x.shape[1]}")
            pairs.append(torch.chunk(x, 2, dim=1))
        return pairs

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        pairs = self._split_dates(inputs)
        diffs = [None] * len(pairs)
        for i in range(len(pairs) - 1, -1, -1):  # coarse to fine
            f_t1, f_t2 = pairs[i]
            d = self.diff[i](self.proj[i](f_t1), self.proj[i](f_t2))
            if i + 1 < len(pairs):
                d = d + resize(diffs[i + 1], size=d.shape[2:], mode='bilinear',
                               align_corners=self.align_corners)
            diffs[i] = d
        size = diffs[0].shape[2:]
        x = self.fuse(torch.cat([diffs[0]] + [
            resize(d, size=size, mode='bilinear', align_corners=self.align_corners)
            for d in diffs[1:]], dim=1))
        x = self.upsample(x)
        return self.cls_seg(x)
