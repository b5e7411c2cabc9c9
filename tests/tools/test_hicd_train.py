"""HiCD end to end with the tools: teacher -> distillation -> export -> test, plus CPU DDP and
an Open-CD-style config."""
import os
import os.path as osp

import pytest
import torch

from tests.conftest import REPO_ROOT, run_tool, tiny_options

HICD_CFG = 'configs/hicd/fc_siam_diff/hicd_fc_siam_diff_cpu-1k_synthetic_multi_deg_x4.py'
LQ_CFG = 'configs/hicd/fc_siam_diff/lq_fc_siam_diff_cpu-1k_synthetic_multi_deg_x4.py'

# Every test here trains in subprocesses (the teacher is the session's ``tiny_teacher``).
pytestmark = pytest.mark.slow


def hicd_options(root, ckpt, max_iters=2):
    return tiny_options(root, max_iters) + [f'model.teacher_ckpt={ckpt}']


def test_hicd_trains_exports_and_tests(tiny_teacher, tmp_path):
    root, ckpt = tiny_teacher
    work = str(tmp_path / 'hicd')
    proc = run_tool(['tools/train.py', HICD_CFG, '--work-dir', work, '--cfg-options',
                     *hicd_options(root, ckpt)])
    log = proc.stdout + proc.stderr
    for term in ('sem_self', 'sem_cross', 'sem_global', 'chg_self', 'chg_global'):
        assert f'distill.loss_{term}' in log
    state = torch.load(osp.join(work, 'iter_2.pth'), map_location='cpu')['state_dict']
    assert not any(k.startswith('teacher') for k in state)
    assert osp.isfile(osp.join(work, 'student_final.pth'))
    exported = str(tmp_path / 'student.pth')
    run_tool(['tools/export_student.py', osp.join(work, 'iter_2.pth'), exported])
    out = run_tool(['tools/test.py', LQ_CFG, exported, '--work-dir', str(tmp_path / 't'),
                    '--cfg-options', *tiny_options(root, 2)])
    assert 'F1' in out.stdout + out.stderr
    # the hook's student-only checkpoint is also a plain detector checkpoint
    run_tool(['tools/test.py', LQ_CFG, osp.join(work, 'student_final.pth'), '--work-dir',
              str(tmp_path / 't2'), '--cfg-options', *tiny_options(root, 2)])


def test_hicd_resume_continues_with_same_losses(tiny_teacher, tmp_path):
    root, ckpt = tiny_teacher
    straight, resumed = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
    opts = lambda n: tiny_options(root, n, sched_end=4) + [f'model.teacher_ckpt={ckpt}']  # noqa
    run_tool(['tools/train.py', HICD_CFG, '--work-dir', straight, '--cfg-options', *opts(4)])
    run_tool(['tools/train.py', HICD_CFG, '--work-dir', resumed, '--cfg-options', *opts(2)])
    run_tool(['tools/train.py', HICD_CFG, '--work-dir', resumed, '--resume', '--cfg-options',
              *opts(4)])
    a = torch.load(osp.join(straight, 'iter_4.pth'), map_location='cpu')['state_dict']
    b = torch.load(osp.join(resumed, 'iter_4.pth'), map_location='cpu')['state_dict']
    for key in a:
        torch.testing.assert_close(b[key], a[key], msg=key)


@pytest.mark.skipif(torch.cuda.is_available(), reason='tests the CPU (gloo) path')
def test_hicd_cpu_ddp(tiny_teacher, tmp_path):
    root, ckpt = tiny_teacher
    work = str(tmp_path / 'ddp')
    proc = run_tool(['-m', 'torch.distributed.run', '--nproc_per_node=2',
                     '--master_port=29541', 'tools/train.py', HICD_CFG, '--launcher', 'pytorch',
                     '--work-dir', work, '--cfg-options', *hicd_options(root, ckpt)],
                    env=dict(os.environ, OMP_NUM_THREADS='1'))
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log and 'distill.loss_sem_self' in log
    assert osp.isfile(osp.join(work, 'iter_2.pth'))


def test_opencd_style_config(tiny_teacher, tmp_path):
    """A foreign host's config (its own default scope, a packer that drops unknown keys, a
    6-channel-only preprocessor, a single-call dual-input backbone) becomes a HiCD student with
    the documented delta, trains, and its exported student tests with the plain config."""
    root, _ = tiny_teacher
    plain = osp.join(REPO_ROOT, 'tests/fixtures/foreign_host_plain.py')
    cfg = osp.join(REPO_ROOT, 'tests/fixtures/opencd_style_hicd.py')
    data = [f'{loader}_dataloader.dataset.data_root={root}' for loader in ('train', 'val', 'test')]
    # the stand-ins are imported by the configs' custom_imports (tests.fixtures.foreign_host)
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join([REPO_ROOT, os.environ.get('PYTHONPATH', '')]))
    teacher_work = str(tmp_path / 'foreign_teacher')
    run_tool(['tools/train.py', plain, '--work-dir', teacher_work, '--cfg-options', *data],
             env=env)
    work = str(tmp_path / 'opencd')
    proc = run_tool(['tools/train.py', cfg, '--work-dir', work, '--cfg-options', *data,
                     f'model.teacher_ckpt={osp.join(teacher_work, "iter_2.pth")}'], env=env)
    log = proc.stdout + proc.stderr
    for term in ('sem_self', 'sem_cross', 'sem_global', 'chg_self', 'chg_global'):
        assert f'distill.loss_{term}' in log, term
    assert osp.isfile(osp.join(work, 'student_final.pth'))
    out = run_tool(['tools/test.py', plain, osp.join(work, 'student_final.pth'), '--work-dir',
                    str(tmp_path / 'plain_test'), '--cfg-options', *data], env=env)
    assert 'F1' in out.stdout + out.stderr
