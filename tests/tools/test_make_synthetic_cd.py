"""Tests of tools/make_synthetic_cd.py: the writer of the synthetic dataset and its command line.

The pairs themselves (hicd_mm.datasets.synthetic) are tested in tests/datasets/test_synthetic.py.
"""
import hashlib
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from hicd_mm.datasets.synthetic import GENERATOR_VERSION, make_synthetic_pair, sample_rng
from tests.conftest import load_tool

tool = load_tool('tools/make_synthetic_cd.py')
write_synthetic_dataset = tool.write_synthetic_dataset
sample_name = tool.sample_name

# sha256 of every file (relative path + bytes, sorted by path) of
# write_synthetic_dataset(out, {'train': 3, 'val': 2}, size=48, seed=0), computed with the
# generator before it was split into a package (commit bcb4a07). The default output must not
# change: datasets written earlier stay reproducible.
DEFAULT_SET_SHA256 = '81b121ca612b47fd98c336402fb6c6fc6c2be9c4c802c8b20358dc3cb40b8dd2'


def folder_sha256(root):
    digest = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            path = osp.join(dirpath, name)
            digest.update(osp.relpath(path, root).encode())
            with open(path, 'rb') as f:
                digest.update(f.read())
    return digest.hexdigest()


def test_default_output_is_unchanged(tmp_path):
    write_synthetic_dataset(str(tmp_path), {'train': 3, 'val': 2}, size=48, seed=0,
                            progress=False)
    assert folder_sha256(str(tmp_path)) == DEFAULT_SET_SHA256


def test_change_fraction_is_written_and_recorded(tmp_path):
    default = write_synthetic_dataset(str(tmp_path / 'default'), {'train': 4}, size=48, seed=2,
                                      progress=False)
    rare = write_synthetic_dataset(str(tmp_path / 'rare'), {'train': 4}, size=48, seed=2,
                                   progress=False, change_fraction=0.01)
    assert 'change_fraction' not in json.loads((tmp_path / 'default' / 'meta.json').read_text())
    assert json.loads((tmp_path / 'rare' / 'meta.json').read_text())['change_fraction'] == 0.01
    for i in range(4):
        expected = make_synthetic_pair(48, sample_rng(2, 'train', i), change_fraction=0.01)
        label = cv2.imread(str(tmp_path / 'rare' / 'train' / 'label' / f'train_000{i}.png'),
                           cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(label, expected[2])
    assert rare['splits']['train']['changed_fraction'] <= \
        default['splits']['train']['changed_fraction']


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


def test_sample_name_padding():
    assert sample_name('train', 7, 100) == 'train_0007'
    assert sample_name('test', 12345, 20000) == 'test_12345'


def test_cli_writes_dataset_and_refuses_existing(tmp_path, capsys):
    cli = tool
    out = str(tmp_path / 'cd')
    args = [out, '--train', '2', '--val', '1', '--test', '1', '--size', '48', '--seed', '3']
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert 'Wrote 4 pairs' in printed and 'changed pixels' in printed
    assert len(os.listdir(osp.join(out, 'test', 'label'))) == 1
    assert cli.main(args) == 1
    assert 'already contains a dataset' in capsys.readouterr().err
    assert cli.main(args + ['--overwrite', '--quiet']) == 0


def test_cli_change_fraction(tmp_path, capsys):
    out = str(tmp_path / 'rare')
    args = [out, '--train', '2', '--val', '0', '--test', '0', '--size', '48', '--quiet']
    assert tool.main(args + ['--change-fraction', '0.02']) == 0
    assert json.loads(open(osp.join(out, 'meta.json')).read())['change_fraction'] == 0.02
    for bad in ('0.5', '-0.01'):
        with pytest.raises(SystemExit):
            tool.main(args + ['--overwrite', '--change-fraction', bad])
        assert 'must be in [0, 0.2]' in capsys.readouterr().err


@pytest.mark.parametrize('change_fraction', [-0.1, 0.25, '0.1', True])
def test_invalid_change_fraction_writes_nothing(tmp_path, change_fraction):
    with pytest.raises((TypeError, ValueError), match='change_fraction'):
        write_synthetic_dataset(str(tmp_path / 'x'), {'train': 1}, size=32, progress=False,
                                change_fraction=change_fraction)
    assert not (tmp_path / 'x').exists()
