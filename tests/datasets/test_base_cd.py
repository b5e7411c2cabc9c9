import os
import os.path as osp

import cv2
import numpy as np
import pytest

from hicd_mm.datasets import (BANDONDataset, CDFolderDataset, LEVIRCDDataset, SVCDDataset)
from hicd_mm.datasets.transforms import MultiImgLoadAnnotations, MultiImgLoadImageFromFile
from tests.conftest import snapshot, write_pair

TEST_PIPELINE = [
    dict(type='MultiImgLoadImageFromFile'),
    dict(type='MultiImgLoadAnnotations'),
    dict(type='MultiImgPackSegInputs'),
]


def levir(root, split='train', **kwargs):
    return LEVIRCDDataset(
        data_root=root,
        data_prefix=dict(img_path_from=f'{split}/A', img_path_to=f'{split}/B',
                         seg_map_path=f'{split}/label'),
        pipeline=TEST_PIPELINE, **kwargs)


def test_levir_lists_pairs_and_packs(levir_root):
    ds = levir(levir_root)
    assert len(ds) == 4
    info = ds.get_data_info(0)
    assert info['img_path'][0].endswith(osp.join('train', 'A', 'train_000.png'))
    assert info['img_path'][1].endswith(osp.join('train', 'B', 'train_000.png'))
    out = ds[0]
    assert tuple(out['inputs'].shape) == (6, 64, 64)
    label = out['data_samples'].gt_sem_seg.data
    assert set(label.unique().tolist()) <= {0, 1}
    raw = cv2.imread(info['seg_map_path'], cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(label[0].numpy(), (raw > 0).astype(np.int64))
    a = cv2.imread(info['img_path'][0])
    np.testing.assert_array_equal(out['inputs'][:3].numpy().transpose(1, 2, 0), a)


def test_loading_does_not_write_into_dataset(levir_root):
    before = snapshot(levir_root)
    ds = levir(levir_root)
    for i in range(len(ds)):
        ds[i]
    assert snapshot(levir_root) == before


def test_missing_b_image_names_file(levir_root):
    os.remove(osp.join(levir_root, 'train', 'B', 'train_002.png'))
    with pytest.raises(FileNotFoundError, match='train_002'):
        levir(levir_root)


def test_missing_label_names_file(levir_root):
    os.remove(osp.join(levir_root, 'train', 'label', 'train_001.png'))
    with pytest.raises(FileNotFoundError, match=r'label.*train_001'):
        levir(levir_root)


def test_empty_folder(tmp_path):
    for sub in ('A', 'B', 'label'):
        os.makedirs(tmp_path / 'train' / sub)
    with pytest.raises(ValueError, match='no samples'):
        levir(str(tmp_path))


def test_wrong_layout_names_folder(tmp_path):
    os.makedirs(tmp_path / 'train' / 'images')
    with pytest.raises(FileNotFoundError, match=r"train/A"):
        levir(str(tmp_path))


def test_pair_of_different_sizes(tmp_path):
    root = str(tmp_path)
    write_pair(osp.join(root, 'train'), 'x', size=(32, 32))
    cv2.imwrite(osp.join(root, 'train', 'B', 'x.png'), np.zeros((40, 32, 3), np.uint8))
    ds = levir(root)
    with pytest.raises(ValueError, match=r'differ in size.*x\.png'):
        ds[0]


def test_label_with_bad_values(tmp_path):
    root = str(tmp_path)
    write_pair(osp.join(root, 'train'), 'x', size=(32, 32), label_values=(0, 7, 255))
    ds = levir(root)
    with pytest.raises(ValueError, match=r"x\.png.*expected only 0/255"):
        ds[0]


def test_label_of_wrong_size(tmp_path):
    root = str(tmp_path)
    write_pair(osp.join(root, 'train'), 'x', size=(32, 32))
    cv2.imwrite(osp.join(root, 'train', 'label', 'x.png'), np.zeros((16, 16), np.uint8))
    with pytest.raises(ValueError, match=r'label.*16x16'):
        levir(root)[0]


def test_file_that_is_not_an_image(tmp_path):
    root = str(tmp_path)
    write_pair(osp.join(root, 'train'), 'x', size=(32, 32))
    with open(osp.join(root, 'train', 'A', 'x.png'), 'wb') as f:
        f.write(b'this is not a png')
    with pytest.raises(ValueError, match=r"cannot decode .*A/x\.png"):
        levir(root)[0]


def test_label_0_1_accepted_and_threshold_mode():
    label01 = np.array([[0, 1], [1, 0]], np.uint8)
    from hicd_mm.datasets.transforms.loading import format_change_label
    np.testing.assert_array_equal(format_change_label(label01, 'to_binary', 'l'), label01)
    jpg_like = np.array([[3, 250], [130, 100]], np.uint8)
    np.testing.assert_array_equal(format_change_label(jpg_like, 'threshold', 'l'),
                                  [[0, 1], [1, 0]])
    with pytest.raises(ValueError):
        format_change_label(jpg_like, 'to_binary', 'l')
    ignore = np.array([[0, 1], [255, 0]], np.uint8)
    np.testing.assert_array_equal(format_change_label(ignore, None, 'l'), ignore)


def test_svcd_layout(tmp_path):
    root = str(tmp_path)
    write_pair(osp.join(root, 'val'), 'p0', label_dir='OUT', img_ext='.jpg', label_ext='.jpg')
    ds = SVCDDataset(data_root=root, data_prefix=dict(img_path_from='val/A',
                                                      img_path_to='val/B',
                                                      seg_map_path='val/OUT'),
                     pipeline=TEST_PIPELINE)
    assert len(ds) == 1
    label = ds[0]['data_samples'].gt_sem_seg.data
    assert set(label.unique().tolist()) <= {0, 1}


def test_bandon_list_file(tmp_path):
    root = str(tmp_path)
    rng = np.random.default_rng(1)
    img_root = osp.join(root, 'train', 'imgs')
    for t in ('t1', 't2'):
        os.makedirs(osp.join(img_root, 'bj', t))
        cv2.imwrite(osp.join(img_root, 'bj', t, 'a.jpg'),
                    rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    lab_dir = osp.join(root, 'train', 'labels_unch0ch1ig255', 'bj', 't1VSt2')
    os.makedirs(lab_dir)
    lab = np.zeros((32, 32), np.uint8)
    lab[:4] = 1
    lab[-4:] = 255
    cv2.imwrite(osp.join(lab_dir, 'a.png'), lab)
    with open(osp.join(root, 'train.txt'), 'w') as f:
        f.write('bj/t1/a bj/t2/a bj/t1VSt2/a\n')
    ds = BANDONDataset(data_root=root, ann_file='train.txt', pipeline=TEST_PIPELINE)
    assert len(ds) == 1
    gt = ds[0]['data_samples'].gt_sem_seg.data[0].numpy()
    np.testing.assert_array_equal(gt, lab)
    with open(osp.join(root, 'bad.txt'), 'w') as f:
        f.write('bj/t1/a bj/t2/a\n')
    with pytest.raises(ValueError, match=r'bad\.txt:1'):
        BANDONDataset(data_root=root, ann_file='bad.txt', pipeline=TEST_PIPELINE)


def test_folder_dataset_custom_names(tmp_path):
    root = str(tmp_path)
    write_pair(osp.join(root, 'trn'), 'q', a_dir='time1', b_dir='time2', label_dir='mask',
               img_ext='.tif')
    ds = CDFolderDataset(data_root=root, split='trn', a_dir='time1', b_dir='time2',
                         label_dir='mask', pipeline=TEST_PIPELINE)
    assert len(ds) == 1 and ds[0]['inputs'].shape[0] == 6


def test_unlabelled_pair_loads_without_label(tmp_path):
    root = str(tmp_path)
    write_pair(root, 'u', label_dir=None)
    ds = CDFolderDataset(data_root=root, label_dir=None,
                         pipeline=[dict(type='MultiImgLoadImageFromFile'),
                                   dict(type='MultiImgPackSegInputs')])
    out = ds[0]
    assert 'gt_sem_seg' not in out['data_samples']
    with pytest.raises(KeyError, match='no change label'):
        MultiImgLoadAnnotations()(dict(ds.get_data_info(0)))
    assert MultiImgLoadImageFromFile()(ds.get_data_info(0))['img'][0].shape == (64, 64, 3)


def test_dataset_has_no_degradation_side_channel(levir_root):
    """The degradation is a pipeline step only (one mechanism): no dataset argument."""
    with pytest.raises(TypeError, match='degradation'):
        levir(levir_root, degradation=dict(type='DegradeImage', degradation='jpeg',
                                           severity=3))
