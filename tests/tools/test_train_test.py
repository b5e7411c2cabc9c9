"""End-to-end tests of tools/train.py and tools/test.py on a tiny random dataset (CPU)."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

import hicd_mm  # noqa: F401  (safe globals for torch.load)
from tests.conftest import REPO_ROOT

CFG = osp.join(REPO_ROOT, 'configs/fc_siam_diff/fc_siam_diff_cpu-1k_synthetic.py')


def tiny_options(data_root, max_iters, interval=2, sched_end=None):
    opts = [
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        'train_dataloader.batch_size=2',
        'train_dataloader.dataset.pipeline.2.crop_size=[32,32]',
        f'train_cfg.max_iters={max_iters}', f'train_cfg.val_interval={interval}',
        f'default_hooks.checkpoint.interval={interval}',
        'default_hooks.checkpoint.max_keep_ckpts=5', 'default_hooks.logger.interval=1',
        'param_scheduler.0.end=2', 'param_scheduler.1.begin=2',
        f'param_scheduler.1.end={sched_end or max(max_iters, 3)}',
    ]
    for loader in ('train', 'val', 'test'):
        opts += [f'{loader}_dataloader.num_workers=0',
                 f'{loader}_dataloader.persistent_workers=False']
    return opts


def run_tool(args, env=None):
    proc = subprocess.run([sys.executable] + args, cwd=REPO_ROOT, capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def train(work_dir, data_root, max_iters, *extra, sched_end=None):
    return run_tool(['tools/train.py', CFG, '--work-dir', work_dir, *extra, '--cfg-options',
                     *tiny_options(data_root, max_iters, sched_end=sched_end)])


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
