"""Tests of the procedural synthetic change-detection pairs (hicd_mm.datasets.synthetic).

The dataset writer (tools/make_synthetic_cd.py) is tested in tests/tools/test_make_synthetic_cd.py.
"""
import cv2
import numpy as np
import pytest

from hicd_mm.datasets.synthetic import (MAX_MISREGISTRATION_PX, change_budget, make_synthetic_pair,
                                        sample_rng)


def pair(seed=0, split='train', index=0, size=64):
    return make_synthetic_pair(size, sample_rng(seed, split, index))


def abs_diff(img_a, img_b):
    return np.abs(img_a.astype(np.int16) - img_b.astype(np.int16)).mean(axis=2)


@pytest.fixture(scope='module')
def samples_128():
    """30 pairs of 128 x 128 (seed 0, split 'train'), shared by the statistics tests."""
    return [pair(0, 'train', i, 128) for i in range(30)]


def test_pair_format():
    for index in range(5):
        img_a, img_b, label = pair(3, 'val', index, 64)
        assert img_a.shape == img_b.shape == (64, 64, 3)
        assert label.shape == (64, 64)
        assert img_a.dtype == img_b.dtype == label.dtype == np.uint8
        assert set(np.unique(label).tolist()) <= {0, 255}


def test_same_seed_gives_identical_bytes_and_other_seeds_differ():
    first = make_synthetic_pair(96, np.random.default_rng(123))
    again = make_synthetic_pair(96, np.random.default_rng(123))
    other = make_synthetic_pair(96, np.random.default_rng(124))
    for x, y, z in zip(first, again, other):
        assert x.tobytes() == y.tobytes()
    assert first[0].tobytes() != other[0].tobytes()
    assert first[1].tobytes() != other[1].tobytes()
    assert pair(0, 'train', 1)[0].tobytes() != pair(1, 'train', 1)[0].tobytes()
    assert pair(0, 'train', 1)[0].tobytes() != pair(0, 'val', 1)[0].tobytes()
    assert pair(0, 'train', 1)[0].tobytes() != pair(0, 'train', 2)[0].tobytes()


def test_labelled_pixels_change_much_more_than_the_rest(samples_128):
    inside, outside, ratios = [], [], []
    for img_a, img_b, label in samples_128:
        diff, changed = abs_diff(img_a, img_b), label > 0
        outside.append(diff[~changed].mean())
        if changed.any():
            inside.append(diff[changed].mean())
            ratios.append(inside[-1] / outside[-1])
    assert len(inside) >= 15
    # Real changes: objects appear/disappear exactly where the label is 255.
    assert np.mean(inside) > 1.8 * np.mean(outside)
    assert np.median(ratios) > 1.5
    # Pseudo-changes: unlabelled pixels differ too (illumination, season, shift, noise).
    assert min(outside) > 3.0


def test_labelled_regions_are_solid_blobs(samples_128):
    """Labelled regions are objects, not speckle: tiny ones only where the border cuts them."""
    for _, _, label in samples_128:
        _, _, stats, _ = cv2.connectedComponentsWithStats(label, connectivity=8)
        for x, y, w, h, area in stats[1:]:
            touches_border = x == 0 or y == 0 or x + w == 128 or y + h == 128
            assert area >= 20 or touches_border


def test_pairs_without_change_still_differ(samples_128):
    unchanged = [(a, b) for a, b, label in samples_128 if not label.any()]
    assert unchanged, 'some samples must have no change'
    for img_a, img_b in unchanged:
        assert abs_diff(img_a, img_b).mean() > 3.0


def test_misregistration_is_small(samples_128):
    """Phase correlation between A and B of unchanged pairs finds a shift of at most 2 px."""
    shifts = []
    for img_a, img_b, label in samples_128:
        if label.any():
            continue
        grey_a = cv2.cvtColor(img_a, cv2.COLOR_BGR2GRAY).astype(np.float32)
        grey_b = cv2.cvtColor(img_b, cv2.COLOR_BGR2GRAY).astype(np.float32)
        (dx, dy), _ = cv2.phaseCorrelate(grey_a, grey_b)
        shifts.append(np.hypot(dx, dy))
    assert shifts and max(shifts) <= MAX_MISREGISTRATION_PX + 0.3


def test_changed_fraction_is_levir_like(samples_128):
    fractions = np.array([np.count_nonzero(label) / label.size for _, _, label in samples_128])
    assert 0.03 <= fractions.mean() <= 0.15
    assert 1 <= np.sum(fractions == 0) <= 15
    assert fractions.max() < 0.5


def test_make_pair_argument_checks():
    with pytest.raises(ValueError, match='at least 32'):
        make_synthetic_pair(16, np.random.default_rng(0))
    with pytest.raises(TypeError):
        make_synthetic_pair(64, 0)


@pytest.mark.parametrize('target', [0.02, 0.08])
def test_change_fraction_sets_the_realised_rate(target):
    """The knob is a target mean: measure the changed pixels of 200 pairs of 128 x 128 (at 2 %
    only about 40 of them change, so fewer pairs would measure mostly chance)."""
    labels = [make_synthetic_pair(128, sample_rng(0, 'rate', i), change_fraction=target)[2]
              for i in range(200)]
    fractions = np.array([np.count_nonzero(label) / label.size for label in labels])
    assert fractions.mean() == pytest.approx(target, rel=0.2)
    changed = fractions[fractions > 0]
    # the share of changed pairs carries the rate; a changed pair still gets 2-18 % budget
    assert len(changed) == pytest.approx(200 * 0.8 * target / 0.08, rel=0.25)
    assert np.median(changed) > 0.03


def test_change_fraction_zero_and_range():
    for i in range(5):
        assert not make_synthetic_pair(64, sample_rng(0, 'zero', i), change_fraction=0.0)[2].any()
    assert change_budget(None) == (0.2, (0.02, 0.18))
    # below the default budget (8 %): fewer changed pairs, object-sized changes as before
    no_change, budget_range = change_budget(0.02)
    assert no_change == pytest.approx(0.8) and budget_range == (0.02, 0.18)
    assert change_budget(0.0)[0] == pytest.approx(1.0)
    # above it: the same share of changed pairs, larger changes
    no_change, (low, high) = change_budget(0.16)
    assert no_change == 0.2 and low == pytest.approx(0.04) and high == pytest.approx(0.36)
    for bad, error in ((0.21, ValueError), (-0.01, ValueError), ('0.1', TypeError),
                       (True, TypeError)):
        with pytest.raises(error, match='change_fraction'):
            change_budget(bad)
