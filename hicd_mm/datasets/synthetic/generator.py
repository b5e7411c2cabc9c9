"""Procedural synthetic bi-temporal change-detection data that looks like aerial imagery.

Each sample is a random scene seen at two dates (image A and image B) plus a binary change
label. A scene (suburban, rural or industrial) is built from what a LEVIR-CD-like aerial
tile shows:

* the ground: a rotated grid of agricultural parcels and lots, each with a land cover
  (green crop, ripe crop, grass, dry grass, bare soil, forest, pavement), a colour,
  multi-octave value-noise texture, darker field margins and, for crops, row stripes;
* roads along some parcel borders (asphalt grey, width 5-13 px, centre dashes on wide
  roads, cars), sometimes a curved dirt track, and concrete driveways;
* buildings in rows along the roads: rotated rectangles and L-shapes with gable roofs (two
  halves shaded by the sun) or flat roofs with a parapet, in tile/metal/concrete colours,
  each casting a shadow in the scene's sun direction;
* trees (dark green blobs with a sunlit side) in lots and fields and along field borders,
  with shadows.

Real changes (label 255, in the geometry of image A):

* new buildings in B (built on empty lots that were grass, field or bare soil in A): the
  building footprint is labelled, its shadow and its new driveway are not (as in LEVIR-CD);
* demolished buildings (present in A; soil, sand, rubble or lawn in B): the footprint;
* cleared ground (green vegetation turned into a construction site with vehicle tracks in B):
  the cleared area plus the crowns of the trees cut down with it.

By default about 20 % of the pairs have no change and changed pairs get 2-18 % of their pixels
changed; ``change_fraction`` moves the change rate of a dataset (see :func:`make_synthetic_pair`).

Pseudo-changes (never labelled): per-date illumination, contrast, colour balance, saturation,
haze and gamma; the season of the vegetation (greener vs. yellower) and the crop phenology of
whole parcels; partly re-drawn vegetation texture; sun elevation and azimuth (shadow length
and direction); cars; a sub-pixel misregistration of B of at most 2 px (applied to B only);
different blur and sensor noise.

Images are ``uint8`` BGR (OpenCV order), labels ``uint8`` with values 0/255. Only numpy and
OpenCV are used; a 256x256 pair takes about 30 ms on one core.
"""

import zlib
from typing import Optional, Tuple

import numpy as np

from .render import _render, _sample_looks
from .scene import CHANGE_FRACTION_RANGE, NO_CHANGE_PROBABILITY, _sample_scene

GENERATOR_VERSION = '1.0'
MIN_SIZE = 32
# Mean labelled-area budget of the default mix: (1 - P(no change)) x mean of the range.
DEFAULT_CHANGE_BUDGET = (1 - NO_CHANGE_PROBABILITY) * sum(CHANGE_FRACTION_RANGE) / 2
# Largest accepted ``change_fraction``; above it lots and vegetation run out in many scenes.
MAX_CHANGE_FRACTION = 0.2


def check_size(size: int) -> None:
    """Raise if ``size`` is not an int of at least ``MIN_SIZE``."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f'size must be an int, got {type(size).__name__}')
    if size < MIN_SIZE:
        raise ValueError(f'size must be at least {MIN_SIZE} pixels, got {size}')


def change_budget(change_fraction: Optional[float]) -> Tuple[float, Tuple[float, float]]:
    """How often a sample changes and how much, for a target mean fraction of changed pixels.

    The default mix gives 20 % of the samples no change and the others a labelled-area budget
    drawn from 2-18 % of the image: a mean budget of 8 % (``DEFAULT_CHANGE_BUDGET``). A lower
    target lowers the share of changed samples and keeps their budget range (changes stay
    object-sized: a building is placed whole, so a tiny budget would overshoot); a higher
    target scales the budget range. The realised rate follows the budget but not exactly: a
    scene may run out of free lots, and with few changed samples chance weighs more (measured
    per image size in docs/synthetic.md).

    Args:
        change_fraction: Target mean fraction of changed pixels in ``[0, 0.2]``, or None for
            the default mix.

    Returns:
        ``(no_change_probability, (low, high))``: the probability that a sample has no change
        and the range of the budget of a changed sample, as fractions of the image.

    Raises:
        TypeError, ValueError: ``change_fraction`` is not a number in ``[0, 0.2]``.
    """
    if change_fraction is None:
        return NO_CHANGE_PROBABILITY, CHANGE_FRACTION_RANGE
    if isinstance(change_fraction, bool) or not isinstance(change_fraction,
                                                           (int, float, np.floating)):
        raise TypeError(f'change_fraction must be a number, got {change_fraction!r}')
    if not 0.0 <= change_fraction <= MAX_CHANGE_FRACTION:
        raise ValueError(f'change_fraction must be in [0, {MAX_CHANGE_FRACTION}] (a fraction '
                         f'of the pixels, e.g. 0.02 for 2 %), got {change_fraction!r}')
    ratio = float(change_fraction) / DEFAULT_CHANGE_BUDGET
    if ratio <= 1.0:
        return 1.0 - (1.0 - NO_CHANGE_PROBABILITY) * ratio, CHANGE_FRACTION_RANGE
    low, high = CHANGE_FRACTION_RANGE
    return NO_CHANGE_PROBABILITY, (low * ratio, high * ratio)


def make_synthetic_pair(size: int, rng: np.random.Generator,
                        change_fraction: Optional[float] = None
                        ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate one bi-temporal pair of a random aerial-looking scene and its change label.

    Args:
        size: Side length in pixels of the square images (at least 32).
        rng: Random generator; the output is a deterministic function of its state.
        change_fraction: Target mean fraction of changed pixels over many samples, e.g.
            0.02 for rare changes (LEVIR-CD has about 0.05); see :func:`change_budget`.
            None (default) keeps the default mix, whose budget is 8 % of the pixels.

    Returns:
        ``(img_a, img_b, label)``: two ``(size, size, 3)`` uint8 images in BGR order and a
        ``(size, size)`` uint8 label with 0 = unchanged and 255 = changed. The label is in the
        geometry of ``img_a``; ``img_b`` is misregistered by at most 2 pixels.
    """
    check_size(size)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f'rng must be a numpy.random.Generator, got {type(rng).__name__}')
    size = int(size)
    no_change_probability, budget_range = change_budget(change_fraction)
    scene = _sample_scene(size, rng, no_change_probability, budget_range)
    look_a, look_b = _sample_looks(scene, rng)
    img_a = _render(scene, look_a, 'a', rng)
    img_b = _render(scene, look_b, 'b', rng)
    return img_a, img_b, scene.label


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of sample ``index`` of split ``split``.

    It depends only on ``(seed, split name, index)``, so one sample never depends on how many
    samples or which other splits are generated.

    Args:
        seed: Dataset seed (non-negative int).
        split: Split name.
        index: Index of the sample within the split.

    Returns:
        A freshly seeded ``numpy.random.Generator``.
    """
    split_key = zlib.crc32(split.encode('utf-8'))
    return np.random.default_rng(np.random.SeedSequence([int(seed), split_key, int(index)]))
