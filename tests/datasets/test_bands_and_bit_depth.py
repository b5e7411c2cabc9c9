"""16-bit and grey imagery: refused the same way by the dataset loader, infer and degrade."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from hicd_mm.apis import InferenceInputError, load_pair
from hicd_mm.datasets.transforms import MultiImgLoadImageFromFile


def write(path, img):
    os.makedirs(osp.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, img)
    return path


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    colour[0, 0] = 255
    return dict(
        colour=write(str(tmp_path / 'colour.png'), colour),
        colour2=write(str(tmp_path / 'colour2.png'), colour[::-1].copy()),
        grey=write(str(tmp_path / 'grey.png'), colour[:, :, 1]),
        grey2=write(str(tmp_path / 'grey2.png'), colour[::-1, :, 2].copy()),
        # 12-bit data in a 16-bit PNG (max 4095): a >>8 shift would leave at most 15
        deep=write(str(tmp_path / 'deep.png'), colour.astype(np.uint16) * 16),
        rgba=write(str(tmp_path / 'rgba.png'), np.dstack([colour, colour[:, :, :1]])),
        colour_img=colour)


def load(paths, **kwargs):
    return MultiImgLoadImageFromFile(**kwargs)(dict(img_path=list(paths)))['img']


def test_16_bit_image_is_refused_by_dataset_and_infer(images):
    with pytest.raises(ValueError, match=r"deep\.png' is a uint16 image \(largest value 4080\), "
                       'not 8-bit.*gdal_translate'):
        load([images['colour'], images['deep']])
    with pytest.raises(InferenceInputError, match=r'deep\.png.*uint16.*not 8-bit'):
        load_pair(images['colour'], images['deep'])


def test_grey_next_to_colour_is_refused_unless_allowed(images):
    for pair in ((images['colour'], images['grey']), (images['grey'], images['colour'])):
        with pytest.raises(ValueError, match=r'grey\.png.* is grey \(1 band\).*colour'):
            load(pair)
        with pytest.raises(InferenceInputError, match='--allow-grey'):
            load_pair(*pair)
    imgs = load([images['colour'], images['grey']], allow_grey_with_colour=True)
    assert imgs[1].shape == (32, 40, 3)
    np.testing.assert_array_equal(imgs[1], np.repeat(images['colour_img'][:, :, 1:2], 3, 2))
    img_a, img_b, _ = load_pair(images['colour'], images['grey'], allow_grey=True)
    np.testing.assert_array_equal(img_b, imgs[1])


def test_grey_pair_and_rgba_are_read_as_colour(images):
    imgs = load([images['grey'], images['grey2']])
    assert [img.shape for img in imgs] == [(32, 40, 3)] * 2
    img_a, img_b, _ = load_pair(images['grey'], images['grey2'])
    np.testing.assert_array_equal(img_a, imgs[0])
    rgba = load([images['colour'], images['rgba']])[1]
    np.testing.assert_array_equal(rgba, images['colour_img'])
    img_a, img_b, _ = load_pair(images['colour'], images['rgba'])
    np.testing.assert_array_equal(img_b, images['colour_img'])
