"""Procedural synthetic bi-temporal change-detection pairs that look like aerial imagery.

:mod:`.scene` samples a scene and its real changes, :mod:`.render` draws one date of it,
:mod:`.generator` ties them together. The dataset writer (folders, ``meta.json``) is data
preparation and lives in ``tools/make_synthetic_cd.py``.
"""
from .generator import (DEFAULT_CHANGE_BUDGET, GENERATOR_VERSION, MAX_CHANGE_FRACTION, MIN_SIZE,
                        change_budget, check_size, make_synthetic_pair, sample_rng)
from .render import MAX_MISREGISTRATION_PX
from .scene import CHANGE_FRACTION_RANGE, NO_CHANGE_PROBABILITY

__all__ = [
    'CHANGE_FRACTION_RANGE', 'DEFAULT_CHANGE_BUDGET', 'GENERATOR_VERSION',
    'MAX_CHANGE_FRACTION', 'MAX_MISREGISTRATION_PX', 'MIN_SIZE', 'NO_CHANGE_PROBABILITY',
    'change_budget', 'check_size', 'make_synthetic_pair', 'sample_rng'
]
