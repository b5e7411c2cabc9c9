"""tools/infer.py and hicd_mm.apis: sliding-window inference on whole pairs, PNG and GeoTIFF."""
import importlib.util
import logging
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmseg.structures import SegDataSample

from hicd_mm.apis import (GeoReference, InferenceInputError, check_output_path,
                          infer_change_mask, infer_change_probs, init_change_detector,
                          load_pair, read_image, tile_boxes, window_starts, write_mask)
from hicd_mm.apis.inference import pair_tensor
from hicd_mm.utils.checkpoint import CheckpointError, load_weights
from tests.conftest import REPO_ROOT

CFG = osp.join(REPO_ROOT, 'configs/fc_siam_diff/fc_siam_diff_cpu-1k_synthetic.py')
HICD_CFG = osp.join(REPO_ROOT, 'configs/hicd/fc_siam_diff/'
                    'hicd_fc_siam_diff_cpu-1k_synthetic_resolution_x4.py')
SIZE = (100, 140)  # H, W
# A UTM georeference at 0.5 m/px (GeoKeys: projected CRS, pixel is area, EPSG:32633).
GEO_KEYS = (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32633)
TIEPOINT = (0.0, 0.0, 0.0, 500000.0, 4000000.0, 0.0)


def load_tool():
    spec = importlib.util.spec_from_file_location('infer_tool',
                                                  osp.join(REPO_ROOT, 'tools', 'infer.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()


def random_image(seed, size=SIZE):
    """A smooth random colour image (blurred noise), so that the model sees structure."""
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (*size, 3), dtype=np.uint8), (0, 0), 3)


@pytest.fixture(scope='module')
def model():
    """The tiny CPU FC-Siam-diff with random weights, its class bias set so that about half of
    the pixels of the test pair are predicted as change (a constant mask would test little)."""
    torch.manual_seed(0)
    detector = init_change_detector(CFG)
    probs = infer_change_probs(detector, random_image(1), random_image(2), 512, 512, 1)
    logit_gap = torch.log(probs[1] / probs[0]).median()
    with torch.no_grad():
        detector.decode_head.conv_seg.bias[1] -= logit_gap
    return detector


@pytest.fixture(scope='module')
def ckpt(model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp('ckpt') / 'detector.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


@pytest.fixture(scope='module')
def distiller_ckpt(model, tmp_path_factory):
    """A HiCDDistiller-style checkpoint: ``student.`` weights and the losses' buffers."""
    state = {f'student.{k}': v for k, v in model.state_dict().items()}
    state['distill_losses.sem_self.scale'] = torch.ones(1)
    path = str(tmp_path_factory.mktemp('ckpt') / 'distiller.pth')
    torch.save({'state_dict': state, 'meta': {'iter': 3}}, path)
    return path


@pytest.fixture
def pngs(tmp_path):
    a, b = str(tmp_path / 'a.png'), str(tmp_path / 'b.png')
    cv2.imwrite(a, random_image(1))
    cv2.imwrite(b, random_image(2))
    return a, b


@pytest.fixture
def log_records():
    """Messages that hicd_mm logs through mmengine's current logger during the test."""
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def geo_tags(tiepoint=TIEPOINT, scale=(0.5, 0.5, 0.0), keys=GEO_KEYS,
             ascii_params='WGS 84 / UTM zone 33N|'):
    return [(33550, 'd', 3, scale, True), (33922, 'd', 6, tiepoint, True),
            (34735, 'H', len(keys), keys, True), (34737, 's', 0, ascii_params, True)]


def write_geotiff(path, bgr, tags=None, planar=False, extra_bands=0):
    """Write a BGR image as an R, G, B(, extra) GeoTIFF, band-interleaved or planar."""
    tifffile = pytest.importorskip('tifffile')
    data = bgr[:, :, ::-1]
    if extra_bands:
        data = np.concatenate([data, np.full((*bgr.shape[:2], extra_bands), 7, np.uint8)], 2)
    kwargs = dict(photometric='rgb' if data.shape[2] == 3 else 'minisblack')
    if planar:
        data, kwargs['planarconfig'] = np.moveaxis(data, -1, 0), 'separate'
    tifffile.imwrite(path, np.ascontiguousarray(data), extratags=tags or [], **kwargs)
    return path


def tiff_tags(path):
    tifffile = pytest.importorskip('tifffile')
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        return page.asarray(), {t.code: t.value for t in page.tags.values() if t.code > 30000}


# --------------------------------------------------------------------------- tiling


@pytest.mark.parametrize('height,width,window,stride', [
    (100, 140, 64, 48), (100, 140, 64, 64), (1024, 1024, 256, 192), (37, 1000, 256, 100),
    (256, 300, 256, 1), (10, 10, 256, 192)])
def test_windows_cover_every_pixel(height, width, window, stride):
    boxes = tile_boxes(height, width, window, stride)
    cover = np.zeros((height, width), np.int32)
    for top, left, h, w in boxes:
        assert (h, w) == (min(window, height), min(window, width))
        assert top >= 0 and left >= 0 and top + h <= height and left + w <= width
        cover[top:top + h, left:left + w] += 1
    assert cover.min() >= 1
    starts = window_starts(width, window, stride)
    assert starts[-1] == max(width - window, 0) and starts == sorted(set(starts))
    assert all(b - a <= stride for a, b in zip(starts, starts[1:]))


def test_window_count_at_1024():
    assert window_starts(1024, 256, 192) == [0, 192, 384, 576, 768]
    assert len(tile_boxes(1024, 1024, 256, 192)) == 25


@pytest.mark.parametrize('window,stride,batch,message', [
    (0, 1, 1, 'window must be'), (64, 65, 1, 'stride must be'), (64, 0, 1, 'stride must be'),
    (64, 32, 0, 'batch size')])
def test_bad_tiling_arguments(model, window, stride, batch, message):
    with pytest.raises(ValueError, match=message):
        infer_change_mask(model, random_image(1), random_image(2), window, stride, batch)


# --------------------------------------------------------------------------- inference


def whole_image_prediction(model, img_a, img_b):
    """``model.predict`` on the whole pair, as tools/test.py runs it (mode='whole')."""
    sample = SegDataSample(metainfo=dict(ori_shape=img_a.shape[:2]))
    data = model.data_preprocessor(dict(inputs=[pair_tensor(img_a, img_b)],
                                        data_samples=[sample]), False)
    with torch.no_grad():
        result = model.predict(data['inputs'], data['data_samples'])[0]
    return result.pred_sem_seg.data[0].numpy(), result.seg_logits.data.softmax(0)


@pytest.mark.parametrize('window', [140, 256])
def test_window_covering_the_image_equals_whole_image_predict(model, window):
    img_a, img_b = random_image(1), random_image(2)
    expected, expected_probs = whole_image_prediction(model, img_a, img_b)
    assert 0.2 < expected.mean() < 0.8  # the calibrated model predicts both classes
    mask = infer_change_mask(model, img_a, img_b, window=window, stride=64, batch_size=4)
    assert mask.dtype == np.uint8 and mask.shape == SIZE
    np.testing.assert_array_equal(mask, expected)
    probs = infer_change_probs(model, img_a, img_b, window=window, stride=64)
    torch.testing.assert_close(probs, expected_probs)


def test_batch_size_does_not_change_the_result(model):
    img_a, img_b = random_image(3), random_image(4)
    probs = {bs: infer_change_probs(model, img_a, img_b, 64, 40, bs) for bs in (1, 3, 4)}
    masks = {bs: infer_change_mask(model, img_a, img_b, 64, 40, bs) for bs in (1, 3, 4)}
    for bs in (3, 4):
        torch.testing.assert_close(probs[bs], probs[1], atol=1e-5, rtol=0)
        np.testing.assert_array_equal(masks[bs], masks[1])


def test_overlapping_windows_are_averaged(model):
    """Against a naive reference: each window predicted on its own, probabilities averaged."""
    img_a, img_b = random_image(5), random_image(6)
    total, count = torch.zeros(2, *SIZE), torch.zeros(SIZE)
    for top, left, h, w in tile_boxes(*SIZE, 64, 48):
        crop = (slice(top, top + h), slice(left, left + w))
        _, probs = whole_image_prediction(model, img_a[crop], img_b[crop])
        total[:, crop[0], crop[1]] += probs
        count[crop] += 1
    reference = total / count
    result = infer_change_probs(model, img_a, img_b, 64, 48, batch_size=4)
    torch.testing.assert_close(result, reference, atol=1e-5, rtol=0)
    assert count.max() == 4  # some pixels are covered by 2 x 2 windows


# --------------------------------------------------------------------------- checkpoints


def test_distiller_checkpoint_loads_the_student(model, distiller_ckpt, log_records):
    detector = init_change_detector(CFG, distiller_ckpt)
    for key, value in model.state_dict().items():
        assert torch.equal(detector.state_dict()[key], value), key
    assert any('distiller checkpoint' in m and 'student' in m for m in log_records)


def test_hicd_config_builds_its_student(model, distiller_ckpt, ckpt):
    for checkpoint in (distiller_ckpt, ckpt):
        detector = init_change_detector(HICD_CFG, checkpoint)
        assert type(detector).__name__ == 'SiamEncoderDecoder'
        img_a, img_b = random_image(1), random_image(2)
        np.testing.assert_array_equal(infer_change_mask(detector, img_a, img_b, 64, 48),
                                      infer_change_mask(model, img_a, img_b, 64, 48))


def test_mismatching_checkpoint_is_refused(model, tmp_path):
    foreign = str(tmp_path / 'foreign.pth')
    torch.save({'state_dict': {'backbone.w': torch.zeros(3)}, 'meta': {}}, foreign)
    distiller_of_other = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {'student.head.w': torch.zeros(3)}}, distiller_of_other)
    for path in (foreign, distiller_of_other):
        with pytest.raises(CheckpointError, match='does not match') as err:
            load_weights(model, path)
        assert path in str(err.value) and 'missing' in str(err.value)
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_weights(model, str(tmp_path / 'nope.pth'))
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='garbage.pth'):
        load_weights(model, str(garbage))


# --------------------------------------------------------------------------- image IO


def test_tiff_layouts_and_band_order(tmp_path, log_records):
    bgr = random_image(1)
    png = str(tmp_path / 'a.png')
    cv2.imwrite(png, bgr)
    np.testing.assert_array_equal(read_image(png)[0], bgr)
    contig = read_image(write_geotiff(str(tmp_path / 'c.tif'), bgr))
    planar = read_image(write_geotiff(str(tmp_path / 'p.tif'), bgr, planar=True))
    np.testing.assert_array_equal(contig[0], bgr)  # R, G, B bands -> BGR like the PNG
    np.testing.assert_array_equal(planar[0], bgr)
    assert contig[1] is None  # no georeference tags
    assert not log_records
    four = read_image(write_geotiff(str(tmp_path / 'n.tif'), bgr, extra_bands=1, planar=True))
    np.testing.assert_array_equal(four[0], bgr)
    assert any('4 bands' in m and 'first 3' in m for m in log_records)
    tifffile = pytest.importorskip('tifffile')
    grey = str(tmp_path / 'g.tif')
    tifffile.imwrite(grey, bgr[:, :, 0])
    np.testing.assert_array_equal(read_image(grey)[0], bgr[:, :, 0])  # grey stays grey


def test_tiff_that_cannot_be_used(tmp_path):
    tifffile = pytest.importorskip('tifffile')
    deep = str(tmp_path / 'deep.tif')
    tifffile.imwrite(deep, np.zeros((*SIZE, 3), np.uint16), photometric='rgb')
    with pytest.raises(InferenceInputError, match='deep.tif.*uint16.*not 8-bit'):
        read_image(deep)
    two = str(tmp_path / 'two.tif')
    tifffile.imwrite(two, np.zeros((2, *SIZE), np.uint8), photometric='minisblack',
                     planarconfig='separate')
    with pytest.raises(InferenceInputError, match='two.tif.*got 2'):
        read_image(two)


def test_missing_and_unreadable_files_are_named(tmp_path, pngs):
    with pytest.raises(FileNotFoundError, match='missing.png'):
        load_pair(pngs[0], str(tmp_path / 'missing.png'))
    for name in ('broken.png', 'broken.tif'):
        broken = tmp_path / name
        broken.write_bytes(b'\x00garbage' * 10)
        if name.endswith('.tif'):
            pytest.importorskip('tifffile')
        with pytest.raises(InferenceInputError, match=name):
            load_pair(str(broken), pngs[1])


def test_tiff_without_tifffile_asks_to_install_it(tmp_path, monkeypatch, pngs):
    monkeypatch.setitem(sys.modules, 'tifffile', None)  # makes `import tifffile` fail
    path = tmp_path / 'a.tif'
    path.write_bytes(b'II*\x00')
    with pytest.raises(ImportError, match='pip install tifffile'):
        read_image(str(path))
    with pytest.raises(ImportError, match='pip install tifffile'):
        write_mask(str(tmp_path / 'out.tif'), np.zeros(SIZE, np.uint8))
    read_image(pngs[0])  # PNGs do not need it


def test_pair_of_different_sizes(tmp_path, pngs, log_records):
    small = str(tmp_path / 'small.png')
    cv2.imwrite(small, random_image(2, (50, 70)))
    with pytest.raises(InferenceInputError) as err:
        load_pair(pngs[0], small)
    for part in (pngs[0], small, '140x100', '70x50', '--resample'):
        assert part in str(err.value)
    assert not log_records
    img_a, img_b, geo = load_pair(pngs[0], small, resample=True)
    assert img_a.shape == img_b.shape == (*SIZE, 3) and geo is None
    expected = cv2.resize(random_image(2, (50, 70)), SIZE[::-1], interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(img_b, expected)
    assert any('resampling' in m and small in m for m in log_records)


def test_georeference_must_match(tmp_path):
    bgr_a, bgr_b = random_image(1), random_image(2)
    a = write_geotiff(str(tmp_path / 'a.tif'), bgr_a, geo_tags())
    same = write_geotiff(str(tmp_path / 'same.tif'), bgr_b, geo_tags(), planar=True)
    assert load_pair(a, same)[2].crs()[0] == GEO_KEYS
    other_crs = write_geotiff(str(tmp_path / 'crs.tif'), bgr_b, geo_tags(
        keys=GEO_KEYS[:-1] + (32632, ), ascii_params='WGS 84 / UTM zone 32N|'))
    shifted = write_geotiff(str(tmp_path / 'shift.tif'), bgr_b, geo_tags(
        tiepoint=(0.0, 0.0, 0.0, 500010.0, 4000000.0, 0.0)))
    for b, what in ((other_crs, 'coordinate reference'), (shifted, 'same grid')):
        with pytest.raises(InferenceInputError, match=what) as err:
            load_pair(a, b)
        assert a in str(err.value) and b in str(err.value)
        with pytest.raises(InferenceInputError, match=what):
            load_pair(a, b, resample=True)  # never reprojected nor moved


def test_resample_geotiff_of_the_same_extent(tmp_path):
    a = write_geotiff(str(tmp_path / 'a.tif'), random_image(1), geo_tags())
    half = random_image(2, (50, 70))
    coarse = write_geotiff(str(tmp_path / 'coarse.tif'), half, geo_tags(scale=(1.0, 1.0, 0.0)))
    img_a, img_b, geo = load_pair(a, coarse, resample=True)
    assert img_b.shape == img_a.shape and geo.crs()[0] == GEO_KEYS
    smaller = write_geotiff(str(tmp_path / 'smaller.tif'), half, geo_tags())  # half the area
    with pytest.raises(InferenceInputError, match='same extent'):
        load_pair(a, smaller, resample=True)


def test_affine_from_scale_tiepoint_and_from_matrix():
    matrix = (0.5, 0.0, 0.0, 500000.0, 0.0, -0.5, 0.0, 4000000.0,
              0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    from_matrix = GeoReference({34264: (12, 16, matrix)}).affine()
    from_tiepoint = GeoReference({33550: (12, 3, (0.5, 0.5, 0.0)),
                                  33922: (12, 6, TIEPOINT)}).affine()
    np.testing.assert_array_equal(from_matrix, from_tiepoint)
    np.testing.assert_array_equal(from_matrix @ [140, 100, 1], [500070.0, 3999950.0])
    assert GeoReference({33922: (12, 12, TIEPOINT * 2)}).affine() is None  # control points


def test_output_path_checks(tmp_path, pngs):
    out = tmp_path / 'out.png'
    out.write_bytes(b'precious')
    with pytest.raises(FileExistsError, match='--overwrite'):
        check_output_path(str(out))
    check_output_path(str(out), overwrite=True)
    with pytest.raises(InferenceInputError, match='is the input'):
        check_output_path(pngs[1], overwrite=True, inputs=pngs)
    with pytest.raises(InferenceInputError, match=r'\.png, \.tif or \.tiff'):
        check_output_path(str(tmp_path / 'out.jpg'))
    assert out.read_bytes() == b'precious'


# --------------------------------------------------------------------------- the tool


def test_cli_png(model, ckpt, pngs, tmp_path, capsys):
    out = str(tmp_path / 'sub' / 'change.png')
    args = [CFG, ckpt, *pngs, out, '--window', '64', '--stride', '48', '--batch-size', '3']
    assert tool.main(args) == 0
    written = cv2.imread(out, cv2.IMREAD_UNCHANGED)
    expected = infer_change_mask(model, random_image(1), random_image(2), 64, 48, 3)
    assert written.dtype == np.uint8 and written.shape == SIZE
    assert set(np.unique(written)) == {0, 255}
    np.testing.assert_array_equal(written, expected * 255)
    # an existing OUT is kept unless --overwrite
    stat = os.stat(out)
    assert tool.main(args) == 2
    assert 'exists; pass --overwrite' in capsys.readouterr().err
    assert os.stat(out).st_mtime_ns == stat.st_mtime_ns
    assert tool.main(args + ['--overwrite']) == 0
    # bad input fails with a message, before any model is built
    assert tool.main(args[:4] + [str(tmp_path / 'x.png'), '--window', '64', '--stride', '65']) == 2
    assert not osp.exists(tmp_path / 'x.png')
    assert 'stride must be' in capsys.readouterr().err
    assert tool.main([CFG, str(tmp_path / 'no.pth'), *pngs, str(tmp_path / 'y.png')]) == 2
    assert 'checkpoint not found' in capsys.readouterr().err and not osp.exists(tmp_path / 'y.png')


@pytest.mark.slow  # launches a tool in a subprocess
def test_cli_geotiff_keeps_the_georeference(ckpt, distiller_ckpt, tmp_path):
    """One real command line: GeoTIFF in and out, distiller checkpoint, 4-band planar B."""
    a = write_geotiff(str(tmp_path / 'a.tif'), random_image(1), geo_tags())
    b = write_geotiff(str(tmp_path / 'b.tiff'), random_image(2), geo_tags(), planar=True,
                      extra_bands=1)
    out = str(tmp_path / 'change.tif')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, 'tools/infer.py', CFG, distiller_ckpt, a, b, out,
                           '--window', '64', '--stride', '48'], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'distiller checkpoint' in log and 'first 3' in log
    mask, tags = tiff_tags(out)
    _, tags_a = tiff_tags(a)
    assert mask.dtype == np.uint8 and mask.shape == SIZE and set(np.unique(mask)) == {0, 1}
    assert tags == tags_a and set(tags) == {33550, 33922, 34735, 34737}
    png = str(tmp_path / 'change.png')
    assert tool.main([CFG, ckpt, a, b, png, '--window', '64', '--stride', '48']) == 0
    np.testing.assert_array_equal(cv2.imread(png, cv2.IMREAD_UNCHANGED), mask * 255)


def test_infer_shows_progress_and_writes_an_overlay(ckpt, pngs, tmp_path, capsys):
    out, overlay = str(tmp_path / 'change.png'), str(tmp_path / 'vis' / 'overlay.png')
    assert tool.main([CFG, ckpt, *pngs, out, '--window', '64', '--stride', '48',
                      '--overlay', overlay, '--opacity', '1']) == 0
    err = capsys.readouterr().err
    assert 'ETA' in err and 'elapsed' in err  # mmengine's progress bar
    mask = cv2.imread(out, cv2.IMREAD_GRAYSCALE) > 0
    assert 0.05 < mask.mean() < 0.95
    vis, img_a = cv2.imread(overlay), cv2.imread(pngs[0])
    np.testing.assert_array_equal(vis[~mask], img_a[~mask])  # unchanged pixels: image A
    assert (vis[mask] == (0, 0, 255)).all()  # opacity 1: pure red where changed
    assert tool.main([CFG, ckpt, *pngs, str(tmp_path / 'c2.png'), '--overlay', overlay]) == 2
    assert 'exists' in capsys.readouterr().err


def test_infer_refuses_a_grey_b_next_to_a_colour_a_unless_allowed(ckpt, pngs, tmp_path, capsys):
    grey = str(tmp_path / 'grey.png')
    cv2.imwrite(grey, cv2.imread(pngs[1])[:, :, 1])
    out = str(tmp_path / 'change.png')
    assert tool.main([CFG, ckpt, pngs[0], grey, out, '--no-progress']) == 2
    assert 'is grey (1 band)' in capsys.readouterr().err and not osp.exists(out)
    assert tool.main([CFG, ckpt, pngs[0], grey, out, '--no-progress', '--allow-grey']) == 0


def test_nodata_of_a_and_b_becomes_nodata_of_the_geotiff_mask(tmp_path):
    tifffile = pytest.importorskip('tifffile')
    bgr_a, bgr_b = random_image(1), random_image(2)
    bgr_a[:10] = 0  # A: nodata 0 in its first 10 rows
    bgr_b[:, :7] = 9  # B: nodata 9 in its first 7 columns
    a = write_geotiff(str(tmp_path / 'a.tif'), bgr_a,
                      geo_tags() + [(42113, 's', 0, '0', True)])
    b = write_geotiff(str(tmp_path / 'b.tif'), bgr_b,
                      geo_tags() + [(42113, 's', 0, '9', True)])
    img_a, img_b, geo = load_pair(a, b)
    expected = np.zeros(SIZE, bool)
    expected[:10], expected[:, :7] = True, True
    np.testing.assert_array_equal(geo.nodata_mask, expected)
    out = str(tmp_path / 'mask.tif')
    write_mask(out, np.ones(SIZE, np.uint8), geo)
    with tifffile.TiffFile(out) as tif:
        mask = tif.pages[0].asarray()
        assert tif.pages[0].tags[42113].value.strip('\x00') == '255'
    np.testing.assert_array_equal(mask, np.where(expected, 255, 1))
