"""Packing a pair into model inputs."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from hicd_mm.registry import TRANSFORMS


def images_to_tensor(imgs: Sequence[np.ndarray]) -> torch.Tensor:
    """Concatenate HxW(xC) images along channels into one (sum C, H, W) tensor."""
    chans = [img[..., None] if img.ndim == 2 else img for img in imgs]
    stacked = np.concatenate(chans, axis=-1).transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(stacked))


@TRANSFORMS.register_module()
class MultiImgPackSegInputs(BaseTransform):
    """Pack the pair into ``inputs`` (C_t1 + C_t2 channels, t1 first) and a SegDataSample.

    Like Open-CD's packer, only the pair in ``results['img']`` is packed. The high-quality copy
    of a HiCD training pair is packed separately, by the same packer, by :class:`PackHQPair`.

    Args:
        meta_keys (Sequence[str]): Keys copied into the data sample's metainfo when present.
    """

    def __init__(self, meta_keys: Sequence[str] = (
            'img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor',
            'flip', 'flip_direction', 'degradation')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        imgs = list(results['img'])
        if len(imgs) != 2:
            raise ValueError(f'expected a pair of images in results["img"], got {len(imgs)}')
        packed = dict(inputs=images_to_tensor(imgs))
        sample = SegDataSample()
        if 'gt_seg_map' in results:
            label = torch.from_numpy(results['gt_seg_map'][None].astype(np.int64))
            sample.gt_sem_seg = PixelData(data=label)
        metainfo = {k: results[k] for k in self.meta_keys if k in results}
        sample.set_metainfo(metainfo)
        packed['data_samples'] = sample
        return packed

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
