"""HiCD inside a foreign host codebase: stand-ins that behave like Open-CD where it broke us
(tests/fixtures/foreign_host.py): a foreign default_scope, a packer that drops unknown keys, a
6-channel-only data preprocessor and dual-input detectors whose backbone runs once."""
import copy

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope

import tests.fixtures.foreign_host as host
from hicd_mm.datasets import LEVIRCDDataset

SCOPE = host.SCOPE
PREPROCESSOR = dict(type='DualInputSegDataPreProcessor', mean=[123.675, 116.28, 103.53] * 2,
                    std=[58.395, 57.12, 57.375] * 2, bgr_to_rgb=True, size_divisor=32)


def detector(backbone: dict, in_channels: int) -> dict:
    """A foreign dual-input detector config, written in the foreign scope."""
    return dict(type='DIEncoderDecoder', data_preprocessor=PREPROCESSOR, backbone=backbone,
                decode_head=dict(type='mmseg.FCNHead', in_channels=in_channels, channels=8,
                                 in_index=-1, num_convs=1, concat_input=False, num_classes=2,
                                 loss_decode=dict(type='mmseg.CrossEntropyLoss',
                                                  loss_weight=1.0)),
                train_cfg=dict(), test_cfg=dict(mode='whole'))


EXCHANGE = detector(dict(type='ExchangeEncoder', channels=(8, 16)), 32)
NESTED = detector(dict(type='NestedEncoder', base=8), 16)
FUSED = detector(dict(type='FusedEncoder', base=8), 16)


def build_distiller(student, **kwargs):
    """Build as mmengine's runner does: the root registry, the config's default scope."""
    with DefaultScope.overwrite_default_scope(SCOPE):
        return ROOT_MODELS.build(dict(type='hicd_mm.HiCDDistiller', student=student,
                                      allow_random_teacher=True, **kwargs))


def pipeline(train: bool, degrade: bool = True, pack_hq: bool = True):
    steps = [dict(type='hicd_mm.MultiImgLoadImageFromFile'),
             dict(type='hicd_mm.MultiImgLoadAnnotations')]
    if degrade:
        steps.append(dict(type='hicd_mm.DegradeImage', degradation='jpeg', severity=3,
                          keep_hq=train, seed=None if train else 0))
    packer = dict(type='MultiImgPackSegInputs')  # the host's packer (drops unknown keys)
    steps.append(dict(type='hicd_mm.PackHQPair', packer=packer) if pack_hq else packer)
    return steps


def load_batch(levir_root, **kwargs):
    with DefaultScope.overwrite_default_scope(SCOPE):
        dataset = LEVIRCDDataset(data_root=levir_root,
                                 data_prefix=dict(img_path_from='train/A',
                                                  img_path_to='train/B',
                                                  seg_map_path='train/label'),
                                 pipeline=pipeline(True, **kwargs))
        return pseudo_collate([dataset[0], dataset[1]]), dataset


def test_foreign_scope_builds_terms_and_hq_field_survives_host_packer(levir_root):
    data, dataset = load_batch(levir_root)
    assert isinstance(dataset.pipeline.transforms[-1].packer, host.DropUnknownKeysPacker)
    # the HQ pair is the untouched pair, packed by the host's own packer
    with DefaultScope.overwrite_default_scope(SCOPE):
        clean = LEVIRCDDataset(data_root=levir_root,
                               data_prefix=dict(img_path_from='train/A', img_path_to='train/B',
                                                seg_map_path='train/label'),
                               pipeline=pipeline(True, degrade=False, pack_hq=False))[0]
    assert torch.equal(data['inputs_hq'][0], clean['inputs'])
    assert not torch.equal(data['inputs'][0][3:], clean['inputs'][3:])  # B is degraded
    torch.manual_seed(0)
    model = build_distiller(EXCHANGE, feature_preset='changer')
    assert isinstance(model.data_preprocessor.preprocessor, host.SixChannelPreProcessor)
    assert len(model.distill_losses) == 5  # unprefixed hicd_mm loss types, foreign scope
    model.train()
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    log = model.train_step(data, OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01)))
    for term in ('sem_self', 'sem_cross', 'sem_global', 'chg_self', 'chg_global'):
        assert log[f'distill.loss_{term}'] > 0, term
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key


def test_channel_halves_split_gives_each_dates_stage_maps():
    model = build_distiller(EXCHANGE, feature_preset='changer')
    x = torch.randn(1, 6, 32, 32)
    with model._recorders['student_sem']:
        stages = model.student.extract_feat(x)
    t1, t2 = model._semantic('student')
    assert len(t1) == len(t2) == 2
    for i, stage in enumerate(stages):
        torch.testing.assert_close(torch.cat([t1[i], t2[i]], dim=1), stage)


def test_per_call_paths_inside_a_dual_input_backbone():
    model = build_distiller(NESTED, semantic_feature=dict(
        student=['backbone.conv0_0', 'backbone.conv1_0'],
        teacher=['backbone.conv0_0', 'backbone.conv1_0']))
    x = torch.randn(1, 6, 32, 32)
    model.student.eval()
    with model._recorders['student_sem']:
        model.student.extract_feat(x)
    t1, t2 = model._semantic('student')
    backbone = model.student.backbone
    torch.testing.assert_close(t1[0], backbone.conv0_0(x[:, :3]))
    torch.testing.assert_close(t2[1], backbone.conv1_0(backbone.conv0_0(x[:, 3:])))


def test_single_call_backbone_error_names_per_date_modules():
    with pytest.raises(ValueError, match=r"'backbone' ran 1 time\(s\).*dual-input.*"
                                         r"backbone\.stages\.0"):
        build_distiller(EXCHANGE)  # default preset: siamese (one backbone call per date)
    with pytest.raises(ValueError, match=r"ran twice per pass: \['backbone\.conv0_0'"):
        build_distiller(NESTED)
    with pytest.raises(ValueError, match='ran twice per pass: none'):
        build_distiller(FUSED)


def test_teacher_and_student_of_different_families(levir_root):
    """A dual-input student distilled from a teacher of another family (Gram path)."""
    data, _ = load_batch(levir_root)
    # both at 1/2 resolution: the student's second per-date block, the teacher's first stage
    model = build_distiller(
        NESTED, teacher=EXCHANGE, feature_preset=dict(student='siamese', teacher='changer'),
        semantic_feature=dict(student=['backbone.conv1_0'],
                              stages=dict(student=None, teacher=[0])))
    model.train()
    log = model.train_step(data, OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01)))
    assert all(torch.isfinite(v) for v in log.values())
    assert log['distill.loss_sem_cross'] > 0


def test_host_packer_without_pack_hq_pair_is_a_clear_error(levir_root):
    data, _ = load_batch(levir_root, pack_hq=False)
    assert 'inputs_hq' not in data  # the host packer dropped img_hq
    model = build_distiller(EXCHANGE, feature_preset='changer')
    model.train()
    with pytest.raises(ValueError, match=r'no inputs_hq.*DegradeImage.*right before the '
                                         r'packing step.*PackHQPair'):
        model.train_step(data, OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01)))


def test_pack_hq_pair_without_degradation_names_the_missing_step(levir_root):
    with pytest.raises(KeyError, match=r'DegradeImage.*keep_hq=True.*right before this '
                                       'packing step'):
        load_batch(levir_root, degrade=False)


def test_six_channel_preprocessor_gets_each_pair_separately(levir_root):
    data, _ = load_batch(levir_root)
    model = build_distiller(EXCHANGE, feature_preset='changer')
    out = model.data_preprocessor(data, True)
    assert out['inputs'].shape == out['inputs_hq'].shape == (2, 6, 64, 64)
    ref = model.student.data_preprocessor(dict(inputs=data['inputs_hq'],
                                               data_samples=copy.deepcopy(
                                                   data['data_samples'])), True)
    torch.testing.assert_close(out['inputs_hq'], ref['inputs'])


def test_absent_semantic_path_lists_the_closest_module_names():
    with pytest.raises(KeyError, match=r"'backbone\.conv1_O'.*backbone\.conv1_0"):
        build_distiller(NESTED, semantic_feature=dict(student=['backbone.conv1_O']))
