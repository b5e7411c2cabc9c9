"""tools/test.py --degradation / --degraded-dir and the config edits behind them."""
import argparse
import glob
import importlib.util
import json
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from hicd_mm.registry import DATASETS
from hicd_tools.test_options import (apply_test_options, degradation_family,
                                     make_test_degradation, resolve_degradation,
                                     set_degraded_dir, set_test_degradation,
                                     strip_degradations, valid_degradation_names,
                                     with_degraded_dir, with_test_degradation)
from tests.conftest import REPO_ROOT
from tests.conftest import TINY_CFG as CFG
from tests.conftest import make_levir_split, run_tool, tiny_options

LQ_CFG = osp.join(REPO_ROOT, 'configs/hicd/fc_siam_diff',
                  'lq_fc_siam_diff_cpu-1k_synthetic_multi_deg_x4.py')
SPLIT = dict(img_path_from='test/A', img_path_to='test/B', seg_map_path='test/label')


def load_tool(name, path):
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO_ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


degrade_tool = load_tool('degrade_dataset', 'tools/degrade_dataset.py')
test_tool = load_tool('test_tool', 'tools/test.py')


def levir_cfg(data_root, **extra):
    """A LEVIR-CD test dataset config (pipeline ends with the packer)."""
    return dict(type='LEVIRCDDataset', data_root=data_root, data_prefix=dict(SPLIT),
                pipeline=[dict(type='MultiImgLoadImageFromFile'),
                          dict(type='MultiImgLoadAnnotations'),
                          dict(type='MultiImgPackSegInputs')], **extra)


def degrade_split(src, dst, *options):
    argv = [src, dst, '--degradation', 'jpeg', '--severity', '2', '--quiet', *options]
    assert degrade_tool.main(argv) == 0


@pytest.fixture
def split_root(tmp_path):
    """A LEVIR-style root with a 3-pair test split and its jpeg-2 copy (the split folder)."""
    root = make_levir_split(str(tmp_path / 'levir'), 'test', 3, size=(40, 48), seed=3)
    degraded = str(tmp_path / 'levir_jpeg2' / 'test')
    degrade_split(osp.join(root, 'test'), degraded)
    return root, degraded


# --------------------------------------------------------------------- names and transforms
def test_resolve_names_and_groups():
    assert resolve_degradation('jpeg') == 'jpeg'
    assert resolve_degradation('blur') == ['gaussian_blur', 'anisotropic_blur', 'motion_blur']
    assert degradation_family('noise') == 'single'
    assert degradation_family('resolution') == 'resolution'
    assert {'jpeg', 'multi', 'blur', 'noise'} <= set(valid_degradation_names())


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown degradation 'fog'") as err:
        resolve_degradation('fog')
    for name in ('gaussian_blur', 'jpeg', 'haze', 'resolution', 'multi', 'blur', 'noise'):
        assert name in str(err.value)


def test_make_test_degradation_is_fixed_and_lq_only():
    cfg = make_test_degradation('jpeg', severity=3)
    assert cfg == dict(type='hicd_mm.DegradeImage', degradation='jpeg', severity=3, target='B',
                       keep_hq=False, seed=0)
    assert make_test_degradation('resolution', scale=4, seed=7)['seed'] == 7
    assert make_test_degradation('blur', severity=2)['degradation'][0] == 'gaussian_blur'


@pytest.mark.parametrize('kwargs, message', [
    (dict(name='jpeg'), 'needs severity'),
    (dict(name='jpeg', severity=6), 'severity must be in 1-5'),
    (dict(name='resolution', severity=2), 'does not take severity'),
    (dict(name='multi'), 'needs scale'),
    (dict(name='blur'), "group 'blur'"),
    (dict(name='jpeg', severity=1, seed=-1), 'non-negative'),
])
def test_make_test_degradation_errors(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make_test_degradation(**kwargs)


# --------------------------------------------------------------------- on-the-fly degradation
def test_strip_removes_every_pipeline_degradation():
    dataset = levir_cfg('x')
    dataset['pipeline'].insert(2, dict(type='DegradeImage', degradation='haze',
                                       severity=1, keep_hq=False, seed=0))
    dataset['pipeline'].insert(3, dict(type='hicd_mm.DegradeImage', degradation='jpeg',
                                       severity=1, keep_hq=False, seed=0))
    cleaned, removed = strip_degradations(dataset)
    assert [t['type'] for t in cleaned['pipeline']] == [
        'MultiImgLoadImageFromFile', 'MultiImgLoadAnnotations', 'MultiImgPackSegInputs']
    assert [t['degradation'] for t in removed] == ['haze', 'jpeg']
    assert len(dataset['pipeline']) == 5  # input untouched


def _degradations(dataset_cfg):
    return [t for t in dataset_cfg.pipeline if 'DegradeImage' in t['type']]


def test_set_test_degradation_replaces_the_config_one():
    cfg = Config.fromfile(LQ_CFG)
    assert [t.degradation for t in _degradations(cfg.test_dataloader.dataset)] == ['multi']
    notes = set_test_degradation(cfg, make_test_degradation('jpeg', severity=4, seed=2))
    pipeline = cfg.test_dataloader.dataset.pipeline
    assert [t.to_dict() for t in _degradations(cfg.test_dataloader.dataset)] == [
        make_test_degradation('jpeg', severity=4, seed=2)]
    assert pipeline[-2].type == 'hicd_mm.DegradeImage'  # right before the packing step
    assert pipeline[-1].type.endswith('PackSegInputs')
    assert any('removed' in n and 'multi' in n for n in notes)
    assert any('jpeg severity=4 seed=2' in n for n in notes)
    # the validation loader (the same object in the config file) is left alone
    assert [t.degradation for t in _degradations(cfg.val_dataloader.dataset)] == ['multi']


def test_clean_evaluation_removes_every_degradation():
    cfg = Config.fromfile(LQ_CFG)
    set_test_degradation(cfg, None)
    assert _degradations(cfg.test_dataloader.dataset) == []


def test_wrapped_dataset_is_refused():
    wrapper = dict(type='ConcatDataset', datasets=[levir_cfg('x')])
    with pytest.raises(ValueError, match='dataset wrapper'):
        with_test_degradation(wrapper, make_test_degradation('jpeg', severity=1))


def test_apply_test_options_argument_errors():
    cfg = Config.fromfile(CFG)
    with pytest.raises(ValueError, match='mutually exclusive'):
        apply_test_options(cfg, degradation='jpeg', severity=1, degraded_dir='x')
    with pytest.raises(ValueError, match='--severity need'):
        apply_test_options(cfg, severity=3)
    assert apply_test_options(cfg) == []


def test_test_tool_exits_with_the_valid_names(capsys):
    cfg = Config.fromfile(CFG)
    args = argparse.Namespace(degradation='fog', severity=1, scale=None, degradation_seed=None,
                              degraded_dir=None)
    with pytest.raises(SystemExit) as exit_info:
        test_tool.apply_quality_options(cfg, args)
    assert exit_info.value.code == 2  # bad input: the status argparse uses
    assert "test.py: error: unknown degradation 'fog'" in capsys.readouterr().err


# --------------------------------------------------------------------- offline degraded folder
def build(dataset_cfg):
    return DATASETS.build(dataset_cfg)


def test_degraded_split_folder(split_root):
    root, degraded = split_root
    cfg = Config.fromfile(LQ_CFG)
    cfg.test_dataloader.dataset.data_root = root
    notes = set_degraded_dir(cfg, degraded)
    dataset_cfg = cfg.test_dataloader.dataset
    assert dataset_cfg.data_root == osp.abspath(degraded)
    assert dataset_cfg.data_prefix.to_dict() == dict(img_path_from='A', img_path_to='B',
                                                     seg_map_path='label')
    assert _degradations(dataset_cfg) == []
    assert any('removed the on-the-fly degradation' in n for n in notes)
    assert any('3 images degraded offline' in n and "'jpeg'" in n for n in notes)
    dataset = build(dataset_cfg)
    assert len(dataset) == 3
    b_path = dataset[0]['data_samples'].metainfo['img_path'][1]
    assert b_path.startswith(osp.abspath(degraded))
    assert 'degradation' not in dataset[0]['data_samples'].metainfo


def test_degraded_root_with_the_config_layout(tmp_path):
    root = make_levir_split(str(tmp_path / 'levir'), 'test', 2, size=(32, 32))
    degraded_root = str(tmp_path / 'deg')
    degrade_split(osp.join(root, 'test'), osp.join(degraded_root, 'test'))
    dataset_cfg, notes = with_degraded_dir(levir_cfg(root), degraded_root)
    assert dataset_cfg['data_root'] == osp.abspath(degraded_root)
    assert dataset_cfg['data_prefix'] == SPLIT
    assert any('images degraded offline' in n for n in notes)
    assert len(build(dataset_cfg)) == 2


def test_offline_equals_on_the_fly(split_root):
    """The folder of degrade_dataset.py and DegradeImage(seed) give the same pixels."""
    root, degraded = split_root
    offline, _ = with_degraded_dir(levir_cfg(root), degraded)
    online, _ = with_test_degradation(levir_cfg(root), make_test_degradation('jpeg', 2))
    for a, b in zip(build(offline), build(online)):
        np.testing.assert_array_equal(a['inputs'].numpy(), b['inputs'].numpy())


def test_not_a_dataset_layout(split_root, tmp_path):
    root, _ = split_root
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match='is not a dataset layout') as err:
        with_degraded_dir(levir_cfg(root), str(empty))
    assert osp.join(str(empty), 'A') in str(err.value)  # names the folders expected
    with pytest.raises(FileNotFoundError, match='is not a folder'):
        with_degraded_dir(levir_cfg(root), str(tmp_path / 'missing'))


def test_folder_without_manifest_is_used_with_a_note(split_root, tmp_path):
    root, _ = split_root
    _, notes = with_degraded_dir(levir_cfg(root), osp.join(root, 'test'))
    assert any('no manifest.json' in n for n in notes)


def test_split_argument_and_original_list_file(split_root):
    """CDFolderDataset's ``split`` is dropped; a list file missing from the copy is reused."""
    root, degraded = split_root
    with open(osp.join(root, 'test.txt'), 'w') as f:
        f.write('test_000\ntest_002\n')
    dataset_cfg = dict(type='CDFolderDataset', data_root=root, split='test',
                       ann_file='test.txt', pipeline=[])
    new_cfg, notes = with_degraded_dir(dataset_cfg, degraded)
    assert new_cfg['split'] == '' and new_cfg['ann_file'] == osp.join(root, 'test.txt')
    assert any('original dataset' in n for n in notes)
    dataset = build(new_cfg)
    b_paths = [dataset.get_data_info(i)['img_path'][1] for i in range(len(dataset))]
    assert b_paths == [osp.join(osp.abspath(degraded), 'B', f'test_00{i}.png') for i in (0, 2)]


# --------------------------------------------------------------------- end to end
def read_masks(folder):
    return {osp.basename(p): cv2.imread(p, cv2.IMREAD_UNCHANGED)
            for p in sorted(glob.glob(osp.join(folder, '*.png')))}


def last_metrics(work):
    with open(sorted(glob.glob(osp.join(work, '*', '*.json')))[-1]) as f:
        return json.load(f)


@pytest.mark.slow
def test_tool_degradation_matches_degraded_dir(tiny_teacher, tmp_path):
    root, ckpt = tiny_teacher
    online_work, online_out = str(tmp_path / 'w1'), str(tmp_path / 'm1')
    proc = run_tool(['tools/test.py', CFG, ckpt, '--work-dir', online_work, '--out',
                     online_out, '--degradation', 'gaussian_noise', '--severity', '5',
                     '--degradation-seed', '3', '--cfg-options', *tiny_options(root, 2)])
    log = proc.stdout + proc.stderr
    assert 'image B degraded on the fly with gaussian_noise severity=5 seed=3' in log
    degraded = str(tmp_path / 'noise5' / 'test')
    assert degrade_tool.main([osp.join(root, 'test'), degraded, '--degradation',
                              'gaussian_noise', '--severity', '5', '--seed', '3',
                              '--quiet']) == 0
    offline_work, offline_out = str(tmp_path / 'w2'), str(tmp_path / 'm2')
    proc = run_tool(['tools/test.py', CFG, ckpt, '--work-dir', offline_work, '--out',
                     offline_out, '--degraded-dir', degraded, '--cfg-options',
                     *tiny_options(root, 2)])
    assert f'data_root={osp.abspath(degraded)}' in proc.stdout + proc.stderr
    online, offline = read_masks(online_out), read_masks(offline_out)
    assert sorted(online) == ['test_000.png', 'test_001.png'] == sorted(offline)
    for name in online:
        np.testing.assert_array_equal(online[name], offline[name])
    scores_online, scores_offline = last_metrics(online_work), last_metrics(offline_work)
    for key in ('F1', 'IoU', 'Precision', 'Recall', 'OA', 'Kappa'):
        assert scores_online[key] == pytest.approx(scores_offline[key]), key
