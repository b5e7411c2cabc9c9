"""Photometric augmentation drawn independently for each temporal image."""
from mmcv.transforms import BaseTransform
from mmseg.datasets.transforms import PhotoMetricDistortion

from hicd_mm.registry import TRANSFORMS


@TRANSFORMS.register_module()
class MultiImgPhotoMetricDistortion(BaseTransform):
    """mmseg's ``PhotoMetricDistortion`` applied to t1 and t2 with separate random draws.

    Real image pairs differ in illumination and colour, so each date gets its own distortion
    (as in Open-CD). Arguments are those of
    :class:`mmseg.datasets.transforms.PhotoMetricDistortion`.
    Only ``results['img']`` is distorted: it must run before a degradation splits the pair, so
    that the high-quality copy carries the same photometric change.
    """

    def __init__(self, brightness_delta: int = 32, contrast_range=(0.5, 1.5),
                 saturation_range=(0.5, 1.5), hue_delta: int = 18) -> None:
        self.distortion = PhotoMetricDistortion(brightness_delta, tuple(contrast_range),
                                                tuple(saturation_range), hue_delta)

    def transform(self, results: dict) -> dict:
        if 'img_hq' in results:
            raise RuntimeError('MultiImgPhotoMetricDistortion must run before the degradation '
                               'transform (the HQ copy would not get the same distortion)')
        results['img'] = [self.distortion.transform(dict(img=img))['img']
                          for img in results['img']]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.distortion!r})'
