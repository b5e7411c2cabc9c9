import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from hicd_mm.registry import MODELS
from tests.conftest import REPO_ROOT

CFG = osp.join(REPO_ROOT, 'configs/fc_siam_diff/fc_siam_diff_cpu-1k_synthetic.py')


def build(cfg_path=CFG, **test_cfg):
    cfg = Config.fromfile(cfg_path)
    if test_cfg:
        cfg.model.test_cfg = test_cfg
    return MODELS.build(cfg.model)


def samples(n, h, w):
    out = []
    for _ in range(n):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, 2, (1, h, w)))
        s.set_metainfo(dict(ori_shape=(h, w)))
        out.append(s)
    return out


def test_forward_backward():
    torch.manual_seed(0)
    model = build()
    data = dict(inputs=[torch.randint(0, 255, (6, 64, 64), dtype=torch.uint8)
                        for _ in range(2)], data_samples=samples(2, 64, 64))
    data = model.data_preprocessor(data, True)
    losses = model(**data, mode='loss')
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_predict_non_square_removes_padding(mode):
    model = build(mode=mode, crop_size=(32, 32), stride=(24, 24)).eval()
    h, w = 45, 70
    data = dict(inputs=[torch.randint(0, 255, (6, h, w), dtype=torch.uint8)],
                data_samples=samples(1, h, w))
    data = model.data_preprocessor(data, False)
    assert data['inputs'].shape[-2:] == (64, 96)
    with torch.no_grad():
        out = model(**data, mode='predict')
    assert out[0].pred_sem_seg.data.shape == (1, h, w)
    assert out[0].seg_logits.data.shape == (2, h, w)


def test_pair_expected_errors():
    model = build().eval()
    with pytest.raises(ValueError, match=r'expects a bi-temporal pair.*\(2, 3, 32, 32\)'):
        model.extract_feat(torch.zeros(2, 3, 32, 32))
    # a plain detector knows nothing of HQ copies: 12 channels are just a wrong pair
    with pytest.raises(ValueError, match=r'expects a bi-temporal pair.*\(1, 12, 32, 32\)'):
        model.extract_feat(torch.zeros(1, 12, 32, 32))


def test_backbone_called_per_image():
    model = build().eval()
    calls = []
    handle = model.backbone.register_forward_hook(lambda m, i, o: calls.append(o))
    x = torch.randn(1, 6, 32, 32)
    with torch.no_grad():
        model.extract_feat(x)
    handle.remove()
    assert len(calls) == 2
    assert [tuple(f.shape) for f in calls[0]] == [(1, 16, 32, 32), (1, 32, 16, 16),
                                                  (1, 64, 8, 8), (1, 128, 4, 4)]
