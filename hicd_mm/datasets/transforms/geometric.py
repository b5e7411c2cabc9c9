"""Paired geometric augmentation: ONE random draw applied to both images and every label.

Every transform here acts on all image lists named in ``IMAGE_KEYS`` that are present in
``results`` (``img`` and, once a degradation has split the pair, its high-quality copy
``img_hq``) and on every key of ``results['seg_fields']``, so images and labels stay aligned.
"""
from typing import Callable, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from hicd_mm.registry import TRANSFORMS

IMAGE_KEYS = ('img', 'img_hq')


def apply_to_pair(results: dict, img_fn: Callable[[np.ndarray], np.ndarray],
                  seg_fn: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> None:
    """Apply ``img_fn`` to every image of every pair and ``seg_fn`` to every label, in place.

    Args:
        results (dict): Pipeline results.
        img_fn (callable): Function applied to each image.
        seg_fn (callable, optional): Function applied to each label (default ``img_fn``).
    """
    seg_fn = seg_fn or img_fn
    for key in IMAGE_KEYS:
        if key in results:
            results[key] = [np.ascontiguousarray(img_fn(img)) for img in results[key]]
    for key in results.get('seg_fields', []):
        results[key] = np.ascontiguousarray(seg_fn(results[key]))
    results['img_shape'] = results['img'][0].shape[:2]


@TRANSFORMS.register_module()
class MultiImgRandomFlip(BaseTransform):
    """Flip the pair and its labels with probability ``prob``.

    Args:
        prob (float): Flip probability.
        direction (str | list[str]): ``'horizontal'``, ``'vertical'``, ``'diagonal'`` or a list
            to choose from uniformly.
    """

    def __init__(self, prob: float = 0.5,
                 direction: Union[str, Sequence[str]] = 'horizontal') -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        directions = [direction] if isinstance(direction, str) else list(direction)
        for d in directions:
            if d not in ('horizontal', 'vertical', 'diagonal'):
                raise ValueError(f'unknown flip direction {d!r}')
        self.prob = prob
        self.directions = directions

    @cache_randomness
    def _draw(self) -> Optional[str]:
        if np.random.rand() >= self.prob:
            return None
        return self.directions[np.random.randint(len(self.directions))]

    def transform(self, results: dict) -> dict:
        direction = self._draw()
        results['flip'] = direction is not None
        results['flip_direction'] = direction
        if direction is not None:
            apply_to_pair(results, lambda x: mmcv.imflip(x, direction=direction))
        return results


@TRANSFORMS.register_module()
class MultiImgRandomRot90(BaseTransform):
    """Rotate the pair and labels by k*90 degrees (k drawn from {1, 2, 3}) with prob ``prob``."""

    def __init__(self, prob: float = 0.5) -> None:
        self.prob = prob

    @cache_randomness
    def _draw(self) -> int:
        return 0 if np.random.rand() >= self.prob else int(np.random.randint(1, 4))

    def transform(self, results: dict) -> dict:
        k = self._draw()
        if k:
            apply_to_pair(results, lambda x: np.rot90(x, k))
        return results


@TRANSFORMS.register_module()
class MultiImgRandomRotate(BaseTransform):
    """Rotate the pair by a random angle in ``[-degree, degree]`` with probability ``prob``.

    Images use bilinear interpolation and ``pad_val``; labels use nearest and ``seg_pad_val``.
    """

    def __init__(self, prob: float, degree: Union[float, Tuple[float, float]],
                 pad_val: float = 0, seg_pad_val: int = 255,
                 auto_bound: bool = False) -> None:
        self.prob = prob
        self.degree = (-degree, degree) if isinstance(degree, (int, float)) else tuple(degree)
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val
        self.auto_bound = auto_bound

    @cache_randomness
    def _draw(self) -> Optional[float]:
        if np.random.rand() >= self.prob:
            return None
        return float(np.random.uniform(*self.degree))

    def transform(self, results: dict) -> dict:
        angle = self._draw()
        if angle is not None:
            apply_to_pair(
                results,
                lambda x: mmcv.imrotate(x, angle, border_value=self.pad_val,
                                        auto_bound=self.auto_bound),
                lambda x: mmcv.imrotate(x, angle, border_value=self.seg_pad_val,
                                        auto_bound=self.auto_bound, interpolation='nearest'))
        return results


@TRANSFORMS.register_module()
class MultiImgRandomCrop(BaseTransform):
    """Random crop of the pair and its labels with one crop box.

    Args:
        crop_size (int | tuple[int, int]): (height, width) of the crop.
        cat_max_ratio (float): Retry (up to 10 times) while a single category covers more than
            this fraction of the labelled pixels of the crop.
        ignore_index (int): Label value excluded from that ratio.
    """

    def __init__(self, crop_size: Union[int, Tuple[int, int]], cat_max_ratio: float = 1.0,
                 ignore_index: int = 255) -> None:
        crop_size = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(crop_size)
        if min(crop_size) <= 0:
            raise ValueError(f'crop_size must be positive, got {crop_size}')
        self.crop_size = crop_size
        self.cat_max_ratio = cat_max_ratio
        self.ignore_index = ignore_index

    def _random_box(self, shape: Tuple[int, int]) -> Tuple[int, int, int, int]:
        margin_h = max(shape[0] - self.crop_size[0], 0)
        margin_w = max(shape[1] - self.crop_size[1], 0)
        y1 = np.random.randint(0, margin_h + 1)
        x1 = np.random.randint(0, margin_w + 1)
        return y1, y1 + self.crop_size[0], x1, x1 + self.crop_size[1]

    def _acceptable(self, label: np.ndarray) -> bool:
        values, counts = np.unique(label, return_counts=True)
        counts = counts[values != self.ignore_index]
        return len(counts) > 1 and counts.max() / counts.sum() < self.cat_max_ratio

    @cache_randomness
    def _draw_box(self, results: dict) -> Tuple[int, int, int, int]:
        box = self._random_box(results['img'][0].shape[:2])
        if self.cat_max_ratio < 1.0 and 'gt_seg_map' in results:
            for _ in range(10):
                y1, y2, x1, x2 = box
                if self._acceptable(results['gt_seg_map'][y1:y2, x1:x2]):
                    break
                box = self._random_box(results['img'][0].shape[:2])
        return box

    def transform(self, results: dict) -> dict:
        y1, y2, x1, x2 = self._draw_box(results)
        apply_to_pair(results, lambda x: x[y1:y2, x1:x2, ...])
        return results


@TRANSFORMS.register_module()
class MultiImgResize(BaseTransform):
    """Resize the pair (bilinear) and its labels (nearest) to one size.

    Args:
        scale (tuple[int, int]): Target (width, height), or the bounding scale with
            ``keep_ratio=True``.
        keep_ratio (bool): Keep the aspect ratio (mmcv ``imrescale``).
    """

    def __init__(self, scale: Tuple[int, int], keep_ratio: bool = False,
                 interpolation: str = 'bilinear') -> None:
        self.scale = tuple(scale)
        self.keep_ratio = keep_ratio
        self.interpolation = interpolation

    def _resize(self, img: np.ndarray, interpolation: str) -> np.ndarray:
        if self.keep_ratio:
            return mmcv.imrescale(img, self.scale, interpolation=interpolation)
        return mmcv.imresize(img, self.scale, interpolation=interpolation)

    def transform(self, results: dict) -> dict:
        h, w = results['img'][0].shape[:2]
        apply_to_pair(results, lambda x: self._resize(x, self.interpolation),
                      lambda x: self._resize(x, 'nearest'))
        new_h, new_w = results['img'][0].shape[:2]
        results['scale_factor'] = (new_w / w, new_h / h)
        results['keep_ratio'] = self.keep_ratio
        return results
