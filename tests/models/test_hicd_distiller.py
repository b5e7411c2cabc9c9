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


# ----------------------------------------------------------------- preparation, new terms
def test_each_map_prepared_once_and_terms_equal_their_raw_losses(teacher_ckpt, monkeypatch):
    """The distiller prepares every recorded map pair once per option set and the values
    equal each loss module applied to the raw recorded maps."""
    from hicd_mm.models.distillers import hicd_distiller
    model = build(teacher_ckpt)
    model.train()
    calls = []
    original = hicd_distiller.prepare_pair
    monkeypatch.setattr(hicd_distiller, 'prepare_pair',
                        lambda *a: calls.append(a[-1]) or original(*a))
    losses = model(**model.data_preprocessor(batch(), True), mode='loss')
    # 4 stages x 2 dates shared by sem_self / sem_cross / sem_global, plus the change map.
    assert len(calls) == 4 * 2 + 1
    # The self and global terms of a prepared pair share one Gram product: one _PairGrams
    # node per pair in their graph (two per pair if each term computed its own).
    shared = sum(losses[f'distill.loss_{t}']
                 for t in ('sem_self', 'sem_global', 'chg_self', 'chg_global'))
    nodes, stack = {}, [shared.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and id(node) not in nodes:
            nodes[id(node)] = node
            stack.extend(next_node for next_node, _ in node.next_functions)
    assert sum(type(n).__name__ == '_PairGramsBackward' for n in nodes.values()) == len(calls)
    student = model._recorded_features('student', {'change'})
    teacher = model._recorded_features('teacher', {'change'})
    mods = model.distill_losses
    sem_s, sem_t = student['semantic'], teacher['semantic']
    expected = dict(
        sem_self=torch.stack([mods['sem_self'][s](sem_s[d][s], sem_t[d][s])
                              for s in range(4) for d in (0, 1)]).mean(),
        sem_cross=torch.stack([mods['sem_cross'][s](sem_s[0][s], sem_s[1][s], sem_t[0][s],
                                                    sem_t[1][s]) for s in range(4)]).mean(),
        sem_global=torch.stack([mods['sem_global'][s](sem_s[d][s], sem_t[d][s])
                                for s in range(4) for d in (0, 1)]).mean(),
        chg_self=mods['chg_self'][0](student['change'], teacher['change']),
        chg_global=mods['chg_global'][0](student['change'], teacher['change']))
    for term, value in expected.items():
        torch.testing.assert_close(losses[f'distill.loss_{term}'], value)


def change_aware_terms():
    terms = default_hicd_terms()
    terms['chg_self']['loss']['class_balance'] = 'rows'
    terms['chg_kd'] = dict(feature='change_logits',
                           loss=dict(type='ResponseKDLoss', tau=2.0, class_balance=True))
    return terms


def test_change_aware_and_response_kd_terms(teacher_ckpt):
    model = build(teacher_ckpt, distill_terms=change_aware_terms())
    assert model.term_features['chg_kd'] == 'change_logits'
    model.train()
    data = model.data_preprocessor(batch(), True)
    torch.manual_seed(0)
    losses = model(**data, mode='loss')
    for term in ('chg_self', 'chg_kd'):
        value = losses[f'distill.loss_{term}']
        assert torch.isfinite(value) and value > 0
        grads = torch.autograd.grad(value, list(model.student.parameters()), retain_graph=True,
                                    allow_unused=True)
        assert any(g is not None and g.abs().sum() > 0 for g in grads), term
    # The response term sees the classifier's logits: equal to the loss on the recorded maps.
    student = model._recorded_features('student', {'change_logits'})
    teacher = model._recorded_features('teacher', {'change_logits'})
    assert student['change_logits'].shape[1] == 2
    label = torch.stack([s.gt_sem_seg.data for s in data['data_samples']])
    torch.testing.assert_close(
        losses['distill.loss_chg_kd'],
        model.distill_losses['chg_kd'][0](student['change_logits'], teacher['change_logits'],
                                          label))
    # The class-balanced term depends on the label: a small change vs none.
    sparse, empty = copy.deepcopy(data), copy.deepcopy(data)
    for s_sparse, s_empty in zip(sparse['data_samples'], empty['data_samples']):
        s_empty.gt_sem_seg.data = torch.zeros_like(s_empty.gt_sem_seg.data)
        s_sparse.gt_sem_seg.data = torch.zeros_like(s_sparse.gt_sem_seg.data)
        s_sparse.gt_sem_seg.data[..., 4:10, 4:10] = 1
    values = [model(**d, mode='loss')['distill.loss_chg_self'] for d in (sparse, empty)]
    assert not torch.allclose(values[0], values[1], rtol=1e-3)


def test_bad_terms_are_errors_naming_the_key(teacher_ckpt):
    terms = default_hicd_terms()
    terms['chg_self']['loss']['loss_weight'] = -1.0
    with pytest.raises(ValueError, match=r'distill_terms\.chg_self\.loss\.loss_weight'):
        build(teacher_ckpt, distill_terms=terms)
    # A response-KD term needs the classifier's logits; a conv block's output is not.
    terms = change_aware_terms()
    with pytest.raises(ValueError, match=r'distill_terms\.chg_kd.*change_feature\.student'):
        build(teacher_ckpt, distill_terms=terms,
              change_feature=dict(student='decode_head.fuse.2.1',
                                  teacher='decode_head.fuse.2.1'))


def test_init_student_from_teacher_with_other_architecture_is_an_error(teacher_ckpt):
    with pytest.raises(ValueError, match=r'init_student_from_teacher.*shape-mismatched.*'
                                         r'backbone'):
        build(teacher_ckpt, student=detector_cfg(base_channels=8), teacher=detector_cfg(),
              init_student_from_teacher=True)


def test_set_distill_weight_scale(teacher_ckpt):
    model = build(teacher_ckpt)
    model.train()
    data = model.data_preprocessor(batch(), True)
    base = model(**data, mode='loss')
    model.set_distill_weight_scale(0.5)
    model.set_distill_weight_scale(0.25, term='chg_self')  # does not compound
    half = model(**data, mode='loss')
    for term in TERMS:
        factor = 0.25 if term == 'chg_self' else 0.5
        torch.testing.assert_close(half[f'distill.loss_{term}'],
                                   factor * base[f'distill.loss_{term}'])
    model.set_distill_weight_scale(1.0)
    assert all(m.loss_weight == 1.0 for ms in model.distill_losses.values() for m in ms)
    with pytest.raises(KeyError, match='sem_selff'):
        model.set_distill_weight_scale(1.0, term='sem_selff')
    for bad in (-0.1, float('nan')):
        with pytest.raises(ValueError, match='scale'):
            model.set_distill_weight_scale(bad)


def test_gradient_stats_match_separate_backward_passes(teacher_ckpt):
    model = build(teacher_ckpt)
    model.train()
    data = model.data_preprocessor(batch(), True)
    assert model.pop_gradient_stats() is None
    model.request_gradient_stats()
    losses = model(**data, mode='loss')
    stats = model.pop_gradient_stats()
    assert model.pop_gradient_stats() is None  # once
    params = list(model.student.parameters())

    def flat(value):
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten()
                          for g, p in zip(grads, params)])

    task = flat(sum(v for k, v in losses.items() if 'loss' in k and not k.startswith('dis')))
    distill = flat(sum(v for k, v in losses.items() if k.startswith('distill.')))
    assert stats['task_grad_norm'] == pytest.approx(task.norm().item(), rel=1e-5)
    assert stats['distill_grad_norm'] == pytest.approx(distill.norm().item(), rel=1e-5)
    assert stats['distill_task_ratio'] == pytest.approx(
        distill.norm().item() / task.norm().item(), rel=1e-5)
    assert stats['distill_task_cosine'] == pytest.approx(
        torch.nn.functional.cosine_similarity(task, distill, dim=0).item(), abs=1e-5)
    # The measurement leaves the training step itself intact.
    total, _ = model.parse_losses(losses)
    total.backward()


@pytest.mark.parametrize('mixin', ['hicd_change_aware', 'hicd_response_kd',
                                   'hicd_schedule_linear', 'hicd_grad_ratio'])
def test_hicd_mixins_build(mixin, teacher_ckpt):
    """Every mixin of configs/_base_/hicd builds its terms and hooks; the defaults are kept."""
    from hicd_mm.registry import HOOKS
    cfg = Config.fromfile(f'{REPO_ROOT}/configs/_base_/hicd/{mixin}.py')
    model = build(teacher_ckpt, distill_terms=cfg.hicd_terms.to_dict())
    assert set(TERMS) <= set(model.distill_losses)
    hooks = [HOOKS.build(h) for h in cfg.custom_hooks]
    assert type(hooks[0]).__name__ == 'StudentCheckpointHook'
    if mixin == 'hicd_change_aware':
        assert model.distill_losses['chg_self'][0].class_balance == 'rows'
        assert model.distill_losses['chg_global'][0].class_balance == 'rows'
    if mixin == 'hicd_response_kd':
        assert model.term_features['chg_kd'] == 'change_logits'
    if mixin == 'hicd_schedule_linear':
        assert type(hooks[1]).__name__ == 'DistillWeightScheduleHook'
        assert hooks[1].scale_at(50, 100) == pytest.approx(0.5)
    if mixin == 'hicd_grad_ratio':
        assert type(hooks[1]).__name__ == 'DistillGradientRatioHook'


def with_head_dropout(cfg, ratio=0.1):
    cfg = copy.deepcopy(cfg)
    cfg.decode_head.dropout_ratio = ratio
    return cfg


def change_losses(model, dropout_p):
    """The change-feature losses of one training batch, the head's dropout at ``dropout_p``."""
    model.student.decode_head.dropout.p = dropout_p
    torch.manual_seed(3)
    data = model.data_preprocessor(batch(), True)
    with torch.no_grad():
        losses = model(**data, mode='loss')
    return {k: v for k, v in losses.items() if k.startswith('distill.loss_chg')}


def test_change_feature_is_taken_before_the_heads_dropout(teacher_ckpt):
    """The teacher (eval mode) has no dropout noise in its change feature, the student neither."""
    student = with_head_dropout(detector_cfg())
    model = build(teacher_ckpt, student=student, teacher=detector_cfg())
    model.train()
    assert model._recorders['student_chg'].dropout_path == 'decode_head.dropout'
    assert model._recorders['teacher_chg'].dropout_path is None  # no dropout there
    noisy, clean = change_losses(model, 0.5), change_losses(model, 0.0)
    assert noisy.keys() == clean.keys() and len(clean) == 2
    for key in clean:
        torch.testing.assert_close(noisy[key], clean[key])
    # the classifier's input itself (after the dropout) gives other losses: the test can fail
    after = build(teacher_ckpt, student=student, teacher=detector_cfg(),
                  change_feature=dict(before_dropout=False))
    after.train()
    assert after._recorders['student_chg'].dropout_path is None
    after.load_state_dict(model.state_dict())
    noisy, clean = change_losses(after, 0.5), change_losses(after, 0.0)
    assert not torch.allclose(noisy['distill.loss_chg_global'], clean['distill.loss_chg_global'])


def student_with_head(teacher_ckpt, head_class):
    """A distiller (training mode) whose student has ``head_class`` with dropout 0.1."""
    name = f'_Test{head_class.__name__}'
    MODELS.register_module(name, module=head_class, force=True)
    student = with_head_dropout(detector_cfg())
    student.decode_head.type = name
    model = build(teacher_ckpt, student=student, teacher=detector_cfg())
    model.train()
    return model


def recorded_and_classifier_input(model):
    """The student's recorded change feature and its classifier's input, one training pass."""
    seen = []
    handle = model.student.decode_head.conv_seg.register_forward_pre_hook(
        lambda module, args: seen.append(args[0]))
    data = model.data_preprocessor(batch(), True)
    recorder = model._recorders['student_chg']
    try:
        with recorder, torch.no_grad():
            model.student.decode_head(model.student.extract_feat(data['inputs']))
    finally:
        handle.remove()
    return recorder.buffer, seen


def test_change_feature_is_the_classifier_input_when_not_the_dropouts_output(teacher_ckpt):
    """A head that transforms its dropout's output (or calls its dropout elsewhere too)."""
    from hicd_mm.models.decode_heads import FCSiamDiffHead

    class ScaledClassifierHead(FCSiamDiffHead):
        def cls_seg(self, feat):
            self.dropout(feat)  # a dropout call whose output the classifier never sees
            return self.conv_seg(2 * self.dropout(feat))

    recorded, classifier_input = recorded_and_classifier_input(
        student_with_head(teacher_ckpt, ScaledClassifierHead))
    assert len(recorded) == len(classifier_input) == 1
    assert recorded[0] is classifier_input[0]


def test_change_feature_pairs_each_classifier_call_with_its_dropout_call(teacher_ckpt):
    from hicd_mm.models.decode_heads import FCSiamDiffHead

    class TwiceClassifiedHead(FCSiamDiffHead):
        def cls_seg(self, feat):
            return super().cls_seg(feat) + super().cls_seg(3 * feat)

    recorded, classifier_input = recorded_and_classifier_input(
        student_with_head(teacher_ckpt, TwiceClassifiedHead))
    assert len(recorded) == 2
    torch.testing.assert_close(recorded[1], 3 * recorded[0])  # no dropout noise in either
    assert not torch.allclose(classifier_input[1], 3 * classifier_input[0])


def test_in_place_dropout_and_bad_change_feature_options(teacher_ckpt):
    model = build(teacher_ckpt, student=with_head_dropout(detector_cfg()),
                  teacher=detector_cfg())
    model.student.decode_head.dropout.inplace = True
    from hicd_mm.models.distillers.feature_points import ChangeFeatureRecorder
    recorder = ChangeFeatureRecorder(model.student, 'decode_head.conv_seg')
    assert recorder.dropout_path is None  # its input is overwritten: nothing to take
    recorder.remove()
    with pytest.raises(KeyError, match=r"change_feature has unknown key\(s\) \['befor_dropout'\]"):
        build(teacher_ckpt, change_feature=dict(befor_dropout=False))
    with pytest.raises(ValueError, match=r"change_feature.before_dropout must be True or False"):
        build(teacher_ckpt, change_feature=dict(before_dropout='no'))
