"""Tests of the procedural synthetic change-detection dataset (hicd_mm.datasets.synthetic)."""
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from hicd_mm.datasets.synthetic import (GENERATOR_VERSION, MAX_MISREGISTRATION_PX,
                                        make_synthetic_pair, sample_name, sample_rng,
                                        write_synthetic_dataset)

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


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


def test_sample_does_not_depend_on_split_size_or_other_splits(tmp_path):
    small = write_synthetic_dataset(str(tmp_path / 'small'), {'train': 5}, size=48, seed=7,
                                    progress=False)
    large = write_synthetic_dataset(str(tmp_path / 'large'), {'val': 2, 'train': 10}, size=48,
                                    seed=7, progress=False)
    assert small['splits']['train']['count'] == 5 and large['splits']['train']['count'] == 10
    expected = make_synthetic_pair(48, sample_rng(7, 'train', 3))
    for sub, array in zip(('A', 'B', 'label'), expected):
        path_small = tmp_path / 'small' / 'train' / sub / 'train_0003.png'
        path_large = tmp_path / 'large' / 'train' / sub / 'train_0003.png'
        assert path_small.read_bytes() == path_large.read_bytes()
        flag = cv2.IMREAD_UNCHANGED
        np.testing.assert_array_equal(cv2.imread(str(path_small), flag), array)


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


def test_written_layout_and_meta(tmp_path):
    out = tmp_path / 'synthetic'
    summary = write_synthetic_dataset(str(out), {'train': 3, 'val': 2}, size=64, seed=5,
                                      progress=False)
    for split, count in (('train', 3), ('val', 2)):
        names = sorted(os.listdir(out / split / 'A'))
        assert names == [f'{split}_{i:04d}.png' for i in range(count)]
        for sub in ('B', 'label'):
            assert sorted(os.listdir(out / split / sub)) == names
        for name in names:
            img_a = cv2.imread(str(out / split / 'A' / name), cv2.IMREAD_UNCHANGED)
            img_b = cv2.imread(str(out / split / 'B' / name), cv2.IMREAD_UNCHANGED)
            label = cv2.imread(str(out / split / 'label' / name), cv2.IMREAD_UNCHANGED)
            assert img_a.shape == img_b.shape == (64, 64, 3)
            assert label.shape == (64, 64) and set(np.unique(label).tolist()) <= {0, 255}
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['seed'] == 5 and meta['size'] == 64
    assert meta['generator_version'] == GENERATOR_VERSION
    assert {k: v['count'] for k, v in meta['splits'].items()} == {'train': 3, 'val': 2}
    assert summary['splits']['train']['count'] == 3
    assert 0.0 <= summary['splits']['val']['changed_fraction'] <= 1.0
    assert summary['out_dir'] == str(out)


def test_refuses_to_overwrite_and_overwrite_replaces_only_the_dataset(tmp_path):
    out = tmp_path / 'data'
    write_synthetic_dataset(str(out), {'train': 2, 'test': 1}, size=48, seed=0, progress=False)
    keep = out / 'notes.txt'
    keep.write_text('not part of the dataset')
    with pytest.raises(FileExistsError, match='already contains a dataset'):
        write_synthetic_dataset(str(out), {'train': 2}, size=48, seed=1, progress=False)
    # A half-written dataset (split folders without meta.json) is refused as well.
    partial = tmp_path / 'partial'
    (partial / 'train' / 'A').mkdir(parents=True)
    with pytest.raises(FileExistsError, match=str(partial)):
        write_synthetic_dataset(str(partial), {'train': 1}, size=48, progress=False)

    write_synthetic_dataset(str(out), {'train': 1}, size=48, seed=1, overwrite=True,
                            progress=False)
    assert keep.read_text() == 'not part of the dataset'
    assert sorted(os.listdir(out / 'train' / 'A')) == ['train_0000.png']
    assert not (out / 'test').exists()  # the old split listed in the old meta.json is gone
    assert json.loads((out / 'meta.json').read_text())['seed'] == 1


def test_empty_folder_and_unrelated_files_are_accepted(tmp_path):
    (tmp_path / 'readme.txt').write_text('x')
    write_synthetic_dataset(str(tmp_path), {'train': 1}, size=32, progress=False)
    assert (tmp_path / 'train' / 'label' / 'train_0000.png').is_file()


@pytest.mark.parametrize('kwargs, error', [
    (dict(size=31), ValueError),
    (dict(size=64.0), TypeError),
    (dict(splits={'train': -1}), ValueError),
    (dict(splits={'a/b': 1}), ValueError),
    (dict(splits={'..': 1}), ValueError),
    (dict(splits={'': 1}), ValueError),
    (dict(splits={}), ValueError),
    (dict(seed=-1), ValueError),
])
def test_invalid_arguments(tmp_path, kwargs, error):
    args = dict(out_dir=str(tmp_path / 'x'), splits={'train': 1}, size=32, progress=False)
    args.update(kwargs)
    with pytest.raises(error):
        write_synthetic_dataset(**args)
    assert not (tmp_path / 'x' / 'meta.json').exists()


def test_make_pair_argument_checks():
    with pytest.raises(ValueError, match='at least 32'):
        make_synthetic_pair(16, np.random.default_rng(0))
    with pytest.raises(TypeError):
        make_synthetic_pair(64, 0)


def test_sample_name_padding():
    assert sample_name('train', 7, 100) == 'train_0007'
    assert sample_name('test', 12345, 20000) == 'test_12345'


def test_cli_writes_dataset_and_refuses_existing(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        'make_synthetic_cd', osp.join(REPO_ROOT, 'tools', 'make_synthetic_cd.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = str(tmp_path / 'cd')
    args = [out, '--train', '2', '--val', '1', '--test', '1', '--size', '48', '--seed', '3']
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert 'Wrote 4 pairs' in printed and 'changed pixels' in printed
    assert len(os.listdir(osp.join(out, 'test', 'label'))) == 1
    assert cli.main(args) == 1
    assert 'already contains a dataset' in capsys.readouterr().err
    assert cli.main(args + ['--overwrite', '--quiet']) == 0
