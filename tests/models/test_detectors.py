"""Tests of the change detectors BIT, ChangeFormer and SNUNet-CD (issue #4, item 4).

Per detector: every config builds; forward/backward at 2x6x256x256; sliding-window predict
on a non-square image; a few optimiser steps on one batch lower the loss; the feature paths
a distiller hooks (output of ``backbone``, input of ``decode_head.conv_seg``) exist with the
documented shapes; bad inputs give clear errors; odd image sizes work through padding.
The CPU-sized configs are used for the heavy checks, the full-size base models for the
documented shapes at a small input.
"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from hicd_mm.registry import MODELS
from tests.conftest import REPO_ROOT

CPU_CONFIGS = {
    'bit': 'configs/bit/bit_r18-tiny_cpu-1k_synthetic.py',
    'changeformer': 'configs/changeformer/changeformer_mit-b0-lite_cpu-1k_synthetic.py',
    'snunet': 'configs/snunet/snunet_c8_cpu-1k_synthetic.py',
}
MMPRETRAIN_CONFIG = 'configs/bit/bit_mmpretrain-r18_cpu-1k_synthetic.py'


def mit_b0(h, w):
    return [(32, h // 4, w // 4), (64, h // 8, w // 8), (160, h // 16, w // 16),
            (256, h // 32, w // 32)]


# Documented shapes (C, H, W) for an (N, 6, h, w) input: the per-date semantic features
# (one tuple per backbone call) and the change feature (input of decode_head.conv_seg).
FEATURE_SHAPES = {
    'configs/_base_/models/bit_r18.py':
        lambda h, w: ([(256, h // 8, w // 8)], (32, h, w)),
    CPU_CONFIGS['bit']:
        lambda h, w: ([(64, h // 8, w // 8)], (16, h, w)),
    'configs/_base_/models/changeformer_mit-b0.py':
        lambda h, w: (mit_b0(h, w), (256, h, w)),
    CPU_CONFIGS['changeformer']:
        lambda h, w: (mit_b0(h, w), (64, h // 4, w // 4)),
    'configs/_base_/models/snunet_c16.py':
        lambda h, w: ([(16 * 2**i, h // 2**i, w // 2**i) for i in range(5)], (64, h, w)),
    CPU_CONFIGS['snunet']:
        lambda h, w: ([(8 * 2**i, h // 2**i, w // 2**i) for i in range(5)], (32, h, w)),
}


def load_cfg(path):
    return Config.fromfile(osp.join(REPO_ROOT, path))


def build(path, **test_cfg):
    cfg = load_cfg(path)
    if test_cfg:
        cfg.model.test_cfg = test_cfg
    return MODELS.build(cfg.model)


def samples(n, h, w, labels=None):
    out = []
    for i in range(n):
        s = SegDataSample()
        label = torch.randint(0, 2, (1, h, w)) if labels is None else labels[i]
        s.gt_sem_seg = PixelData(data=label)
        s.set_metainfo(dict(ori_shape=(h, w)))
        out.append(s)
    return out


def total_loss(losses):
    return sum(v for k, v in losses.items() if 'loss' in k)


def detector_configs():
    paths = []
    for det in ('bit', 'changeformer', 'snunet'):
        paths += sorted(glob.glob(osp.join(REPO_ROOT, 'configs', det, '*.py')))
    return [osp.relpath(p, REPO_ROOT) for p in paths if not p.endswith(MMPRETRAIN_CONFIG)]


@pytest.mark.parametrize('path', detector_configs())
def test_configs_build(path):
    cfg = load_cfg(path)
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'SiamEncoderDecoder'
    assert cfg.model.data_preprocessor.type == 'DualInputSegDataPreProcessor'
    assert 'SyncBN' not in cfg.pretty_text
    if 'bandon' in path:
        assert cfg.model.test_cfg == dict(mode='slide', crop_size=(512, 512), stride=(337, 337))
    if 'changeformer' in path and '40k' in path:
        assert cfg.optim_wrapper.optimizer.lr == 6e-5
        assert cfg.optim_wrapper.paramwise_cfg.custom_keys['head'] == dict(lr_mult=10.0)


def test_all_detectors_have_all_configs():
    names = {osp.basename(p) for p in detector_configs()}
    for stem in ('bit_r18', 'changeformer_mit-b0', 'snunet_c16'):
        for suffix in ('256x256_40k_levircd', '512x512_40k_bandon', '256x256_40k_svcd'):
            assert f'{stem}_{suffix}.py' in names
    assert {osp.basename(p) for p in CPU_CONFIGS.values()} <= names


@pytest.mark.slow  # 256x256 forward/backward of each detector: 10-27 s each on 2 busy cores
@pytest.mark.parametrize('det', sorted(CPU_CONFIGS))
def test_forward_backward_256(det):
    torch.manual_seed(0)
    model = build(CPU_CONFIGS[det]).train()
    data = dict(inputs=[torch.randint(0, 256, (6, 256, 256), dtype=torch.uint8)
                        for _ in range(2)], data_samples=samples(2, 256, 256))
    data = model.data_preprocessor(data, True)
    assert data['inputs'].shape == (2, 6, 256, 256)
    losses = model(**data, mode='loss')
    loss = total_loss(losses)
    assert torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f'parameters without gradient: {missing[:5]}'


@pytest.mark.slow  # sliding-window predict of each detector: 10-27 s each on 2 busy cores
@pytest.mark.parametrize('det', sorted(CPU_CONFIGS))
def test_slide_predict_non_square(det):
    model = build(CPU_CONFIGS[det], mode='slide', crop_size=(128, 128),
                  stride=(96, 96)).eval()
    h, w = 200, 300
    data = dict(inputs=[torch.randint(0, 256, (6, h, w), dtype=torch.uint8)],
                data_samples=samples(1, h, w))
    data = model.data_preprocessor(data, False)
    assert data['inputs'].shape[-2:] == (224, 320)
    with torch.no_grad():
        out = model(**data, mode='predict')
    assert out[0].seg_logits.data.shape == (2, h, w)
    assert out[0].pred_sem_seg.data.shape == (1, h, w)
    assert set(out[0].pred_sem_seg.data.unique().tolist()) <= {0, 1}


def change_batch(n=2, size=64, seed=0):
    """Pairs where t2 is t1 plus a bright rectangle; the label is the rectangle."""
    g = torch.Generator().manual_seed(seed)
    inputs, labels = [], []
    for _ in range(n):
        t1 = torch.randint(60, 140, (3, size, size), generator=g, dtype=torch.uint8)
        t2 = t1.clone()
        label = torch.zeros(1, size, size, dtype=torch.long)
        y, x = torch.randint(0, size // 2, (2, ), generator=g).tolist()
        t2[:, y:y + size // 3, x:x + size // 3] = 250
        label[:, y:y + size // 3, x:x + size // 3] = 1
        inputs.append(torch.cat([t1, t2]))
        labels.append(label)
    return inputs, labels


@pytest.mark.slow  # optimiser steps on each detector: 10-27 s each on 2 busy cores
@pytest.mark.parametrize('det', sorted(CPU_CONFIGS))
def test_overfit_one_batch(det):
    torch.manual_seed(0)
    model = build(CPU_CONFIGS[det]).train()
    inputs, labels = change_batch()
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples(2, 64, 64, labels)),
                                   True)
    optim = torch.optim.AdamW(model.parameters(), lr=2e-3)
    history = []
    for _ in range(15):
        loss = total_loss(model(**data, mode='loss'))
        optim.zero_grad()
        loss.backward()
        optim.step()
        history.append(loss.item())
    assert history[-1] < 0.7 * history[0], history


@pytest.mark.parametrize('path', sorted(FEATURE_SHAPES))
def test_feature_paths_and_shapes(path):
    torch.manual_seed(0)
    model = build(path).eval()
    n, h, w = 2, 64, 96
    stages, change = FEATURE_SHAPES[path](h, w)
    backbone_calls, change_feats = [], []
    h1 = model.get_submodule('backbone').register_forward_hook(
        lambda m, args, out: backbone_calls.append(out))
    h2 = model.get_submodule('decode_head.conv_seg').register_forward_pre_hook(
        lambda m, args: change_feats.append(args[0]))
    with torch.no_grad():
        logits = model._forward(torch.randn(n, 6, h, w))
    h1.remove()
    h2.remove()
    assert len(backbone_calls) == 2, 'the shared backbone must run once per date (t1, t2)'
    for feats in backbone_calls:
        assert isinstance(feats, (list, tuple))  # MiT returns a list
        assert [tuple(f.shape) for f in feats] == [(n, ) + s for s in stages]
    assert not torch.equal(backbone_calls[0][0], backbone_calls[1][0])
    assert len(change_feats) == 1
    assert tuple(change_feats[0].shape) == (n, ) + change
    assert logits.shape[:2] == (n, 2)


def test_backbone_calls_are_t1_then_t2():
    model = build(CPU_CONFIGS['bit']).eval()
    x = torch.randn(1, 6, 64, 64)
    calls = []
    hook = model.backbone.register_forward_hook(lambda m, args, out: calls.append(out))
    with torch.no_grad():
        model.extract_feat(x)
        ref_t1 = model.backbone(x[:, :3])
        ref_t2 = model.backbone(x[:, 3:])
    hook.remove()
    torch.testing.assert_close(calls[0][0], ref_t1[0])
    torch.testing.assert_close(calls[1][0], ref_t2[0])


@pytest.mark.parametrize('det', sorted(CPU_CONFIGS))
def test_single_image_input_is_rejected(det):
    model = build(CPU_CONFIGS[det]).eval()
    with pytest.raises(ValueError, match=r'expects a bi-temporal pair.*\(1, 3, 64, 64\)'):
        model(torch.zeros(1, 3, 64, 64), mode='tensor')
    with pytest.raises(ValueError, match='bi-temporal pair'):
        model(torch.zeros(1, 9, 64, 64), mode='tensor')


@pytest.mark.parametrize('det', sorted(CPU_CONFIGS))
def test_non_concat_fusion_is_rejected(det):
    cfg = load_cfg(CPU_CONFIGS[det])
    cfg.model.neck.policy = 'abs_diff'
    model = MODELS.build(cfg.model).eval()
    with pytest.raises(ValueError, match="concat"):
        model(torch.zeros(1, 6, 64, 64), mode='tensor')


def test_unknown_backbone_is_a_key_error():
    cfg = load_cfg(CPU_CONFIGS['bit'])
    cfg.model.backbone = dict(type='ResNetV9000', depth=18)
    with pytest.raises(KeyError, match='ResNetV9000'):
        MODELS.build(cfg.model)


@pytest.mark.parametrize('det', sorted(CPU_CONFIGS))
def test_odd_image_size_predict(det):
    model = build(CPU_CONFIGS[det]).eval()
    h, w = 65, 67
    data = dict(inputs=[torch.randint(0, 256, (6, h, w), dtype=torch.uint8)],
                data_samples=samples(1, h, w))
    data = model.data_preprocessor(data, False)
    assert data['inputs'].shape[-2:] == (96, 96)
    with torch.no_grad():
        out = model(**data, mode='predict')
    assert out[0].pred_sem_seg.data.shape == (1, h, w)
    assert out[0].seg_logits.data.shape == (2, h, w)


@pytest.mark.parametrize('det', sorted(CPU_CONFIGS))
def test_odd_image_size_train(det):
    model = build(CPU_CONFIGS[det]).train()
    h, w = 65, 67
    data = dict(inputs=[torch.randint(0, 256, (6, h, w), dtype=torch.uint8)],
                data_samples=samples(1, h, w))
    data = model.data_preprocessor(data, True)
    assert data['inputs'].shape[-2:] == (96, 96)
    # padded label pixels are the ignore index
    assert (data['data_samples'][0].gt_sem_seg.data[:, h:, :] == 255).all()
    assert (data['data_samples'][0].gt_sem_seg.data[:, :, w:] == 255).all()
    assert torch.isfinite(total_loss(model(**data, mode='loss')))


def _mmpretrain_importable():
    try:
        import mmpretrain.models  # noqa: F401
    except Exception as e:  # ImportError, or a broken torchvision next to torch+cpu
        return False, f'{type(e).__name__}: {e}'
    return True, ''


MMPRETRAIN_OK, MMPRETRAIN_WHY = _mmpretrain_importable()


@pytest.mark.skipif(not MMPRETRAIN_OK,
                    reason=f'mmpretrain cannot be imported here ({MMPRETRAIN_WHY})')
def test_mmpretrain_backbone_config():
    model = build(MMPRETRAIN_CONFIG).eval()
    assert type(model.backbone).__module__.startswith('mmpretrain')
    calls = []
    model.backbone.register_forward_hook(lambda m, args, out: calls.append(out))
    with torch.no_grad():
        out = model._forward(torch.randn(1, 6, 64, 64))
    assert out.shape == (1, 2, 64, 64)
    assert [tuple(f.shape) for f in calls[0]] == [(1, 64, 8, 8)]


@pytest.mark.skipif(MMPRETRAIN_OK, reason='mmpretrain is importable')
def test_mmpretrain_backbone_config_without_mmpretrain_is_a_key_error():
    with pytest.raises(KeyError, match='mmpretrain.ResNet'):
        build(MMPRETRAIN_CONFIG)
