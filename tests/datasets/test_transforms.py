import numpy as np
import pytest
import torch

from hicd_mm.datasets.transforms import (MultiImgPackSegInputs, MultiImgPhotoMetricDistortion,
                                         MultiImgRandomCrop, MultiImgRandomFlip,
                                         MultiImgRandomRot90, MultiImgRandomRotate,
                                         MultiImgResize, PackHQPair)


def aligned_results(h=48, w=40, seed=0):
    """t1 == t2 and a label derived from the image: any misalignment becomes visible."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    label = (img[..., 0] > 127).astype(np.uint8)
    return dict(img=[img.copy(), img.copy()], gt_seg_map=label, seg_fields=['gt_seg_map'],
                img_shape=(h, w), ori_shape=(h, w))


def assert_aligned(results):
    a, b = results['img']
    np.testing.assert_array_equal(a, b)
    lab = results['gt_seg_map']
    valid = lab != 255
    np.testing.assert_array_equal(lab[valid], (a[..., 0] > 127)[valid].astype(np.uint8))


@pytest.mark.parametrize('transform', [
    MultiImgRandomFlip(prob=1.0, direction=['horizontal', 'vertical', 'diagonal']),
    MultiImgRandomRot90(prob=1.0),
    MultiImgRandomCrop(crop_size=(24, 16)),
])
def test_one_draw_for_pair_and_label(transform):
    for seed in range(5):
        np.random.seed(seed)
        res = transform(aligned_results(seed=seed))
        assert_aligned(res)
        assert res['img'][0].shape[:2] == res['gt_seg_map'].shape
        assert res['img_shape'] == res['img'][0].shape[:2]


def test_resize_images_bilinear_labels_nearest():
    import mmcv
    res = aligned_results(48, 40)
    label = res['gt_seg_map'].copy()
    out = MultiImgResize(scale=(20, 24))(res)
    assert out['img'][0].shape == (24, 20, 3) and out['img_shape'] == (24, 20)
    np.testing.assert_array_equal(out['img'][0], out['img'][1])
    np.testing.assert_array_equal(out['gt_seg_map'],
                                  mmcv.imresize(label, (20, 24), interpolation='nearest'))
    assert out['scale_factor'] == (0.5, 0.5)


def test_rotate_keeps_alignment_with_nearest_label():
    np.random.seed(3)
    res = MultiImgRandomRotate(prob=1.0, degree=30)(aligned_results())
    a, b = res['img']
    np.testing.assert_array_equal(a, b)
    assert (res['gt_seg_map'] == 255).any()  # padded corners are ignored
    assert set(np.unique(res['gt_seg_map']).tolist()) <= {0, 1, 255}


def test_flip_actually_flips_and_records():
    res = aligned_results()
    orig = res['img'][0].copy()
    out = MultiImgRandomFlip(prob=1.0, direction='horizontal')(res)
    np.testing.assert_array_equal(out['img'][0], orig[:, ::-1])
    assert out['flip'] and out['flip_direction'] == 'horizontal'


def test_crop_applies_to_hq_copy_too():
    res = aligned_results()
    res['img_hq'] = [x.copy() for x in res['img']]
    np.random.seed(0)
    out = MultiImgRandomCrop(crop_size=20)(res)
    np.testing.assert_array_equal(out['img_hq'][0], out['img'][0])
    assert out['img_hq'][1].shape == (20, 20, 3)


def test_crop_cat_max_ratio_prefers_mixed_crops():
    res = aligned_results(64, 64)
    label = np.zeros((64, 64), np.uint8)
    label[:8, :8] = 1
    res['gt_seg_map'] = label
    np.random.seed(0)
    out = MultiImgRandomCrop(crop_size=16, cat_max_ratio=0.9)(res)
    # with 10 retries a crop touching the changed corner is very likely
    assert out['gt_seg_map'].shape == (16, 16)


def test_photometric_draws_per_image():
    differs = 0
    for seed in range(5):
        np.random.seed(seed)
        res = MultiImgPhotoMetricDistortion()(aligned_results(seed=seed))
        differs += int(not np.array_equal(res['img'][0], res['img'][1]))
    assert differs >= 3


def test_photometric_refuses_after_degradation():
    res = aligned_results()
    res['img_hq'] = res['img']
    with pytest.raises(RuntimeError, match='before the degradation'):
        MultiImgPhotoMetricDistortion()(res)


def test_pack_order_and_hq():
    res = aligned_results(8, 8)
    res['img'][1] = res['img'][1] // 2
    packed = MultiImgPackSegInputs()(dict(res, img_path=['a', 'b']))
    inputs = packed['inputs']
    assert inputs.shape == (6, 8, 8) and inputs.dtype == torch.uint8
    np.testing.assert_array_equal(inputs[3:].numpy().transpose(1, 2, 0), res['img'][1])
    assert packed['data_samples'].gt_sem_seg.data.shape == (1, 8, 8)
    # the plain packer packs only the pair: the HQ copy needs PackHQPair around it
    res['img_hq'] = [res['img'][0], res['img'][0]]
    packed = MultiImgPackSegInputs()(res)
    assert packed['inputs'].shape == (6, 8, 8) and 'inputs_hq' not in packed
    packed = PackHQPair(packer=dict(type='MultiImgPackSegInputs'))(res)
    assert packed['inputs'].shape == packed['inputs_hq'].shape == (6, 8, 8)
    np.testing.assert_array_equal(packed['inputs_hq'][3:].numpy().transpose(1, 2, 0),
                                  res['img'][0])
    np.testing.assert_array_equal(packed['inputs'][3:].numpy().transpose(1, 2, 0),
                                  res['img'][1])
