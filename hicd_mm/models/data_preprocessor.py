"""Data preprocessor for stacked bi-temporal inputs (6 channels per pair)."""
from numbers import Number
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from hicd_mm.registry import MODELS


@MODELS.register_module()
class DualInputSegDataPreProcessor(BaseDataPreprocessor):
    """Normalise, colour-convert and pad bi-temporal inputs, then stack them into a batch.

    ``inputs`` are (3*k, H, W) tensors (k = 2 for a pair). Each 3-channel image gets the
    same per-image treatment: BGR->RGB (optional) and ``(x - mean) / std``. Normalisation runs
    before padding, so padded pixels are exactly ``pad_val`` in normalised space. Every sample
    is padded at the bottom/right to the batch maximum rounded up to ``size_divisor`` (or to
    ``size``); labels are padded with ``seg_pad_val``. The padding is recorded in each sample's
    metainfo (``padding_size`` = (left, right, top, bottom), ``img_shape``, ``pad_shape``) so
    that prediction can remove it.

    Args:
        mean (Sequence[float]): 3 values (one image) or 6 (t1 then t2, Open-CD style).
        std (Sequence[float]): Same layout as ``mean``.
        size (tuple[int, int], optional): Fixed padded (H, W).
        size_divisor (int, optional): Pad H and W up to a multiple of this.
        pad_val (float): Image padding value (after normalisation).
        seg_pad_val (int): Label padding value.
        bgr_to_rgb (bool): Reverse the channel order of each image.
        test_cfg (dict, optional): ``size`` / ``size_divisor`` used outside training.
    """

    def __init__(self,
                 mean: Optional[Sequence[Number]] = None,
                 std: Optional[Sequence[Number]] = None,
                 size: Optional[tuple] = None,
                 size_divisor: Optional[int] = None,
                 pad_val: Number = 0,
                 seg_pad_val: Number = 255,
                 bgr_to_rgb: bool = False,
                 test_cfg: Optional[dict] = None) -> None:
        super().__init__()
        self.size = size
        self.size_divisor = size_divisor
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val
        self.bgr_to_rgb = bgr_to_rgb
        self.test_cfg = test_cfg or {}
        self._enable_normalize = mean is not None
        if self._enable_normalize:
            if std is None or len(mean) != len(std) or len(mean) not in (3, 6):
                raise ValueError('mean and std must both have 3 values (per image) or 6 '
                                 f'(t1 then t2), got mean={mean}, std={std}')
            self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1),
                                 False)
            self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(-1, 1, 1),
                                 False)

    def _normalize(self, img: torch.Tensor) -> torch.Tensor:
        channels = img.shape[0]
        if channels % 3 != 0:
            raise ValueError(f'bi-temporal inputs must have 3 channels per image, got '
                             f'{channels} channels')
        num_imgs = channels // 3
        if self.bgr_to_rgb:
            order = [3 * i + c for i in range(num_imgs) for c in (2, 1, 0)]
            img = img[order]
        img = img.float()
        if self._enable_normalize:
            reps = channels // self.mean.shape[0]
            if reps * self.mean.shape[0] != channels:
                raise ValueError(f'mean has {self.mean.shape[0]} values but the input has '
                                 f'{channels} channels')
            img = (img - self.mean.repeat(reps, 1, 1)) / self.std.repeat(reps, 1, 1)
        return img

    def _target_shape(self, shapes: List[torch.Size], training: bool) -> tuple:
        size = self.size if training else self.test_cfg.get('size', self.size)
        divisor = self.size_divisor if training else self.test_cfg.get(
            'size_divisor', self.size_divisor)
        if size is not None:
            return tuple(size)
        max_h = max(s[-2] for s in shapes)
        max_w = max(s[-1] for s in shapes)
        if divisor:
            max_h = -(-max_h // divisor) * divisor
            max_w = -(-max_w // divisor) * divisor
        return max_h, max_w

    def forward(self, data: dict, training: bool = False) -> dict:
        """Normalise, pad and stack a batch.

        Args:
            data (dict): ``inputs`` (list of (3k, H, W) tensors) and ``data_samples``.
            training (bool): Whether the model is training.

        Returns:
            dict: ``inputs`` (N, 3k, H, W) float tensor and ``data_samples``.
        """
        data = self.cast_data(data)
        inputs = [self._normalize(img) for img in data['inputs']]
        samples: Optional[List[SegDataSample]] = data.get('data_samples')
        target_h, target_w = self._target_shape([img.shape for img in inputs], training)
        padded = []
        for i, img in enumerate(inputs):
            h, w = img.shape[-2:]
            if h > target_h or w > target_w:
                raise ValueError(f'input of size {h}x{w} is larger than the padding target '
                                 f'{target_h}x{target_w} (size={self.size})')
            pad = (0, target_w - w, 0, target_h - h)
            padded.append(F.pad(img, pad, value=self.pad_val))
            if samples is not None:
                self._pad_sample(samples[i], pad, (h, w), (target_h, target_w), training)
        return dict(inputs=torch.stack(padded), data_samples=samples)

    def _pad_sample(self, sample: SegDataSample, pad: tuple, img_shape: tuple,
                    pad_shape: tuple, training: bool) -> None:
        # Labels are padded for the training loss only; evaluation compares predictions
        # (cropped back to the original size) with the unpadded labels.
        if training:
            for field in ('gt_sem_seg', 'gt_edge_map'):
                if field in sample:
                    padded = F.pad(getattr(sample, field).data, pad, value=self.seg_pad_val)
                    setattr(sample, field, PixelData(data=padded))
        sample.set_metainfo(dict(img_shape=img_shape, pad_shape=pad_shape,
                                 padding_size=pad))
