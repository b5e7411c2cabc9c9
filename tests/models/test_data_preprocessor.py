import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from hicd_mm.models import DualInputSegDataPreProcessor

MEAN = [10., 20., 30.] * 2
STD = [2., 4., 5.] * 2


def batch(shapes, channels=6):
    inputs, samples = [], []
    for h, w in shapes:
        inputs.append(torch.randint(0, 256, (channels, h, w), dtype=torch.uint8))
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, 2, (1, h, w)))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def naive(img, mean, std):
    """Reference: per 3-channel image, reverse BGR->RGB then normalise."""
    out = []
    for k in range(img.shape[0] // 3):
        chunk = img[3 * k:3 * k + 3].flip(0).float()
        m = torch.tensor(mean[:3]).view(3, 1, 1)
        s = torch.tensor(std[:3]).view(3, 1, 1)
        out.append((chunk - m) / s)
    return torch.cat(out)


@pytest.mark.parametrize('channels', [6, 12])
def test_normalise_rgb_and_pad(channels):
    pre = DualInputSegDataPreProcessor(mean=MEAN, std=STD, bgr_to_rgb=True, size_divisor=32)
    data = batch([(30, 41), (20, 20)], channels)
    raw = [x.clone() for x in data['inputs']]
    out = pre(data, training=True)
    x = out['inputs']
    assert x.shape == (2, channels, 32, 64)
    torch.testing.assert_close(x[0, :, :30, :41], naive(raw[0], MEAN, STD))
    assert (x[0, :, 30:, :] == 0).all() and (x[0, :, :, 41:] == 0).all()
    s0 = out['data_samples'][0]
    assert s0.gt_sem_seg.data.shape == (1, 32, 64)
    assert (s0.gt_sem_seg.data[:, 30:, :] == 255).all()
    assert s0.padding_size == (0, 23, 0, 2)
    assert tuple(s0.img_shape) == (30, 41) and tuple(s0.pad_shape) == (32, 64)


def test_three_value_mean_is_per_image():
    pre3 = DualInputSegDataPreProcessor(mean=MEAN[:3], std=STD[:3], bgr_to_rgb=True)
    pre6 = DualInputSegDataPreProcessor(mean=MEAN, std=STD, bgr_to_rgb=True)
    data = batch([(8, 8)])
    a = pre3(dict(inputs=[data['inputs'][0].clone()]), False)['inputs']
    b = pre6(dict(inputs=[data['inputs'][0].clone()]), False)['inputs']
    torch.testing.assert_close(a, b)


def test_bad_channel_count_and_bad_mean():
    pre = DualInputSegDataPreProcessor(mean=MEAN, std=STD)
    with pytest.raises(ValueError, match='3 channels per image'):
        pre(dict(inputs=[torch.zeros(4, 8, 8)]), False)
    with pytest.raises(ValueError, match='mean and std'):
        DualInputSegDataPreProcessor(mean=[1, 2], std=[1, 2])
