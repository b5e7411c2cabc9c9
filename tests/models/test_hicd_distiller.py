"""HiCDDistiller: teacher loading/freezing, what trains, what is saved, bad input."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from hicd_mm.models.distillers import default_hicd_terms
from hicd_mm.registry import MODELS
from tests.conftest import REPO_ROOT

DETECTOR = osp.join(REPO_ROOT, 'configs/fc_siam_diff/fc_siam_diff_cpu-1k_synthetic.py')
TERMS = ('sem_self', 'sem_cross', 'sem_global', 'chg_self', 'chg_global')


def detector_cfg(**backbone):
    cfg = Config.fromfile(DETECTOR).model
    cfg.backbone.update(backbone)
    if 'base_channels' in backbone:
        c = backbone['base_channels']
        cfg.decode_head.in_channels = [c, 2 * c, 4 * c, 8 * c]
        cfg.decode_head.channels = c
    return cfg


@pytest.fixture
def teacher_ckpt(tmp_path):
    torch.manual_seed(1)
    teacher = MODELS.build(detector_cfg())
    path = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict(iter=7)), path)
    return path


def build(teacher_ckpt=None, student=None, **kwargs):
    kwargs.setdefault('allow_random_teacher', teacher_ckpt is None)
    return MODELS.build(dict(type='HiCDDistiller', student=student or detector_cfg(),
                             teacher_ckpt=teacher_ckpt, **kwargs))


def batch(n=2, size=32, with_hq=True, seed=0):
    """A dataloader batch: LQ pairs (6 channels) and, for training, their HQ copies."""
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (6, size, size), generator=g, dtype=torch.uint8)
              for _ in range(n)]
    inputs_hq = [torch.randint(0, 256, (6, size, size), generator=g, dtype=torch.uint8)
                 for _ in range(n)]
    samples = []
    for _ in range(n):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, 2, (1, size, size), generator=g))
        s.set_metainfo(dict(ori_shape=(size, size)))
        samples.append(s)
    data = dict(inputs=inputs, data_samples=samples)
    if with_hq:
        data['inputs_hq'] = inputs_hq
    return data


def test_teacher_loaded_strictly_frozen_and_eval(teacher_ckpt):
    model = build(teacher_ckpt)
    saved = torch.load(teacher_ckpt)['state_dict']
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert all(not p.requires_grad for p in model.teacher.parameters())
    model.train()
    assert model.student.training
    assert all(not m.training for m in model.teacher.modules())
    assert not any(k.startswith('teacher') for k in model.state_dict())
    assert not any(p is q for p in model.parameters() for q in model.teacher.parameters())


def test_missing_and_incompatible_teacher_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        build(str(tmp_path / 'nope.pth'))
    other = MODELS.build(detector_cfg(base_channels=8))
    bad = str(tmp_path / 'bad.pth')
    torch.save(dict(state_dict=other.state_dict()), bad)
    with pytest.raises(ValueError, match=r'bad\.pth.*shape-mismatched'):
        build(bad)
    partial = {k: v for k, v in MODELS.build(detector_cfg()).state_dict().items()
               if not k.startswith('decode_head')}
    torch.save(dict(state_dict=partial), bad)
    with pytest.raises(ValueError, match=r'missing key'):
        build(bad)
    with pytest.raises(ValueError, match='teacher_ckpt'):
        build(None, allow_random_teacher=False)


def test_one_step_trains_student_only(teacher_ckpt):
    torch.manual_seed(0)
    model = build(teacher_ckpt)
    model.train()
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    student_before = copy.deepcopy(model.student.state_dict())
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    log = model.train_step(batch(), optim)
    assert all(f'distill.loss_{t}' in log for t in TERMS)
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key
    changed = [k for k, v in model.student.state_dict().items()
               if v.dtype.is_floating_point and not torch.equal(v, student_before[k])]
    assert len(changed) > 10


@pytest.mark.parametrize('term', TERMS)
def test_each_term_alone_gives_student_gradient(teacher_ckpt, term):
    weights = {t: float(t == term) for t in TERMS}
    model = build(teacher_ckpt, distill_terms=default_hicd_terms(**weights))
    model.train()
    data = model.data_preprocessor(batch(), True)
    losses = model(**data, mode='loss')
    assert [k for k in losses if k.startswith('distill.')] == [f'distill.loss_{term}']
    total, _ = model.parse_losses(losses)  # what mmengine back-propagates
    task = sum(v for k, v in losses.items() if k.startswith('decode.') and 'loss' in k)
    torch.testing.assert_close(total, task + losses[f'distill.loss_{term}'])
    grads = torch.autograd.grad(losses[f'distill.loss_{term}'],
                                [p for p in model.student.parameters()], allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_all_terms_off_is_plain_training(teacher_ckpt):
    model = build(teacher_ckpt, distill_terms=default_hicd_terms(0, 0, 0, 0, 0))
    assert len(model.distill_losses) == 0
    losses = model(**model.data_preprocessor(batch(), True), mode='loss')
    assert not any(k.startswith('distill.') for k in losses)


def test_predict_uses_student_on_lq_pair_only(teacher_ckpt):
    model = build(teacher_ckpt).eval()
    data6 = model.data_preprocessor(batch(1, 32, with_hq=False), False)
    with torch.no_grad():
        out = model(**data6, mode='predict')
        ref = model.student(**data6, mode='predict')
    torch.testing.assert_close(out[0].seg_logits.data, ref[0].seg_logits.data)
    data_hq = model.data_preprocessor(batch(1, 32), False)
    assert data_hq['inputs_hq'].shape == data_hq['inputs'].shape
    with torch.no_grad():
        out_hq = model(**data_hq, mode='predict')
        lq = model.student(data_hq['inputs'], data_hq['data_samples'], mode='predict')
    torch.testing.assert_close(out_hq[0].seg_logits.data, lq[0].seg_logits.data)


def test_hq_pair_preprocessed_like_lq_pair(teacher_ckpt):
    """inputs_hq gets the student preprocessor's colour order, normalisation and padding."""
    model = build(teacher_ckpt)
    data = batch(2, 30)
    data['inputs_hq'] = [x.clone() for x in data['inputs']]
    out = model.data_preprocessor(data, True)
    assert out['inputs'].shape == (2, 6, 32, 32)  # padded to the size divisor 32
    torch.testing.assert_close(out['inputs_hq'], out['inputs'])
    student_only = model.student.data_preprocessor(batch(2, 30, with_hq=False), True)
    torch.testing.assert_close(out['inputs'], student_only['inputs'])
    # labels are padded once, not twice
    assert out['data_samples'][0].gt_sem_seg.data.shape == (1, 32, 32)


def test_training_without_hq_pair_is_a_clear_error(teacher_ckpt):
    model = build(teacher_ckpt)
    data = model.data_preprocessor(batch(2, 32, with_hq=False), True)
    with pytest.raises(ValueError, match=r'no inputs_hq.*DegradeImage.*keep_hq=True.*PackHQPair'):
        model(**data, mode='loss')


def test_unknown_recorder_path_lists_close_matches(teacher_ckpt):
    with pytest.raises(KeyError, match=r"decode_head\.conv_sge.*decode_head\.conv_seg"):
        build(teacher_ckpt, change_feature=dict(student='decode_head.conv_sge',
                                                teacher='decode_head.conv_seg'))


def test_teacher_and_student_architectures_may_differ(teacher_ckpt):
    model = build(teacher_ckpt, student=detector_cfg(base_channels=8), teacher=detector_cfg())
    model.train()
    losses = model(**model.data_preprocessor(batch(), True), mode='loss')
    assert all(torch.isfinite(v).all() for v in losses.values())


def test_batch_of_one(teacher_ckpt):
    model = build(teacher_ckpt)
    model.train()
    losses = model(**model.data_preprocessor(batch(1), True), mode='loss')
    assert all(torch.isfinite(v).all() for v in losses.values())


def test_init_student_from_teacher(teacher_ckpt):
    model = build(teacher_ckpt, init_student_from_teacher=True)
    model.init_weights()
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(model.student.state_dict()[key], value)


def test_config_mixin_matches_default_hicd_terms():
    """configs/_base_/hicd/hicd_default.py and default_hicd_terms() describe the same terms."""
    from mmengine.config import Config

    from tests.conftest import REPO_ROOT
    cfg = Config.fromfile(f'{REPO_ROOT}/configs/_base_/hicd/hicd_default.py')
    assert cfg.hicd_terms.to_dict() == default_hicd_terms()
    assert default_hicd_terms()['chg_self']['loss']['pool_size'] == 64
