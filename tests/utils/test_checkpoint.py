"""hicd_mm.utils.checkpoint: the one strict loader, distiller students and teacher sanity."""
import logging
import os.path as osp

import pytest
import torch
from mmengine.logging import MMLogger

from hicd_mm.registry import MODELS
from hicd_mm.utils.checkpoint import (CheckpointError, load_teacher_weights, load_weights,
                                      read_checkpoint, recorded_metric, save_student_checkpoint,
                                      student_state_dict)
from tests.models.test_hicd_distiller import build, detector_cfg


@pytest.fixture
def log_lines():
    """Messages logged through mmengine's current logger during the test."""
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Collect(level=logging.DEBUG)
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def detector(seed=0):
    torch.manual_seed(seed)
    return MODELS.build(detector_cfg())


def distiller_checkpoint(tmp_path, seed=3, best=None):
    """A distiller checkpoint (student.* and distill_losses.* keys) and its student's weights."""
    student = detector(seed)
    state = {f'student.{k}': v for k, v in student.state_dict().items()}
    state['distill_losses.sem_self.0.adapter.weight'] = torch.ones(2, 2)
    ckpt = dict(state_dict=state, meta=dict(iter=20))
    if best is not None:
        ckpt['message_hub'] = dict(runtime_info=dict(best_score=best,
                                                     best_ckpt='w/best_F1_iter_20.pth'))
    path = str(tmp_path / 'distiller.pth')
    torch.save(ckpt, path)
    return path, student.state_dict()


def test_detector_gets_the_student_of_a_distiller_checkpoint(tmp_path, log_lines):
    path, student = distiller_checkpoint(tmp_path)
    model = detector(seed=9)
    load_weights(model, path, role='detector')
    for key, value in student.items():
        assert torch.equal(model.state_dict()[key], value), key
    assert any('its student' in line and path in line for line in log_lines)
    with pytest.raises(CheckpointError, match='HiCD distiller checkpoint'):
        load_weights(detector(), path, accept_distiller=False)


def test_mismatching_checkpoint_is_an_error_and_loads_nothing(tmp_path):
    model = detector(seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = detector(seed=2).state_dict()
    state.pop('decode_head.conv_seg.weight')
    state['other.weight'] = torch.zeros(1)
    path = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict=state), path)
    with pytest.raises(CheckpointError, match=r'other\.pth does not match.*1 missing.*'
                       r'1 unexpected'):
        load_weights(model, path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # not even partly loaded


def test_ddp_prefix_and_bare_state_dict(tmp_path):
    source = detector(seed=4).state_dict()
    path = str(tmp_path / 'ddp.pth')
    torch.save({f'module.{k}': v for k, v in source.items()}, path)
    assert set(read_checkpoint(path)['state_dict']) == set(source)
    model = detector(seed=5)
    load_weights(model, path)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in source.items())


def test_distiller_model_takes_detector_checkpoint_as_student(tmp_path):
    source = detector(seed=6).state_dict()
    path = str(tmp_path / 'det.pth')
    torch.save(dict(state_dict=source), path)
    distiller = build()
    load_weights(distiller, path)
    assert all(torch.equal(distiller.student.state_dict()[k], v) for k, v in source.items())


def test_one_way_to_the_student(tmp_path):
    path, student = distiller_checkpoint(tmp_path)
    out = str(tmp_path / 'student.pth')
    count = save_student_checkpoint(read_checkpoint(path)['state_dict'], out, dict(iter=20))
    assert count == len(student)
    saved = torch.load(out)
    assert saved['meta'] == dict(iter=20)
    assert all(torch.equal(saved['state_dict'][k], v) for k, v in student.items())
    with pytest.raises(CheckpointError, match='not a HiCDDistiller'):
        student_state_dict({'backbone.w': torch.zeros(1)})


def test_teacher_refuses_a_distiller_checkpoint_unless_allowed(tmp_path, log_lines):
    path, student = distiller_checkpoint(tmp_path, best=71.2)
    with pytest.raises(ValueError, match=r'teacher_ckpt .*distiller\.pth.*HiCD distiller '
                       r'checkpoint.*allow_distiller_teacher=True'):
        build(path)
    model = build(path, allow_distiller_teacher=True)
    assert all(torch.equal(model.teacher.state_dict()[k], v) for k, v in student.items())
    loaded = [line for line in log_lines if line.startswith('teacher: loaded')]
    assert loaded and path in loaded[0] and 'iter 20' in loaded[0]
    assert 'best F1 71.20' in loaded[0]


def test_teacher_log_names_the_checkpoint_and_its_metric(tmp_path, log_lines):
    teacher = detector(seed=7)
    path = str(tmp_path / 'best_F1_iter_40.pth')
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict(iter=40),
                    message_hub=dict(runtime_info=dict(best_score=64.5, best_ckpt=path))), path)
    load_teacher_weights(detector(), path)
    assert any(line.startswith('teacher: loaded') and path in line and 'best F1 64.50' in line
               for line in log_lines)
    assert recorded_metric(torch.load(path)) == 'best F1 64.50'


def test_missing_teacher_says_where_it_looked_and_how_to_train_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        load_teacher_weights(detector(), 'work_dirs/fc_siam_diff_cpu-1k_synthetic')
    message = str(err.value)
    assert osp.join(str(tmp_path), 'work_dirs/fc_siam_diff_cpu-1k_synthetic') in message
    assert 'tools/train.py configs/<detector>/fc_siam_diff_cpu-1k_synthetic.py' in message
    assert 'teacher' in message
