"""Degradation specs: validate a degradation description once, then apply it per sample.

:func:`build_spec` turns a name (or dict) and its options into a normalised *spec* and fails
early with a message that names the valid choices; :func:`apply_spec` draws the per-sample
choices (which of several specs, which severity or kernel) from the given generator and runs
the family's function. :func:`degradation_rng` is the one seeding rule shared by the pipeline
transform ``DegradeImage`` and ``tools/degrade_dataset.py``.
"""
import math
import numbers
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._common import INTERPOLATIONS, check_image, squeeze_gray
from .multi import multi_degradation
from .resolution import resolution_degradation
from .single import SINGLE_DEGRADATIONS

SINGLE_NAMES = tuple(SINGLE_DEGRADATIONS)
NAMES = ('identity', 'resolution') + SINGLE_NAMES + ('multi', )
KERNELS = tuple(INTERPOLATIONS)
SEVERITIES = (1, 2, 3, 4, 5)

# Which options each family takes (anything else is an error).
_OPTIONS = {'identity': (), 'resolution': ('scale', 'kernel', 'up_kernel'),
            'multi': ('scale', ), 'single': ('severity', )}


def family(name: str) -> str:
    """``'identity'``, ``'resolution'``, ``'single'`` or ``'multi'``."""
    return 'single' if name in SINGLE_DEGRADATIONS else name


def degradation_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of sample ``index`` under ``seed``: ``default_rng([seed, index])``."""
    return np.random.default_rng([int(seed), int(index)])


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _check_severity(value: Any, name: str) -> Tuple[int, ...]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ValueError(f'{name!r}: severity list is empty')
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f'{name!r}: severity must be an int in 1-5 (or a list of them), '
                            f'got {v!r}')
        if not 1 <= int(v) <= 5:
            raise ValueError(f'{name!r}: severity must be in 1-5, got {v}')
    return tuple(int(v) for v in values)


def _check_factor(v: Any, name: str) -> float:
    if not _is_number(v) or not math.isfinite(float(v)):
        raise TypeError(f'{name!r}: scale must be a finite number, got {v!r}')
    if float(v) < 1:
        raise ValueError(
            f'{name!r}: scale is the downsampling factor and must be >= 1, got {v}; for a size '
            f'ratio r < 1 pass scale=1/r (e.g. scale=4 for 1/4, scale=(4, 8) for 1/8-1/4)')
    return float(v)


def _check_scale(value: Any, name: str, allow_range: bool) -> Union[float, Tuple[float, float]]:
    if value is None:
        raise ValueError(f'{name!r} needs scale= (the downsampling factor, e.g. 4)')
    if isinstance(value, (list, tuple)):
        if not allow_range:
            raise TypeError(f'{name!r}: scale must be one number (e.g. 4 or 8), got {value!r}')
        if len(value) != 2:
            raise ValueError(f'{name!r}: a scale range is (min, max), got {value!r}')
        lo, hi = (_check_factor(v, name) for v in value)
        if lo > hi:
            raise ValueError(f'{name!r}: scale range (min, max) has min > max: {value!r}')
        return (lo, hi)
    return _check_factor(value, name)


def _check_kernel(value: Any, name: str, what: str = 'kernel') -> Tuple[str, ...]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ValueError(f'{name!r}: {what} list is empty')
    for v in values:
        if v not in INTERPOLATIONS:
            raise ValueError(f'{name!r}: unknown {what} {v!r}; valid: {", ".join(KERNELS)}')
    return tuple(values)


def build_spec(degradation: Union[str, dict], severity: Any = None, scale: Any = None,
               kernel: Any = None, up_kernel: Any = None) -> Dict[str, Any]:
    """Validate one degradation and return its normalised spec.

    Args:
        degradation (str | dict): A name from :data:`NAMES`, or a dict with ``name`` (or
            ``type``) and any of the options below (which then override the keyword ones).
        severity (int | list[int]): Single degradations only: 1-5, or a list to draw from.
        scale (float | tuple): ``resolution``: factor >= 1 or a ``(lo, hi)`` range;
            ``multi``: the scale factor sf >= 1 (4 and 8 in the paper).
        kernel (str | list[str]): ``resolution`` downsampling kernel(s) (default bicubic).
        up_kernel (str): ``resolution`` kernel back to full size (default bicubic).

    Returns:
        dict: ``name``, ``family`` and the validated options of that family.

    Raises:
        ValueError / TypeError: unknown name (listing the valid ones), severity outside 1-5,
        scale < 1, unknown kernel, or an option the degradation does not take.
    """
    options = dict(severity=severity, scale=scale, kernel=kernel, up_kernel=up_kernel)
    if isinstance(degradation, dict):
        entry = dict(degradation)
        name = entry.pop('name', entry.pop('type', None))
        unknown = set(entry) - set(options)
        if unknown:
            raise ValueError(f'degradation {name!r}: unknown option(s) {sorted(unknown)}; '
                             f'valid: {sorted(options)}')
        options.update(entry)
    else:
        name = degradation
    if not isinstance(name, str) or name not in NAMES:
        raise ValueError(f'unknown degradation {name!r}; valid names: {", ".join(NAMES)}')
    fam = family(name)
    allowed = _OPTIONS[fam]
    extra = [k for k, v in options.items() if v is not None and k not in allowed]
    if extra:
        hint = {'single': 'it takes severity=1..5', 'resolution': 'it takes scale, kernel, '
                'up_kernel', 'multi': 'it takes scale (the scale factor sf)',
                'identity': 'it takes no options'}[fam]
        raise ValueError(f'degradation {name!r} does not take {", ".join(extra)}: {hint}')
    spec: Dict[str, Any] = dict(name=name, family=fam)
    if fam == 'single':
        if options['severity'] is None:
            raise ValueError(f'degradation {name!r} needs severity= (1-5, or a list of them)')
        spec['severity'] = _check_severity(options['severity'], name)
    elif fam == 'resolution':
        spec['scale'] = _check_scale(options['scale'], name, allow_range=True)
        spec['kernel'] = _check_kernel(options['kernel'] or 'bicubic', name)
        spec['up_kernel'] = _check_kernel(options['up_kernel'] or 'bicubic', name,
                                          'up_kernel')[0]
    elif fam == 'multi':
        spec['scale'] = _check_scale(options['scale'], name, allow_range=False)
    return spec


def build_specs(degradation: Union[str, dict, Sequence[Union[str, dict]]],
                **defaults) -> List[Dict[str, Any]]:
    """:func:`build_spec` for one degradation or a list of them (one is drawn per sample)."""
    entries = list(degradation) if isinstance(degradation, (list, tuple)) else [degradation]
    if not entries:
        raise ValueError(f'empty degradation list; valid names: {", ".join(NAMES)}')
    return [build_spec(e, **defaults) for e in entries]


def _pick(options: Sequence, rng: np.random.Generator):
    return options[0] if len(options) == 1 else options[int(rng.integers(len(options)))]


def apply_spec(img: np.ndarray, specs: Union[dict, Sequence[dict]],
               rng: np.random.Generator) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Degrade ``img`` with one of ``specs`` (drawn uniformly when there are several).

    Returns:
        (np.ndarray, dict): the degraded uint8 image (input shape) and a record
        ``dict(name=..., [severity=...], [scale=...], params={...})``.
    """
    check_image(img)
    specs = [specs] if isinstance(specs, dict) else list(specs)
    spec = _pick(specs, rng)
    x, shape = squeeze_gray(img)
    name = spec['name']
    record: Dict[str, Any] = dict(name=name)
    if spec['family'] == 'single':
        severity = int(_pick(spec['severity'], rng))
        out, params = SINGLE_DEGRADATIONS[name](x, rng, severity)
        record['severity'] = severity
    elif spec['family'] == 'resolution':
        kernel = _pick(spec['kernel'], rng)
        out, params = resolution_degradation(x, rng, spec['scale'], kernel, spec['up_kernel'])
        scale = spec['scale']
        record['scale'] = list(scale) if isinstance(scale, tuple) else scale
    elif spec['family'] == 'multi':
        out, params = multi_degradation(x, rng, spec['scale'])
        record['scale'] = spec['scale']
    else:
        out, params = x.copy(), {}
    record['params'] = params
    return out.reshape(shape), record


def degrade(img: np.ndarray, degradation: Union[str, dict],
            rng: Optional[np.random.Generator] = None, **options) -> Tuple[np.ndarray, dict]:
    """One-call helper: ``degrade(img, 'jpeg', rng, severity=3)``.

    Args:
        img (np.ndarray): uint8 HxW, HxWx1 or HxWx3 image.
        degradation (str | dict): Name or dict spec (see :func:`build_spec`).
        rng (np.random.Generator, optional): Defaults to a fresh unseeded generator.
        **options: ``severity``, ``scale``, ``kernel``, ``up_kernel``.
    """
    rng = rng if rng is not None else np.random.default_rng()
    return apply_spec(img, build_spec(degradation, **options), rng)
