import os.path as osp
import subprocess
import sys

import pytest
import torch

from hicd_mm.utils.checkpoint import student_state_dict
from hicd_mm.registry import MODELS
from tests.conftest import REPO_ROOT
from tests.models.test_hicd_distiller import build, detector_cfg


@pytest.mark.slow  # launches a tool in a subprocess
def test_export_gives_loadable_detector_checkpoint(tmp_path):
    distiller = build()
    ckpt = str(tmp_path / 'distiller.pth')
    torch.save(dict(state_dict=distiller.state_dict(), meta=dict(iter=3)), ckpt)
    out = str(tmp_path / 'student.pth')
    proc = subprocess.run([sys.executable, 'tools/export_student.py', ckpt, out],
                          cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    detector = MODELS.build(detector_cfg())
    state = torch.load(out)['state_dict']
    detector.load_state_dict(state, strict=True)
    for key, value in distiller.student.state_dict().items():
        assert torch.equal(detector.state_dict()[key], value)
    # refuses to overwrite
    proc = subprocess.run([sys.executable, 'tools/export_student.py', ckpt, out],
                          cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and 'exists' in proc.stderr


def test_not_a_distiller_checkpoint():
    with pytest.raises(ValueError, match='not a HiCDDistiller'):
        student_state_dict({'backbone.w': torch.zeros(1)})


def test_teacher_ckpt_may_be_a_work_dir(tmp_path):
    teacher = MODELS.build(detector_cfg())
    path = str(tmp_path / 'iter_5.pth')
    torch.save(dict(state_dict=teacher.state_dict()), path)
    with pytest.raises(FileNotFoundError, match='last_checkpoint'):
        build(str(tmp_path))
    with open(osp.join(tmp_path, 'last_checkpoint'), 'w') as f:
        f.write(path)
    model = build(str(tmp_path))
    assert torch.equal(model.teacher.state_dict()['backbone.stages.0.0.conv.weight'],
                       teacher.state_dict()['backbone.stages.0.0.conv.weight'])
