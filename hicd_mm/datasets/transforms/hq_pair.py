"""The pipeline steps of the HQ-pair contract of a HiCD training pipeline.

:class:`DegradeImage` degrades one image of the pair (B by default) and, with ``keep_hq=True``,
keeps the untouched high-quality copy in ``results['img_hq']``; :class:`PackHQPair` then packs
that copy as its own field ``inputs_hq`` with the host's own packer, next to the LQ ``inputs``.
"""
import copy
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from hicd_mm.datasets.degradations import apply_spec, build_specs, check_image, degradation_rng
from hicd_mm.registry import TRANSFORMS

_TARGETS = {'A': 0, 'B': 1, 0: 0, 1: 1}
# The contract's two keys: DegradeImage writes the HQ copy, PackHQPair packs it as its own field.
HQ_RESULTS_KEY = 'img_hq'
HQ_INPUTS_KEY = 'inputs_hq'


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
        if self.keep_hq and HQ_RESULTS_KEY not in results:
            results[HQ_RESULTS_KEY] = [imgs[0].copy(), imgs[1].copy()]
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


@TRANSFORMS.register_module()
class PackHQPair(BaseTransform):
    """Run a host packing step on the LQ pair and again on its HQ copy (``inputs_hq``).

    The last step of a HiCD training pipeline: ``DegradeImage(keep_hq=True)`` right before it
    stored the untouched pair in ``results['img_hq']``. Packers that keep only the keys they
    know (Open-CD's ``MultiImgPackSegInputs``) would drop it, so this step wraps the host's
    packer: its output is the packer's own (``inputs``, ``data_samples``) plus ``inputs_hq``,
    the HQ pair packed by the same packer, which the student's data preprocessor then treats
    exactly like ``inputs`` (:class:`~hicd_mm.models.HQPairDataPreprocessor`) and which reaches
    ``HiCDDistiller.forward(inputs_hq=...)`` by name.

    A HiCD config replaces the host's packing step with it, e.g.::

        pipeline=[*_base_.train_dataloader.dataset.pipeline[:-1],
                  _base_.train_degradation,      # hicd_mm.DegradeImage(keep_hq=True)
                  dict(type='hicd_mm.PackHQPair',
                       packer=_base_.train_dataloader.dataset.pipeline[-1])]

    Args:
        packer (dict | callable): The host's packing transform (its type resolves in the
            config's default scope, e.g. Open-CD's ``MultiImgPackSegInputs``).
    """

    def __init__(self, packer: Union[dict, BaseTransform]) -> None:
        self.packer = TRANSFORMS.build(packer) if isinstance(packer, dict) else packer
        if not callable(self.packer):
            raise TypeError(f'PackHQPair: packer must be a transform config, got {packer!r}')

    def transform(self, results: dict) -> dict:
        """Pack ``img`` with the host packer and add the HQ copy as ``inputs_hq``.

        Args:
            results (dict): Pipeline results holding ``img`` (LQ pair) and ``img_hq``.

        Returns:
            dict: The host packer's output plus ``inputs_hq``.
        """
        if HQ_RESULTS_KEY not in results:
            raise KeyError(
                "PackHQPair: results has no 'img_hq' (the high-quality copy of the pair). Put "
                "dict(type='hicd_mm.DegradeImage', ..., keep_hq=True) in the pipeline right "
                'before this packing step (after the augmentations)')
        hq_results = copy.copy(results)
        hq_results['img'] = results[HQ_RESULTS_KEY]
        packed = self.packer(results)
        hq_inputs = self.packer(hq_results)['inputs']
        lq_inputs = packed['inputs']
        if not isinstance(hq_inputs, torch.Tensor) or hq_inputs.shape != lq_inputs.shape:
            raise RuntimeError(
                f'PackHQPair: the packed HQ pair has shape {tuple(getattr(hq_inputs, "shape", ()))}'
                f', the LQ pair {tuple(lq_inputs.shape)}; the degradation must keep the size')
        packed[HQ_INPUTS_KEY] = hq_inputs
        return packed

    def __repr__(self) -> str:
        return f'{type(self).__name__}(packer={self.packer!r})'
