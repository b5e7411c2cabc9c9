"""Image degradations for quality-varied change detection (pure NumPy/OpenCV functions).

Every degradation acts on ONE uint8 image (HxW, HxWx1 or HxWx3; 4-band images are rejected)
with an explicit ``numpy.random.Generator`` and returns ``(degraded, params)``: a uint8 image
of the same shape, clipped to [0, 255], and a JSON-serialisable dict of the parameters drawn.

Names (see :data:`NAMES` and ``docs/degradations.md``):

* ``identity`` - no change (sanity checks, clean baselines);
* ``resolution`` - downsample by ``scale`` (a factor >= 1 or a ``(lo, hi)`` range) with
  ``kernel`` (bicubic, bilinear, area, nearest) and resample back with ``up_kernel``;
* nine single degradations with ``severity`` 1-5: ``gaussian_blur``, ``anisotropic_blur``,
  ``motion_blur``, ``gaussian_noise``, ``poisson_noise``, ``jpeg``, ``haze``, ``low_light``,
  ``contrast_brightness`` (tables in :data:`SEVERITY_TABLES`);
* ``multi`` - BSRGAN-style shuffled blur/downsample/noise/JPEG at scale factor ``scale``.

A *spec* is the validated description of one degradation (:func:`build_spec`);
:func:`apply_spec` draws the per-sample choices and runs it. The same ``(seed, index)`` always
gives the same generator (:func:`degradation_rng`), used by both the pipeline transform
``DegradeImage`` and ``tools/degrade_dataset.py``.
"""
from ._common import check_image
from .single import DESCRIPTIONS, RANDOM_PARTS, SEVERITY_TABLES
from .spec import (KERNELS, NAMES, SEVERITIES, SINGLE_NAMES, apply_spec, build_spec, build_specs,
                   degradation_rng, degrade, family)

__all__ = [
    'NAMES', 'SINGLE_NAMES', 'KERNELS', 'SEVERITIES', 'SEVERITY_TABLES', 'DESCRIPTIONS',
    'RANDOM_PARTS', 'build_spec', 'build_specs', 'apply_spec', 'degrade', 'degradation_rng',
    'check_image', 'family'
]
