"""tools/degrade_dataset.py: an offline degraded copy of a split (only B changes)."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.conftest import REPO_ROOT, make_levir_split, snapshot, write_pair


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'degrade_dataset', osp.join(REPO_ROOT, 'tools', 'degrade_dataset.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()


def read_bytes(path):
    with open(path, 'rb') as f:
        return f.read()


def files_below(folder):
    return sorted(osp.relpath(osp.join(d, f), folder)
                  for d, _, fs in os.walk(folder) for f in fs)


@pytest.fixture
def split(tmp_path):
    root = str(tmp_path / 'levir')
    make_levir_split(root, 'test', 4, size=(48, 40), seed=1)
    return osp.join(root, 'test')


ARGS = ['--degradation', 'multi', '--scale', '4', '--seed', '3', '--quiet']


def test_writes_degraded_copy_with_manifest(split, tmp_path):
    before = snapshot(split)
    dst = str(tmp_path / 'out')
    assert tool.main([split, dst] + ARGS) == 0
    assert snapshot(split) == before  # SRC untouched
    assert files_below(dst) == sorted(files_below(split) + ['manifest.json'])
    for rel in files_below(split):
        same = read_bytes(osp.join(split, rel)) == read_bytes(osp.join(dst, rel))
        assert same == (not rel.startswith('B' + os.sep)), rel  # only B changed
        if rel.startswith('B' + os.sep):
            src_img, out = cv2.imread(osp.join(split, rel)), cv2.imread(osp.join(dst, rel))
            assert out.shape == src_img.shape
    manifest = json.load(open(osp.join(dst, 'manifest.json')))
    assert manifest['count'] == 4 and manifest['seed'] == 3 and manifest['target'] == 'B'
    assert 'degrade_dataset.py' in manifest['command']
    first = manifest['images'][0]
    assert first['index'] == 0 and first['stem'] == 'test_000'
    assert first['file'] == osp.join('B', 'test_000.png')
    assert first['degradation']['name'] == 'multi' and 'steps' in first['degradation']['params']


def test_reproducible_and_seed_dependent(split, tmp_path):
    outs = [str(tmp_path / name) for name in ('one', 'two', 'other_seed')]
    assert tool.main([split, outs[0]] + ARGS) == 0
    assert tool.main([split, outs[1]] + ARGS) == 0
    assert tool.main([split, outs[2]] + ARGS[:-3] + ['--seed', '4', '--quiet']) == 0
    images = [json.load(open(osp.join(o, 'manifest.json')))['images'] for o in outs]
    assert images[0] == images[1] and images[0] != images[2]
    for rel in files_below(outs[0]):
        if rel.startswith('B'):
            assert read_bytes(osp.join(outs[0], rel)) == read_bytes(osp.join(outs[1], rel))
            assert read_bytes(osp.join(outs[0], rel)) != read_bytes(osp.join(outs[2], rel))


def test_matches_the_on_the_fly_transform(split, tmp_path):
    from hicd_mm.datasets import LEVIRCDDataset
    dst = str(tmp_path / 'out')
    assert tool.main([split, dst, '--degradation', 'gaussian_noise', 'haze', 'jpeg',
                      '--severity', '2', '4', '--seed', '11', '--quiet']) == 0
    manifest = json.load(open(osp.join(dst, 'manifest.json')))
    ds = LEVIRCDDataset(
        data_root=osp.dirname(split),
        data_prefix=dict(img_path_from='test/A', img_path_to='test/B',
                         seg_map_path='test/label'),
        pipeline=[dict(type='MultiImgLoadImageFromFile'),
                  dict(type='DegradeImage', degradation=['gaussian_noise', 'haze', 'jpeg'],
                       severity=[2, 4], keep_hq=False, seed=11)])
    for i in range(len(ds)):
        res = ds[i]
        entry = manifest['images'][i]
        assert osp.basename(res['img_path'][1]) == osp.basename(entry['file'])
        offline = cv2.imread(osp.join(dst, entry['file']), cv2.IMREAD_COLOR)
        np.testing.assert_array_equal(res['img'][1], offline)
        assert res['degradation'] == entry['degradation']


def test_refuses_existing_dst_and_overlaps(split, tmp_path, capsys):
    dst = str(tmp_path / 'out')
    assert tool.main([split, dst] + ARGS) == 0
    before = snapshot(dst)
    assert tool.main([split, dst] + ARGS) == 2
    assert 'exists; pass --overwrite' in capsys.readouterr().err
    assert snapshot(dst) == before
    # --overwrite replaces a folder this tool wrote
    assert tool.main([split, dst, '--overwrite', '--degradation', 'jpeg', '--severity', '5',
                      '--quiet']) == 0
    assert json.load(open(osp.join(dst, 'manifest.json')))['specs'][0]['name'] == 'jpeg'
    # ... but never a foreign folder, nor SRC itself or anything inside/around it
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'keep.txt').write_text('precious')
    src_before = snapshot(split)
    for target in (str(foreign), split, osp.join(split, 'sub'), osp.dirname(split)):
        assert tool.main([split, target, '--overwrite'] + ARGS) == 2
    assert (foreign / 'keep.txt').read_text() == 'precious'
    assert snapshot(split) == src_before
    assert not [p for p in os.listdir(tmp_path) if 'partial' in p]


@pytest.mark.parametrize('extra,message', [
    (['--degradation', 'fog'], 'valid names: identity, resolution'),
    (['--degradation', 'jpeg', '--severity', '7'], 'severity must be in 1-5'),
    (['--degradation', 'jpeg'], 'needs severity'),
    (['--degradation', 'resolution', '--scale', '0.25'], 'must be >= 1'),
    (['--degradation', 'resolution', '--scale', '2', '4', '8'], 'one factor or a range'),
    (['--degradation', 'multi', '--scale', '4', '--seed', '-1'], '--seed must be >= 0'),
])
def test_bad_arguments_fail_before_writing(split, tmp_path, capsys, extra, message):
    dst = str(tmp_path / 'out')
    assert tool.main([split, dst, '--quiet'] + extra) == 2
    assert message in capsys.readouterr().err
    assert not osp.exists(dst)


def test_svcd_layout_links_and_1024_images(tmp_path):
    src = str(tmp_path / 'svcd' / 'test')
    write_pair(src, 'big', size=(1024, 1024), label_dir='OUT', img_ext='.jpg',
               label_ext='.jpg')
    write_pair(src, 'small', size=(64, 64), label_dir='OUT', img_ext='.jpg', label_ext='.jpg')
    before = snapshot(src)
    dst = str(tmp_path / 'out')
    assert tool.main([src, dst, '--degradation', 'resolution', '--scale', '4', '8',
                      '--label-dir', 'OUT', '--link', '--quiet']) == 0
    assert snapshot(src) == before
    for rel in ('A/big.jpg', 'OUT/big.jpg', 'A/small.jpg'):
        assert os.stat(osp.join(src, rel)).st_ino == os.stat(osp.join(dst, rel)).st_ino
    out = cv2.imread(osp.join(dst, 'B/big.jpg'))
    assert out.shape == (1024, 1024, 3)
    factor = json.load(open(osp.join(dst, 'manifest.json')))['images'][0]['degradation'][
        'params']['factor']
    assert 4 <= factor <= 8


@pytest.mark.slow  # launches a tool in a subprocess
def test_cli_shows_progress(split, tmp_path):
    dst = str(tmp_path / 'out')
    proc = subprocess.run(
        [sys.executable, osp.join(REPO_ROOT, 'tools', 'degrade_dataset.py'), split, dst,
         '--degradation', 'jpeg', '--severity', '3', '--workers', '2'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert '4/4' in proc.stderr and 'ETA' in proc.stderr  # mmengine's progress bar
    assert 'wrote 4 degraded B images' in proc.stderr and 'manifest.json' in proc.stderr
    single = str(tmp_path / 'single')
    assert tool.main([split, single, '--degradation', 'jpeg', '--severity', '3', '--quiet']) == 0
    assert read_bytes(osp.join(dst, 'B', 'test_002.png')) == \
        read_bytes(osp.join(single, 'B', 'test_002.png'))


def test_accepts_the_groups_test_py_accepts(split, tmp_path):
    dst = str(tmp_path / 'blur')
    assert tool.main([split, dst, '--degradation', 'blur', '--severity', '2', '--quiet']) == 0
    manifest = json.load(open(osp.join(dst, 'manifest.json')))
    assert manifest['degradation']['degradation'] == [
        'gaussian_blur', 'anisotropic_blur', 'motion_blur']
    kinds = {rec['degradation']['name'] for rec in manifest['images']}
    assert kinds <= {'gaussian_blur', 'anisotropic_blur', 'motion_blur'}


def test_16_bit_and_grey_targets_are_refused_and_nothing_is_written(split, tmp_path, capsys):
    rel = sorted(os.listdir(osp.join(split, 'B')))[0]
    img = cv2.imread(osp.join(split, 'B', rel))
    assert cv2.imwrite(osp.join(split, 'B', rel), img.astype(np.uint16) * 16)
    dst = str(tmp_path / 'u16')
    assert tool.main([split, dst] + ARGS) == 2
    err = capsys.readouterr().err
    assert 'not 8-bit' in err and rel in err
    assert not osp.exists(dst) and not any('partial' in f for f in os.listdir(tmp_path))
    assert cv2.imwrite(osp.join(split, 'B', rel), img[:, :, 0])
    assert tool.main([split, dst] + ARGS) == 2
    assert 'grey' in capsys.readouterr().err and not osp.exists(dst)
    assert tool.main([split, dst, '--allow-grey'] + ARGS) == 0
    assert cv2.imread(osp.join(dst, 'B', rel), cv2.IMREAD_UNCHANGED).shape == img.shape
