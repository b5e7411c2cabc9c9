"""BIT: the bitemporal image transformer head (Chen, Qi and Shi, IEEE TGRS 2022).

Written from the paper "Remote Sensing Image Change Detection with Transformers"
(arXiv:2103.00208): a CNN backbone encodes each date; a *semantic tokenizer* pools each
feature map into a few tokens with learned spatial attention; a transformer *encoder* models
the context of the 2L tokens of both dates; a siamese transformer *decoder* projects the
refined tokens back to pixel space (pixels are the queries, the tokens of the same date the
keys/values); the prediction head classifies the absolute difference of the two refined
feature maps with a shallow FCN.
"""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from torch import Tensor

from hicd_mm.registry import MODELS


class FeedForward(nn.Module):
    """Position-wise MLP of a transformer block: Linear -> GELU -> Linear (with dropout)."""

    def __init__(self, dims: int, hidden_dims: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(dims, hidden_dims), nn.GELU(), nn.Dropout(drop_rate),
            nn.Linear(hidden_dims, dims), nn.Dropout(drop_rate))

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class TokenEncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer (multi-head self-attention + MLP) over the tokens."""

    def __init__(self, dims: int, num_heads: int, ffn_dims: int, drop_rate: float,
                 norm_cfg: dict) -> None:
        super().__init__()
        self.norm1 = build_norm_layer(norm_cfg, dims)[1]
        self.attn = nn.MultiheadAttention(dims, num_heads, dropout=drop_rate, batch_first=True)
        self.norm2 = build_norm_layer(norm_cfg, dims)[1]
        self.ffn = FeedForward(dims, ffn_dims, drop_rate)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens: (N, 2L, C)."""
        x = self.norm1(tokens)
        tokens = tokens + self.attn(x, x, x, need_weights=False)[0]
        return tokens + self.ffn(self.norm2(tokens))


class PixelDecoderLayer(nn.Module):
    """BIT decoder layer: pixels attend to the tokens (cross-attention) then an MLP.

    As in the paper the decoder has no self-attention between pixels, so its cost is linear in
    the number of pixels.
    """

    def __init__(self, dims: int, num_heads: int, ffn_dims: int, drop_rate: float,
                 norm_cfg: dict) -> None:
        super().__init__()
        self.norm_q = build_norm_layer(norm_cfg, dims)[1]
        self.norm_kv = build_norm_layer(norm_cfg, dims)[1]
        self.attn = nn.MultiheadAttention(dims, num_heads, dropout=drop_rate, batch_first=True)
        self.norm2 = build_norm_layer(norm_cfg, dims)[1]
        self.ffn = FeedForward(dims, ffn_dims, drop_rate)

    def forward(self, pixels: Tensor, tokens: Tensor) -> Tensor:
        """pixels: (N, HW, C) queries; tokens: (N, L, C) keys and values."""
        kv = self.norm_kv(tokens)
        pixels = pixels + self.attn(self.norm_q(pixels), kv, kv, need_weights=False)[0]
        return pixels + self.ffn(self.norm2(pixels))


@MODELS.register_module()
class BITHead(BaseDecodeHead):
    """Bitemporal image transformer change head.

    Input: the fused tuple of :class:`FeatureFusionNeck` with ``policy='concat'``; the map at
    ``in_index`` is ``[f_t1 | f_t2]`` with ``2 * in_channels`` channels and is split back with
    ``torch.chunk``. Steps (C = ``channels``, L = ``token_len``):

    1. per date: upsample by ``pre_upsample`` and reduce to C channels with a 3x3 conv;
    2. semantic tokenizer: a 1x1 conv gives L attention maps, softmax over the positions,
       each token is the attention-weighted sum of the features -> (N, L, C) per date;
    3. transformer encoder (``enc_depth`` layers, multi-head self-attention with
       ``num_heads`` heads and an MLP of width ``embed_dims``) over the 2L tokens of both
       dates, plus a learned positional embedding (``enc_with_pos``);
    4. transformer decoder (``dec_depth`` layers, shared by the two dates): every pixel of
       date t queries the refined tokens of date t;
    5. ``|x_t1 - x_t2|``, bilinear upsampling by ``upsample_size``, a 3x3 conv-BN-ReLU
       (the **change feature**, C channels) and ``cls_seg`` (``conv_seg``: 1x1 conv).

    With the Open-CD BIT-R18 setting (backbone output at 1/8, ``pre_upsample=2``,
    ``upsample_size=4``) the change feature has full input resolution: (N, 32, H, W).

    Args:
        in_channels (int): Channels of ONE date's backbone map (the input has twice this).
        channels (int): Token / feature dimension C.
        embed_dims (int): Hidden width of the transformer MLPs (2C in the paper).
        enc_depth (int): Transformer encoder layers.
        enc_with_pos (bool): Add a learned positional embedding to the 2L tokens.
        dec_depth (int): Transformer decoder layers.
        num_heads (int): Attention heads (must divide ``channels``).
        drop_rate (float): Dropout in attention and MLPs.
        token_len (int): Tokens per date (L).
        pre_upsample (int): Upsampling of the backbone map before the reduction conv.
        upsample_size (int): Upsampling of the difference map before the classifier.
        transformer_norm_cfg (dict): Norm of the transformer layers (LN).
        **kwargs: :class:`BaseDecodeHead` arguments (``num_classes``, ``norm_cfg`` of the
            classifier conv, ``loss_decode``, ``in_index``, ...).
    """

    def __init__(self,
                 in_channels: int = 256,
                 channels: int = 32,
                 embed_dims: int = 64,
                 enc_depth: int = 1,
                 enc_with_pos: bool = True,
                 dec_depth: int = 8,
                 num_heads: int = 8,
                 drop_rate: float = 0.0,
                 token_len: int = 4,
                 pre_upsample: int = 2,
                 upsample_size: int = 4,
                 transformer_norm_cfg: dict = dict(type='LN'),
                 **kwargs) -> None:
        if not isinstance(in_channels, int):
            raise TypeError('BITHead takes a single fused level: in_channels must be the int '
                            f'channel count of one date, got {in_channels!r}')
        if channels % num_heads != 0:
            raise ValueError(f'num_heads={num_heads} must divide channels={channels}')
        kwargs.setdefault('norm_cfg', dict(type='BN', requires_grad=True))
        super().__init__(in_channels=in_channels, channels=channels, **kwargs)
        self.token_len = token_len
        self.pre_upsample = pre_upsample
        self.upsample_size = upsample_size

        self.reduce = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.token_attn = nn.Conv2d(channels, token_len, 1)
        self.pos_embed = nn.Parameter(torch.zeros(1, 2 * token_len, channels)) \
            if enc_with_pos else None
        self.encoder = nn.ModuleList(
            TokenEncoderLayer(channels, num_heads, embed_dims, drop_rate, transformer_norm_cfg)
            for _ in range(enc_depth))
        self.decoder = nn.ModuleList(
            PixelDecoderLayer(channels, num_heads, embed_dims, drop_rate, transformer_norm_cfg)
            for _ in range(dec_depth))
        self.classifier = ConvModule(channels, channels, 3, padding=1,
                                     conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                     act_cfg=self.act_cfg)
        if self.pos_embed is not None:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def _split_dates(self, inputs) -> Tuple[Tensor, Tensor]:
        x = self._transform_inputs(inputs)
        if x.shape[1] != 2 * self.in_channels:
            raise ValueError(
                f'BITHead expects the concatenated pair [f_t1 | f_t2] with '
                f'{2 * self.in_channels} channels (2 x in_channels={self.in_channels}; use '
                f"FeatureFusionNeck(policy='concat')), got {x.shape[1]} channels")
        return torch.chunk(x, 2, dim=1)

    def tokenize(self, x: Tensor) -> Tensor:
        """Semantic tokenizer: (N, C, H, W) -> (N, L, C)."""
        attn = self.token_attn(x).flatten(2).softmax(dim=-1)  # (N, L, HW)
        return torch.einsum('nlp,ncp->nlc', attn, x.flatten(2))

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        x1, x2 = self._split_dates(inputs)
        x = torch.cat([x1, x2], dim=0)  # both dates share every per-date layer
        if self.pre_upsample > 1:
            x = F.interpolate(x, scale_factor=self.pre_upsample, mode='bilinear',
                              align_corners=self.align_corners)
        x = self.reduce(x)
        n2, c, h, w = x.shape
        n = n2 // 2

        tokens = self.tokenize(x)  # (2N, L, C): t1 samples first, then t2
        tokens = torch.cat([tokens[:n], tokens[n:]], dim=1)  # (N, 2L, C)
        if self.pos_embed is not None:
            tokens = tokens + self.pos_embed
        for layer in self.encoder:
            tokens = layer(tokens)
        tokens = torch.cat(torch.split(tokens, self.token_len, dim=1), dim=0)  # (2N, L, C)

        pixels = x.flatten(2).transpose(1, 2)  # (2N, HW, C)
        for layer in self.decoder:
            pixels = layer(pixels, tokens)
        x = pixels.transpose(1, 2).reshape(n2, c, h, w)

        diff = torch.abs(x[:n] - x[n:])
        if self.upsample_size > 1:
            diff = resize(diff, scale_factor=self.upsample_size, mode='bilinear',
                          align_corners=self.align_corners)
        return self.cls_seg(self.classifier(diff))
