"""Degrade one image of the pair and keep the untouched high-quality pair for the teacher."""
from typing import Any, Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform

from hicd_mm.datasets.degradations import apply_spec, build_specs, check_image, degradation_rng
from hicd_mm.registry import TRANSFORMS

_TARGETS = {'A': 0, 'B': 1, 0: 0, 1: 1}


@TRANSFORMS.register_module()
class DegradeImage(BaseTransform):
    """Degrade one temporal image (B by default) of ``results['img']``.

    With ``keep_hq=True`` (training HiCD) the untouched pair is first stored as
    ``results['img_hq'] = [A, B]``; :class:`PackHQPair` (the packing step right after this
    transform) packs it as ``inputs_hq``, the student's data
    preprocessor normalises and pads it like the LQ pair, and the distiller gives the LQ pair to
    the student and the HQ pair to the teacher.
    With ``keep_hq=False`` (val/test, no teacher) only the degraded pair is kept.

    Place it AFTER the geometric and photometric augmentations of a training pipeline (crop,
    flip, rotate and the photometric distortion change the scene, the degradation models the
    sensor; ``MultiImgPhotoMetricDistortion`` refuses to run after it). Geometric transforms
    placed after it would still act on both pairs identically. If an HQ copy already exists
    (several degradation transforms in a row) it is kept and ``results['degradation']``
    becomes a list of records.

    Randomness: with ``seed`` set, sample ``i`` (``results['sample_idx']``, written by
    mmengine's ``BaseDataset``) is degraded with ``np.random.default_rng([seed, i])``, so a
    test set is fixed and identical to the one ``tools/degrade_dataset.py --seed`` writes.
    With ``seed=None`` (training) a fresh generator is seeded from NumPy's global RNG on every
    call, so parameters vary per iteration while ``randomness.seed`` and mmengine's worker
    seeding keep runs reproducible.

    The drawn parameters are recorded in ``results['degradation']`` (copied into the data
    sample's metainfo by the packer): ``dict(name, [severity], [scale], params, target,
    seed, sample_idx | rng_seed)``.

    Args:
        degradation (str | dict | list): A name from
            :data:`hicd_mm.datasets.degradations.NAMES`, a dict ``dict(name=..., **options)``,
            or a list of them (one drawn uniformly per sample).
        severity (int | list[int], optional): Severity 1-5 of single degradations (a list:
            drawn per sample).
        scale (float | tuple, optional): ``resolution``: downsampling factor >= 1 or a
            ``(lo, hi)`` range (size ratio drawn in [1/hi, 1/lo]); ``multi``: scale factor sf.
        kernel (str | list[str], optional): ``resolution`` downsampling kernel(s): bicubic
            (default), bilinear, area, nearest.
        up_kernel (str, optional): ``resolution`` kernel back to full size (default bicubic).
        target (str): ``'B'`` (default) or ``'A'``: the image to degrade.
        keep_hq (bool): Store the untouched pair in ``results['img_hq']``.
        seed (int, optional): Fixed seed for reproducible (test) degradations.

    All arguments are validated here, so a bad config fails when the pipeline is built.
    """

    def __init__(self,
                 degradation: Union[str, dict, Sequence[Union[str, dict]]],
                 severity: Any = None,
                 scale: Any = None,
                 kernel: Any = None,
                 up_kernel: Optional[str] = None,
                 target: Union[str, int] = 'B',
                 keep_hq: bool = True,
                 seed: Optional[int] = None) -> None:
        self.specs = build_specs(degradation, severity=severity, scale=scale, kernel=kernel,
                                 up_kernel=up_kernel)
        if isinstance(target, bool) or target not in _TARGETS:
            raise ValueError(f"target must be 'A' or 'B', got {target!r}")
        if not isinstance(keep_hq, bool):
            raise TypeError(f'keep_hq must be True or False, got {keep_hq!r}')
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f'seed must be a non-negative int or None, got {seed!r}')
        self.degradation = degradation
        self.target = 'AB'[_TARGETS[target]]
        self.index = _TARGETS[target]
        self.keep_hq = keep_hq
        self.seed = None if seed is None else int(seed)

    def _rng(self, results: dict):
        if self.seed is None:
            rng_seed = int(np.random.randint(0, 2**63 - 1, dtype=np.int64))
            return np.random.default_rng(rng_seed), dict(seed=None, rng_seed=rng_seed)
        if 'sample_idx' not in results:
            raise KeyError(
                "DegradeImage(seed=...) needs results['sample_idx'] (the sample index that "
                "mmengine's BaseDataset adds to every data info); when calling the transform "
                'by hand, put sample_idx into the results dict')
        idx = int(results['sample_idx'])
        return degradation_rng(self.seed, idx), dict(seed=self.seed, sample_idx=idx)

    def transform(self, results: dict) -> dict:
        imgs = results.get('img')
        if not isinstance(imgs, (list, tuple)) or len(imgs) != 2:
            raise ValueError('DegradeImage expects results["img"] to be a list of two images '
                             f'(A, B), got {type(imgs).__name__}')
        img = imgs[self.index]
        check_image(img, f'image {self.target}')
        rng, seed_info = self._rng(results)
        degraded, record = apply_spec(img, self.specs, rng)
        record.update(target=self.target, **seed_info)
        if self.keep_hq and 'img_hq' not in results:
            results['img_hq'] = [imgs[0].copy(), imgs[1].copy()]
        new = list(imgs)
        new[self.index] = degraded
        results['img'] = new
        previous = results.get('degradation')
        if previous is None:
            results['degradation'] = record
        else:
            previous = previous if isinstance(previous, list) else [previous]
            results['degradation'] = previous + [record]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(degradation={self.degradation!r}, specs={self.specs}, '
                f'target={self.target!r}, keep_hq={self.keep_hq}, seed={self.seed})')
