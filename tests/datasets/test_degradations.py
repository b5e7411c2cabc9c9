"""Degradations of one image of the pair (hicd_mm.datasets.degradations, DegradeImage)."""
import json

import cv2
import numpy as np
import pytest

from hicd_mm.datasets.degradations import (NAMES, SEVERITY_TABLES, SINGLE_NAMES, apply_spec,
                                           build_spec, degradation_rng, degrade)
from hicd_mm.datasets.degradations.kernels import (anisotropic_gaussian_kernel, apply_kernel,
                                                   motion_kernel)
from hicd_mm.datasets.degradations.multi import STEPS, multi_degradation
from hicd_mm.datasets.transforms import (DegradeImage, MultiImgPackSegInputs,
                                         MultiImgPhotoMetricDistortion, MultiImgRandomCrop,
                                         MultiImgRandomFlip, MultiImgRandomRot90,
                                         MultiImgRandomRotate, PackHQPair)
from hicd_mm.registry import TRANSFORMS


def options_for(name, severity=3, scale=4):
    if name in ('resolution', 'multi'):
        return dict(scale=scale)
    return {} if name == 'identity' else dict(severity=severity)


def textured(h=64, w=64, seed=0):
    """A smooth-ish colour texture with edges (so blur and JPEG have something to remove)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(30, 226, (h // 8, w // 8, 3), dtype=np.uint8)
    img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_NEAREST)
    img = cv2.add(img, rng.integers(0, 30, (h, w, 3), dtype=np.uint8))
    return img


def make_results(h=64, w=64, seed=0, idx=0):
    img_a, img_b = textured(h, w, seed), textured(h, w, seed + 100)
    label = (textured(h, w, seed + 200)[..., 0] > 128).astype(np.uint8)
    return dict(img=[img_a, img_b], gt_seg_map=label, seg_fields=['gt_seg_map'],
                img_shape=(h, w), ori_shape=(h, w), sample_idx=idx)


def high_freq(img):
    return float(cv2.Laplacian(img.astype(np.float32), cv2.CV_32F).var())


# ---------------------------------------------------------------------------------------
# The transform: B degraded, A / label untouched, HQ copy kept
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', [n for n in NAMES if n != 'identity'])
def test_only_b_degraded_and_hq_kept(name):
    res = make_results()
    a, b, label = (x.copy() for x in (*res['img'], res['gt_seg_map']))
    out = DegradeImage(name, seed=0, **options_for(name))(res)
    assert out['img'][0].tobytes() == a.tobytes()
    assert out['gt_seg_map'].tobytes() == label.tobytes()
    assert out['img_hq'][0].tobytes() == a.tobytes()
    assert out['img_hq'][1].tobytes() == b.tobytes()
    lq = out['img'][1]
    assert lq.shape == b.shape and lq.dtype == np.uint8
    assert not np.array_equal(lq, b)
    rec = out['degradation']
    assert rec['name'] == name and rec['target'] == 'B' and rec['seed'] == 0
    assert rec['sample_idx'] == 0 and isinstance(rec['params'], dict)
    json.dumps(rec)  # JSON-serialisable


def test_target_a_and_keep_hq_false():
    res = make_results()
    a, b = (x.copy() for x in res['img'])
    out = DegradeImage('jpeg', severity=5, target='A', keep_hq=False, seed=1)(res)
    assert 'img_hq' not in out
    assert out['img'][1].tobytes() == b.tobytes()
    assert not np.array_equal(out['img'][0], a)
    assert out['degradation']['target'] == 'A'


@pytest.mark.parametrize('name', ['gaussian_blur', 'anisotropic_blur', 'motion_blur'])
def test_blur_removes_high_frequencies(name):
    img = textured(96, 96)
    prev = high_freq(img)
    for k in (1, 3, 5):
        out, _ = degrade(img, name, degradation_rng(0, 0), severity=k)
        hf = high_freq(out)
        assert hf < prev
        prev = hf


@pytest.mark.parametrize('name,scale', [('resolution', 2), ('resolution', 8), ('multi', 4)])
def test_resolution_loss_removes_detail(name, scale):
    img = textured(128, 128)
    out, _ = degrade(img, name, degradation_rng(0, 3), scale=scale)
    assert high_freq(out) < 0.7 * high_freq(img)


@pytest.mark.parametrize('name,expected', [('gaussian_noise', (5, 10, 15, 25, 35)),
                                           ('poisson_noise', None)])
def test_noise_raises_variance(name, expected):
    flat = np.full((128, 128, 3), 128, np.uint8)
    stds = [degrade(flat, name, degradation_rng(0, 0), severity=k)[0].astype(float).std()
            for k in range(1, 6)]
    assert all(s > 1 for s in stds) and stds == sorted(stds)
    if expected:
        np.testing.assert_allclose(stds, expected, rtol=0.1)


@pytest.mark.parametrize('name', SINGLE_NAMES)
def test_error_grows_with_severity(name):
    img = textured(96, 96)
    errors = [np.abs(degrade(img, name, degradation_rng(0, 0), severity=k)[0].astype(float)
                     - img).mean() for k in range(1, 6)]
    assert errors == sorted(errors), errors
    assert errors[0] > 0


def test_photometric_degradations_move_in_the_right_direction():
    img = textured(64, 64)
    haze, _ = degrade(img, 'haze', degradation_rng(0, 0), severity=4)
    assert haze.mean() > img.mean() and haze.std() < img.std()
    dark, _ = degrade(img, 'low_light', degradation_rng(0, 0), severity=3)
    assert dark.mean() < 0.6 * img.mean()
    flat, rec = degrade(img, 'contrast_brightness', degradation_rng(0, 0), severity=3)
    assert flat.std() < 0.6 * img.std()
    assert np.sign(flat.mean() - img.mean()) == np.sign(rec['params']['brightness'])


@pytest.mark.parametrize('name', ['gaussian_noise', 'poisson_noise', 'low_light', 'multi',
                                  'contrast_brightness', 'haze'])
def test_clipped_never_wrapped(name):
    """Values beyond 255 (or below 0) must saturate: a wrap-around would turn a white image
    plus noise into dark pixels and a black one minus noise into bright pixels."""
    white = np.full((64, 64, 3), 255, np.uint8)
    black = np.zeros((64, 64, 3), np.uint8)
    for idx in range(4):
        opts = options_for(name, severity=5, scale=4)
        out, _ = degrade(white, name, degradation_rng(0, idx), **opts)
        assert (out < 60).mean() < 0.01, name
        if name in ('gaussian_noise', 'poisson_noise'):
            assert (out == 255).mean() > 0.3, name  # the positive half saturates
        out, _ = degrade(black, name, degradation_rng(0, idx), **opts)
        if name != 'haze':  # haze brightens a black image towards the airlight
            assert (out > 195).mean() < 0.01, name
        if name in ('gaussian_noise', 'poisson_noise'):
            assert (out == 0).mean() > 0.3, name


def test_noise_saturates_at_255():
    white = np.full((64, 64, 3), 250, np.uint8)
    out, _ = degrade(white, 'gaussian_noise', degradation_rng(0, 0), severity=5)
    assert out.max() == 255 and (out == 255).mean() > 0.3 and out.min() > 100


# ---------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', [n for n in NAMES if n != 'identity'])
def test_deterministic_per_seed_and_index(name):
    opts = options_for(name)
    if name == 'resolution':
        opts['scale'] = (2, 8)  # a fixed factor has nothing random to draw

    def run(seed, idx):
        out = DegradeImage(name, seed=seed, **opts)(make_results(idx=idx))
        return out['img'][1], out['degradation']

    img1, rec1 = run(0, 5)
    img2, rec2 = run(0, 5)
    assert img1.tobytes() == img2.tobytes() and rec1 == rec2
    if name in ('gaussian_blur', 'jpeg'):
        return  # nothing is drawn at a fixed severity: every seed gives the same image
    assert any(not np.array_equal(run(s, 5)[0], img1) for s in (1, 2, 3))
    assert any(not np.array_equal(run(0, i)[0], img1) for i in (6, 7, 8))


def test_training_mode_varies_and_follows_global_seed():
    t = DegradeImage('multi', scale=4)
    np.random.seed(0)
    first = [t(make_results())['img'][1] for _ in range(3)]
    assert not np.array_equal(first[0], first[1])
    np.random.seed(0)
    again = [t(make_results())['img'][1] for _ in range(3)]
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    rec = t(make_results())['degradation']
    assert rec['seed'] is None and isinstance(rec['rng_seed'], int)
    # the recorded generator seed reproduces the sample
    np.random.seed(123)
    res = t(make_results())
    out, _ = apply_spec(make_results()['img'][1], t.specs,
                        np.random.default_rng(res['degradation']['rng_seed']))
    np.testing.assert_array_equal(out, res['img'][1])


def test_random_choice_of_degradation_and_severity_is_seeded():
    t = DegradeImage(['gaussian_blur', 'jpeg', 'haze'], severity=[1, 5], seed=3)
    recs = [t(make_results(idx=i))['degradation'] for i in range(24)]
    assert {r['name'] for r in recs} == {'gaussian_blur', 'jpeg', 'haze'}
    assert {r['severity'] for r in recs} == {1, 5}
    assert recs == [t(make_results(idx=i))['degradation'] for i in range(24)]


# ---------------------------------------------------------------------------------------
# Alignment with geometric augmentation, packing, pipelines
# ---------------------------------------------------------------------------------------
GEOMETRY = [MultiImgRandomCrop(crop_size=(40, 36)),
            MultiImgRandomFlip(prob=0.5, direction=['horizontal', 'vertical']),
            MultiImgRandomRot90(prob=0.5), MultiImgRandomRotate(prob=0.5, degree=20)]


@pytest.mark.parametrize('np_seed', range(4))
def test_hq_and_lq_aligned_after_random_geometry(np_seed):
    degrade_t = DegradeImage('gaussian_blur', severity=2, seed=7)
    np.random.seed(np_seed)
    res = make_results(idx=3)
    for t in GEOMETRY + [degrade_t]:
        res = t(res)
    np.random.seed(np_seed)
    ref = make_results(idx=3)
    for t in GEOMETRY:
        ref = t(ref)
    # the HQ pair is exactly the geometric-only pair, the label follows it ...
    for k in range(2):
        np.testing.assert_array_equal(res['img_hq'][k], ref['img'][k])
    np.testing.assert_array_equal(res['gt_seg_map'], ref['gt_seg_map'])
    np.testing.assert_array_equal(res['img'][0], ref['img'][0])
    # ... and LQ B is that HQ B degraded in place (same geometry, no shift)
    expected, _ = apply_spec(ref['img'][1], degrade_t.specs, degradation_rng(7, 3))
    np.testing.assert_array_equal(res['img'][1], expected)


def test_geometry_after_degradation_moves_both_pairs():
    np.random.seed(1)
    res = DegradeImage('identity')(make_results())
    for t in GEOMETRY:
        res = t(res)
    for k in range(2):
        np.testing.assert_array_equal(res['img'][k], res['img_hq'][k])


def blob(cy, cx, size=96, sigma=6.0):
    ys, xs = np.mgrid[:size, :size]
    g = 30 + 200 * np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma ** 2))
    return cv2.merge([g.astype(np.uint8)] * 3)


def centroid(img):
    ys, xs = np.mgrid[:img.shape[0], :img.shape[1]]
    w = np.clip(img[..., 1].astype(float) - np.median(img[..., 1]), 0, None)
    return (w * ys).sum() / w.sum(), (w * xs).sum() / w.sum()


@pytest.mark.parametrize('name,opts', [
    ('resolution', dict(scale=4)), ('resolution', dict(scale=(2.5, 7), kernel='area')),
    ('resolution', dict(scale=8, kernel='bilinear')), ('anisotropic_blur', dict(severity=5)),
    ('motion_blur', dict(severity=5)), ('gaussian_blur', dict(severity=5))])
def test_degradations_do_not_shift_the_image(name, opts):
    img = blob(40.0, 55.0)
    for idx in range(3):
        out, _ = degrade(img, name, degradation_rng(0, idx), **opts)
        cy, cx = centroid(out)
        assert abs(cy - 40.0) < 0.25 and abs(cx - 55.0) < 0.25, (name, cy, cx)


@pytest.mark.parametrize('sf', [4, 8])
def test_multi_degradation_geometry_is_centred(sf, monkeypatch):
    """Blur and resampling steps of every random order keep the content in place (a shift
    such as the (sf - 1) / 2 px of top-left nearest sampling would move the blob). Noise and
    JPEG are switched off (they move a centroid by chance); the image is large enough for the
    low-resolution blurs not to reach the borders (reflections would)."""
    from hicd_mm.datasets.degradations import multi
    monkeypatch.setattr(multi, '_noise', lambda x, rng: (x, dict(type='off')))
    monkeypatch.setattr(multi, 'jpeg_roundtrip', lambda img, quality: img)
    img = blob(120.0, 136.0, size=256, sigma=12.0)
    checked = 0
    for i in range(25):
        out, params = degrade(img, 'multi', degradation_rng(0, i), scale=sf)
        if np.ptp(out[..., 1]) < 30:
            continue  # blurred almost flat at 16-20 px: uint8 rounding dominates the centroid
        checked += 1
        cy, cx = centroid(out)
        assert abs(cy - 120.0) < 0.35 and abs(cx - 136.0) < 0.35, (cy, cx, params['params'])
    assert checked >= 15


def test_pack_hq_pair_emits_lq_and_hq_pairs():
    res = DegradeImage('jpeg', severity=4, seed=0)(make_results())
    packed = PackHQPair(packer=dict(type='MultiImgPackSegInputs'))(res)
    inputs, inputs_hq = packed['inputs'].numpy(), packed['inputs_hq'].numpy()
    assert inputs.shape == inputs_hq.shape == (6, 64, 64)
    np.testing.assert_array_equal(inputs[3:6].transpose(1, 2, 0), res['img'][1])
    np.testing.assert_array_equal(inputs_hq[3:6].transpose(1, 2, 0), res['img_hq'][1])
    meta = packed['data_samples'].metainfo
    assert meta['degradation']['name'] == 'jpeg'
    test_res = DegradeImage('jpeg', severity=4, keep_hq=False, seed=0)(make_results())
    assert MultiImgPackSegInputs()(test_res)['inputs'].shape == (6, 64, 64)
    with pytest.raises(KeyError, match=r'DegradeImage.*keep_hq=True.*right before'):
        PackHQPair(packer=dict(type='MultiImgPackSegInputs'))(test_res)


def test_photometric_refuses_to_run_after_degradation():
    res = DegradeImage('haze', severity=1, seed=0)(make_results())
    with pytest.raises(RuntimeError, match='before the degradation'):
        MultiImgPhotoMetricDistortion()(res)


def test_chained_degradations_keep_the_original_hq():
    res = make_results()
    b = res['img'][1].copy()
    res = DegradeImage('resolution', scale=2, seed=0)(res)
    res = DegradeImage('gaussian_noise', severity=2, seed=0)(res)
    np.testing.assert_array_equal(res['img_hq'][1], b)
    assert [r['name'] for r in res['degradation']] == ['resolution', 'gaussian_noise']


def test_inside_dataset_pipeline_on_synthetic_data(tmp_path):
    from hicd_mm.datasets import LEVIRCDDataset
    from tests.conftest import write_synthetic_dataset
    write_synthetic_dataset(str(tmp_path), {'train': 2, 'test': 2}, size=64, seed=0)
    load = [dict(type='MultiImgLoadImageFromFile'), dict(type='MultiImgLoadAnnotations')]
    train_pipeline = load + [
        dict(type='MultiImgRandomCrop', crop_size=(48, 48)),
        dict(type='MultiImgRandomFlip', prob=0.5),
        dict(type='MultiImgPhotoMetricDistortion'),
        dict(type='DegradeImage', degradation='multi', scale=4, keep_hq=True),
        dict(type='PackHQPair', packer=dict(type='MultiImgPackSegInputs'))]
    test_pipeline = load + [
        dict(type='DegradeImage', degradation='resolution', scale=4, keep_hq=False, seed=0),
        dict(type='MultiImgPackSegInputs')]

    def dataset(split, pipeline):
        return LEVIRCDDataset(
            data_root=str(tmp_path), pipeline=pipeline,
            data_prefix=dict(img_path_from=f'{split}/A', img_path_to=f'{split}/B',
                             seg_map_path=f'{split}/label'))

    item = dataset('train', train_pipeline)[1]
    assert item['inputs'].shape == item['inputs_hq'].shape == (6, 48, 48)
    assert item['data_samples'].metainfo['degradation']['name'] == 'multi'
    test_ds = dataset('test', test_pipeline)
    first, again = test_ds[1], test_ds[1]
    assert first['inputs'].shape == (6, 64, 64)
    assert first['data_samples'].metainfo['degradation']['sample_idx'] == 1
    assert first['inputs'].equal(again['inputs'])
    assert not first['inputs'][3:].equal(test_ds[0]['inputs'][3:])


# ---------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize('kernel', [anisotropic_gaussian_kernel(3.4, 0.3, 0.8),
                                    anisotropic_gaussian_kernel(2.0, 1.8, 0.2),
                                    anisotropic_gaussian_kernel(1.2, 0.4, 0.7),
                                    motion_kernel(19, 2.1)])
def test_apply_kernel_equals_filter2d(kernel):
    x = np.random.default_rng(0).random((37, 50, 3), dtype=np.float32) * 255
    ref = cv2.filter2D(x, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(apply_kernel(x, kernel), ref, atol=0.1)
    assert abs(kernel.sum() - 1) < 1e-5
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-7)  # centred, symmetric


def test_resolution_factor_range_and_identity():
    img = textured(64, 64)
    factors = [degrade(img, 'resolution', degradation_rng(0, i), scale=(4, 8))[1]['params']
               ['factor'] for i in range(20)]
    assert all(4 <= f <= 8 for f in factors) and len(set(factors)) > 10
    out, rec = degrade(img, 'resolution', degradation_rng(0, 0), scale=4, kernel='area')
    assert rec['params']['lr_size'] == [16, 16] and rec['params']['kernel'] == 'area'
    same, _ = degrade(img, 'resolution', degradation_rng(0, 0), scale=1)
    np.testing.assert_array_equal(same, img)
    for kernel in ('bicubic', 'bilinear', 'area', 'nearest'):
        out, _ = degrade(img, 'resolution', degradation_rng(0, 0), scale=3, kernel=kernel)
        assert out.shape == img.shape


def test_multi_steps_order_and_probabilities():
    img = textured(32, 32)
    stats = dict(iso=0, jpeg_skipped=0, nearest=0, noise={'color': 0, 'gray': 0,
                                                          'correlated': 0})
    n = 300
    for i in range(n):
        out, params = multi_degradation(img, degradation_rng(0, i), 4)
        steps = params['steps']
        names = [s['step'] for s in steps]
        assert sorted(names[:-1]) == sorted(STEPS) and names[-1] == 'final_jpeg'
        assert names.index('down_1') < names.index('down_2')
        assert params['lr_size'] == [8, 8]
        by = {s['step']: s for s in steps}
        stats['iso'] += (by['blur_1']['type'] == 'isotropic') + (by['blur_2']['type'] ==
                                                                 'isotropic')
        stats['jpeg_skipped'] += by['jpeg']['type'] == 'skipped'
        stats['nearest'] += by['down_1']['type'] == 'blur_nearest'
        stats['noise'][by['noise']['type']] += 1
        assert 2 <= by['noise']['sigma'] <= 25
        assert 30 <= by['final_jpeg']['quality'] <= 95
    assert 0.42 < stats['iso'] / (2 * n) < 0.58
    assert 0.05 < stats['jpeg_skipped'] / n < 0.16
    assert 0.17 < stats['nearest'] / n < 0.33
    assert 0.3 < stats['noise']['color'] / n < 0.5
    assert 0.12 < stats['noise']['correlated'] / n < 0.28


def test_severity_tables_have_five_levels():
    for name in SINGLE_NAMES:
        assert SEVERITY_TABLES[name] and all(len(v) == 5 for v in SEVERITY_TABLES[name].values())


@pytest.mark.parametrize('shape', [(1, 1, 3), (3, 5, 3), (7, 4), (9, 11, 1), (33, 17, 3)])
def test_tiny_odd_and_grayscale_images(shape):
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    for name in NAMES:
        for idx in range(3 if name == 'multi' else 1):
            out, _ = degrade(img, name, degradation_rng(0, idx), **options_for(name, 5, 8))
            assert out.shape == img.shape and out.dtype == np.uint8


def test_grayscale_pair_in_transform():
    res = make_results()
    res['img'] = [x[..., 0].copy() for x in res['img']]
    out = DegradeImage('multi', scale=4, seed=0)(res)
    assert out['img'][1].shape == (64, 64)


# ---------------------------------------------------------------------------------------
# Bad input: errors when the config is built
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize('cfg,error,match', [
    (dict(degradation='fog'), ValueError, 'valid names: identity, resolution'),
    (dict(degradation=['jpeg', 'sharpen'], severity=2), ValueError, 'unknown degradation'),
    (dict(degradation=[]), ValueError, 'empty'),
    (dict(degradation='jpeg'), ValueError, 'needs severity'),
    (dict(degradation='jpeg', severity=0), ValueError, 'severity must be in 1-5'),
    (dict(degradation='jpeg', severity=6), ValueError, 'severity must be in 1-5'),
    (dict(degradation='haze', severity=[1, 7]), ValueError, 'severity must be in 1-5'),
    (dict(degradation='jpeg', severity=2.5), TypeError, 'severity must be an int'),
    (dict(degradation='jpeg', severity='3'), TypeError, 'severity must be an int'),
    (dict(degradation='jpeg', severity=True), TypeError, 'severity must be an int'),
    (dict(degradation='jpeg', severity=3, scale=4), ValueError, 'does not take scale'),
    (dict(degradation='resolution'), ValueError, 'needs scale'),
    (dict(degradation='resolution', scale=0.25), ValueError, 'must be >= 1'),
    (dict(degradation='resolution', scale=0), ValueError, 'must be >= 1'),
    (dict(degradation='resolution', scale=-4), ValueError, 'must be >= 1'),
    (dict(degradation='resolution', scale=(8, 4)), ValueError, 'min > max'),
    (dict(degradation='resolution', scale=(0.125, 0.25)), ValueError, 'must be >= 1'),
    (dict(degradation='resolution', scale=(2, 4, 8)), ValueError, r'\(min, max\)'),
    (dict(degradation='resolution', scale=float('nan')), TypeError, 'finite'),
    (dict(degradation='resolution', scale=4, kernel='lanczos'), ValueError, 'unknown kernel'),
    (dict(degradation='resolution', scale=4, severity=2), ValueError, 'does not take severity'),
    (dict(degradation='multi', scale=0.5), ValueError, 'must be >= 1'),
    (dict(degradation='multi', scale=(4, 8)), TypeError, 'one number'),
    (dict(degradation=dict(name='jpeg', severity=2, quality=3)), ValueError, 'unknown option'),
    (dict(degradation='jpeg', severity=2, target='C'), ValueError, "target must be 'A' or 'B'"),
    (dict(degradation='jpeg', severity=2, keep_hq='yes'), TypeError, 'keep_hq'),
    (dict(degradation='jpeg', severity=2, seed=-1), ValueError, 'seed'),
])
def test_bad_config_fails_when_built(cfg, error, match):
    with pytest.raises(error, match=match):
        TRANSFORMS.build(dict(type='DegradeImage', **cfg))


def test_dict_and_list_specs():
    t = TRANSFORMS.build(dict(type='DegradeImage', degradation=[
        dict(name='resolution', scale=(4, 8), kernel=['area', 'bicubic']),
        dict(name='jpeg', severity=[2, 3])]))
    assert [s['name'] for s in t.specs] == ['resolution', 'jpeg']
    assert build_spec('multi', scale=8) == dict(name='multi', family='multi', scale=8.0)


@pytest.mark.parametrize('img,error,match', [
    (np.zeros((16, 16, 4), np.uint8), ValueError, '4-band images are not supported'),
    (np.zeros((16, 16, 2), np.uint8), ValueError, 'HxWx3'),
    (np.zeros((16, 16, 3), np.float32), TypeError, 'must be uint8'),
    (np.zeros((16,), np.uint8), ValueError, 'HxWx3'),
])
def test_bad_images_rejected_clearly(img, error, match):
    res = dict(img=[img.copy(), img.copy()], sample_idx=0)
    with pytest.raises(error, match=match):
        DegradeImage('jpeg', severity=2, seed=0)(res)


def test_seed_needs_sample_idx_and_pair_needs_two_images():
    res = make_results()
    del res['sample_idx']
    with pytest.raises(KeyError, match='sample_idx'):
        DegradeImage('jpeg', severity=2, seed=0)(res)
    with pytest.raises(ValueError, match='list of two images'):
        DegradeImage('jpeg', severity=2)(dict(img=np.zeros((8, 8, 3), np.uint8)))


def test_docs_hold_the_severity_tables_and_the_figure():
    import os.path as osp

    from tests.conftest import REPO_ROOT
    doc = open(osp.join(REPO_ROOT, 'docs', 'degradations.md')).read()
    for name, table in SEVERITY_TABLES.items():
        for key, values in table.items():
            row = f'| `{name}` | {key} | ' + ' | '.join(str(v) for v in values) + ' |'
            assert row in doc, row
    fig = osp.join(REPO_ROOT, 'docs', 'figures', 'degradations.png')
    assert 'figures/degradations.png' in doc and osp.getsize(fig) < 1.5e6
