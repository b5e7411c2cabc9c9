"""Siamese encoder-decoder change detector (Open-CD model contract)."""
from typing import List, Optional

import torch
from mmseg.models.segmentors import EncoderDecoder
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from hicd_mm.registry import MODELS


@MODELS.register_module()
class SiamEncoderDecoder(EncoderDecoder):
    """Shared-weight encoder on t1 and t2, a fusion neck and a change decode head.

    ``inputs`` are (N, 2*C, H, W) with t1 in the first ``backbone_inchannels`` channels. The
    backbone is called twice, once per date, so a forward hook on ``backbone`` sees t1 then
    t2 (the per-image **semantic features**, one tuple of stage outputs per call). The neck fuses
    the two feature tuples; the decode head predicts the change map. The tensor the head feeds
    to its final classifier (the **change feature**) is the input of ``decode_head.conv_seg``.
    Loss, whole/sliding-window inference, padding removal and resizing back to the original
    size are those of :class:`mmseg.models.EncoderDecoder`.

    Args:
        backbone (dict): Per-image encoder config.
        decode_head (dict): Change head config.
        neck (dict): Bi-temporal fusion neck, called as ``neck(feats_t1, feats_t2)``.
        auxiliary_head (dict, optional): Auxiliary head config(s).
        train_cfg (dict, optional): Training config.
        test_cfg (dict, optional): ``mode='whole'`` or ``'slide'`` with ``crop_size``/``stride``.
        data_preprocessor (dict, optional): Usually :class:`DualInputSegDataPreProcessor`.
        pretrained (str, optional): Backbone checkpoint.
        init_cfg (dict, optional): Initialisation config.
        backbone_inchannels (int): Channels of one image.
    """

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 neck: ConfigType,
                 auxiliary_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None,
                 backbone_inchannels: int = 3) -> None:
        if neck is None:
            raise ValueError('SiamEncoderDecoder needs a fusion neck (e.g. '
                             'FeatureFusionNeck) to combine the t1 and t2 features')
        super().__init__(backbone=backbone, decode_head=decode_head, neck=neck,
                         auxiliary_head=auxiliary_head, train_cfg=train_cfg,
                         test_cfg=test_cfg if test_cfg is not None else dict(mode='whole'),
                         data_preprocessor=data_preprocessor, pretrained=pretrained,
                         init_cfg=init_cfg)
        self.backbone_inchannels = backbone_inchannels

    def split_pair(self, inputs: Tensor) -> List[Tensor]:
        """Split (N, 2*C, H, W) inputs into the t1 and t2 images, checking the channel count."""
        if inputs.dim() != 4 or inputs.shape[1] != 2 * self.backbone_inchannels:
            raise ValueError(
                f'{type(self).__name__} expects a bi-temporal pair of shape (N, '
                f'{2 * self.backbone_inchannels}, H, W) = t1 and t2 stacked on channels, got '
                f'{tuple(inputs.shape)}')
        return list(torch.split(inputs, self.backbone_inchannels, dim=1))

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """Encode t1 and t2 with the shared backbone and fuse them with the neck."""
        img_t1, img_t2 = self.split_pair(inputs)
        feats_t1 = self.backbone(img_t1)
        feats_t2 = self.backbone(img_t2)
        return self.neck(feats_t1, feats_t2)
