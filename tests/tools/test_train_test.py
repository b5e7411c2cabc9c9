"""End-to-end tests of tools/train.py and tools/test.py on a tiny random dataset (CPU)."""
import glob
import json
import os
import os.path as osp

import pytest
import torch

import hicd_mm  # noqa: F401  (safe globals for torch.load)
from tests.conftest import TINY_CFG as CFG
from tests.conftest import run_tool, tiny_options, train

# Every test here trains in a subprocess.
pytestmark = pytest.mark.slow


def load_state(path):
    return torch.load(path, map_location='cpu')


def test_train_resume_continues_exactly(levir_root, tmp_path):
    straight = str(tmp_path / 'straight')
    train(straight, levir_root, 6)
    resumed = str(tmp_path / 'resumed')
    train(resumed, levir_root, 4, sched_end=6)  # same LR schedule, interrupted at 4
    assert osp.isfile(osp.join(resumed, 'iter_4.pth'))
    proc = train(resumed, levir_root, 6, '--resume')
    assert 'resumed epoch: 0, iter: 4' in (proc.stdout + proc.stderr)
    ckpt_resumed = load_state(osp.join(resumed, 'iter_6.pth'))
    ckpt_straight = load_state(osp.join(straight, 'iter_6.pth'))
    assert ckpt_resumed['meta']['iter'] == 6
    for key, value in ckpt_straight['state_dict'].items():
        torch.testing.assert_close(ckpt_resumed['state_dict'][key], value, msg=key)
    # and training did change the weights
    first = load_state(osp.join(resumed, 'iter_2.pth'))['state_dict']
    assert any(not torch.equal(first[k], v) for k, v in ckpt_resumed['state_dict'].items())


def test_load_from_and_test_tool_writes_outputs(levir_root, tmp_path):
    work = str(tmp_path / 'w')
    train(work, levir_root, 2)
    out, show = str(tmp_path / 'masks'), str(tmp_path / 'show')
    run_tool(['tools/test.py', CFG, osp.join(work, 'iter_2.pth'), '--work-dir', work,
              '--out', out, '--show-dir', show, '--cfg-options',
              *tiny_options(levir_root, 2)])
    assert sorted(os.listdir(out)) == ['test_000.png', 'test_001.png']
    assert len(os.listdir(show)) == 2
    metrics = glob.glob(osp.join(work, '*', '*.json'))
    assert metrics, 'test metrics json not written'
    with open(sorted(metrics)[-1]) as f:
        scores = json.load(f)
    assert {'F1', 'IoU', 'Precision', 'Recall', 'Kappa', 'OA'} <= set(scores)


@pytest.mark.skipif(torch.cuda.is_available(), reason='tests the CPU (gloo) path')
def test_cpu_ddp_two_processes(levir_root, tmp_path):
    work = str(tmp_path / 'ddp')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = run_tool(['-m', 'torch.distributed.run', '--nproc_per_node=2',
                     '--master_port=29533', 'tools/train.py', CFG, '--launcher', 'pytorch',
                     '--work-dir', work, '--cfg-options', *tiny_options(levir_root, 2)],
                    env=env)
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log
    assert "'backend': 'gloo'" in log or 'backend: gloo' in log or 'gloo' in log
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
