"""Tools on bad or unusual input: strict checkpoints, one data-root flag, data checks, exit
codes, registries, distributed launch scripts."""
import ast
import logging
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

from hicd_mm.registry import MODELS
from hicd_tools.run_setup import check_data, set_data_root
from tests.conftest import REPO_ROOT
from tests.conftest import TINY_CFG as CFG

HICD_CFG = osp.join(REPO_ROOT, 'configs/hicd/fc_siam_diff/'
                    'hicd_fc_siam_diff_cpu-1k_synthetic_multi_deg_x4.py')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def run(args, cwd=REPO_ROOT, env=None, timeout=600):
    return subprocess.run([sys.executable] + args, cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=timeout)


def quick_test_options():
    return ['test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False']


def f1_of(output):
    found = re.findall(r'F1[:= ]+([0-9.]+)', output)
    assert found, output[-2000:]
    return float(found[-1])


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """A detector checkpoint, the same weights as a distiller checkpoint, and a checkpoint of
    another architecture (different keys)."""
    folder = tmp_path_factory.mktemp('ckpts')
    torch.manual_seed(0)
    state = MODELS.build(Config.fromfile(CFG).model).state_dict()
    paths = dict(detector=str(folder / 'detector.pth'), distiller=str(folder / 'distiller.pth'),
                 other=str(folder / 'other.pth'))
    torch.save(dict(state_dict=state, meta=dict(iter=2)), paths['detector'])
    distilled = {f'student.{k}': v for k, v in state.items()}
    distilled['distill_losses.chg_self.0.scale'] = torch.ones(1)
    torch.save(dict(state_dict=distilled), paths['distiller'])
    other = {k.replace('decode_head', 'head'): v for k, v in state.items()}
    torch.save(dict(state_dict=other), paths['other'])
    return paths


# ------------------------------------------------------------------ test.py loads strictly
@pytest.mark.slow
def test_test_tool_is_strict_and_uses_the_student_of_a_distiller(levir_root, checkpoints,
                                                                 tmp_path):
    base = ['tools/test.py', CFG]
    opts = ['--data-root', levir_root, '--cfg-options', *quick_test_options()]
    plain = run(base + [checkpoints['detector'], '--work-dir', str(tmp_path / 'a')] + opts)
    assert plain.returncode == 0, plain.stderr[-3000:]
    student = run(base + [checkpoints['distiller'], '--work-dir', str(tmp_path / 'b'),
                          '--show-dir', 'vis'] + opts)
    assert student.returncode == 0, student.stderr[-3000:]
    output = student.stdout + student.stderr
    assert 'HiCD distiller checkpoint: its student' in output
    assert f1_of(output) == f1_of(plain.stdout + plain.stderr)
    shown = [d for d in os.listdir(tmp_path / 'b') if osp.isdir(tmp_path / 'b' / d / 'vis')]
    assert len(shown) == 1 and len(os.listdir(tmp_path / 'b' / shown[0] / 'vis')) == 2
    other = run(base + [checkpoints['other'], '--work-dir', str(tmp_path / 'c')] + opts)
    assert other.returncode == 2
    last = other.stderr.strip().splitlines()[-1]
    assert last.startswith('test.py: error: detector checkpoint') and 'does not match' in last
    assert 'change metrics' not in other.stdout + other.stderr  # nothing was evaluated


def test_test_tool_bad_input_exits_2_with_one_line(levir_root, checkpoints, tmp_path):
    missing = run(['tools/test.py', CFG, str(tmp_path / 'nope.pth')])
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1] == \
        f"test.py: error: checkpoint not found: '{tmp_path / 'nope.pth'}'"
    label = osp.join(levir_root, 'test', 'label', 'test_001.png')
    cv2.imwrite(label, np.full((64, 64), 7, np.uint8))
    bad = run(['tools/test.py', CFG, checkpoints['detector'], '--data-root', levir_root,
               '--check-data'])
    assert bad.returncode == 2
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith('test.py: error: change label') and 'test_001.png' in last
    assert 'Traceback' not in bad.stderr and len(bad.stdout.splitlines()) < 5  # no config dump


# ------------------------------------------------------------------ --data-root
def test_data_root_reaches_every_dataloader():
    for path in (CFG, HICD_CFG):
        cfg = Config.fromfile(path)
        notes = set_data_root(cfg, '/data/elsewhere')
        assert [cfg[k].dataset.data_root for k in LOADERS] == ['/data/elsewhere'] * 3, path
        assert notes and 'test_dataloader' in notes[0]
    cfg = Config.fromfile(CFG)
    cfg.train_dataloader.dataset = dict(type='ConcatDataset', datasets=[
        dict(cfg.train_dataloader.dataset), dict(cfg.train_dataloader.dataset)])
    set_data_root(cfg, 'X')
    assert [d['data_root'] for d in cfg.train_dataloader.dataset['datasets']] == ['X', 'X']


def test_cfg_options_data_root_acts_as_data_root():
    from argparse import Namespace

    from hicd_tools.run_setup import apply_data_options
    cfg = Config.fromfile(HICD_CFG)
    cfg.merge_from_dict({'data_root': '/d'})  # what mmengine does: the loaders keep theirs
    assert cfg.test_dataloader.dataset.data_root != '/d'
    args = Namespace(data_root=None, check_data=False, cfg_options={'data_root': '/d'})
    apply_data_options(cfg, args, (), 'test.py')
    assert [cfg[k].dataset.data_root for k in LOADERS] == ['/d'] * 3


def test_check_data_names_the_bad_file(levir_root):
    cfg = Config.fromfile(CFG)
    set_data_root(cfg, levir_root)
    check_data(cfg, LOADERS, quiet=True)  # a good dataset passes
    b_file = osp.join(levir_root, 'val', 'B', 'val_001.png')
    cv2.imwrite(b_file, np.zeros((30, 64, 3), np.uint8))
    with pytest.raises(ValueError, match=r"differ in size.*val_001\.png"):
        check_data(cfg, ('val_dataloader', ), quiet=True)
    check_data(cfg, ('train_dataloader', ), quiet=True)  # only the loaders asked for


# ------------------------------------------------------------------ registries
def test_no_registry_scope_warnings_when_building_a_runner_s_parts():
    """mmengine warns "Failed to search registry with scope hicd_mm" for undeclared kinds."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS, VISBACKENDS, VISUALIZERS
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        with DefaultScope.overwrite_default_scope('hicd_mm'):
            model = torch.nn.Linear(2, 2)
            wrapper = build_optim_wrapper(model, dict(
                type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)))
            PARAM_SCHEDULERS.build(dict(type='LinearLR', start_factor=0.5, by_epoch=False,
                                        begin=0, end=2), default_args=dict(
                                            optimizer=wrapper))
            VISBACKENDS.build(dict(type='LocalVisBackend', save_dir='unused'))
            VISUALIZERS.get('SegLocalVisualizer')
    finally:
        logger.removeHandler(handler)
    assert not [r for r in records if 'Failed to search registry' in r], records


# ------------------------------------------------------------------ export_student.py
def test_export_student_bad_input_is_one_line_and_status_2(checkpoints, tmp_path):
    for source, expected in ((checkpoints['detector'], 'not a HiCDDistiller checkpoint'),
                             (str(tmp_path / 'nonexist.pth'), 'checkpoint not found')):
        proc = run(['tools/export_student.py', source, str(tmp_path / 'out.pth')])
        assert proc.returncode == 2
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith('export_student.py: error:') and expected in last
        assert 'Traceback' not in proc.stderr and not osp.exists(tmp_path / 'out.pth')


# ------------------------------------------------------------------ robustness report
def test_robustness_report_assigns_no_private_runner_attributes():
    tree = ast.parse(open(osp.join(REPO_ROOT, 'tools/analysis/robustness_report.py')).read())
    private = [node.attr for node in ast.walk(tree)
               if isinstance(node, ast.Attribute) and node.attr.startswith('_')
               and isinstance(node.value, ast.Name) and node.value.id == 'runner']
    assert private == []


# ------------------------------------------------------------------ dist_train.sh / dist_test.sh
@pytest.mark.parametrize('script,args', [('dist_train.sh', ['CFG', '2']),
                                         ('dist_test.sh', ['CFG', 'CKPT', '2'])])
def test_dist_scripts_use_the_project_venv_and_torchrun_variables(tmp_path, script, args):
    tools = tmp_path / 'repo' / 'tools'
    tools.mkdir(parents=True)
    for name in (script, 'dist_run.sh'):  # the launch both scripts share
        shutil.copy(osp.join(REPO_ROOT, 'tools', name), tools / name)
    venv_bin = tmp_path / 'repo' / '.venv' / 'bin'
    venv_bin.mkdir(parents=True)
    record = tmp_path / 'args.txt'
    fake = venv_bin / 'python'
    fake.write_text(f'#!/bin/sh\necho "$@" > {record}\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHON'}
    env.update(NNODES='2', NODE_RANK='1', MASTER_ADDR='10.0.0.1', PORT='29999')
    proc = subprocess.run(['bash', str(tools / script), *args, '--extra'], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    called = record.read_text().split()
    assert called[:2] == ['-m', 'torch.distributed.run']
    for option in ('--nnodes=2', '--node_rank=1', '--master_addr=10.0.0.1',
                   '--master_port=29999', '--nproc_per_node=2', '--launcher', 'pytorch',
                   '--extra'):
        assert option in called, called
    usage = subprocess.run(['bash', str(tools / script)], capture_output=True, text=True)
    assert usage.returncode == 2 and 'usage' in usage.stderr


@pytest.mark.slow
def test_dist_train_and_test_with_two_cpu_processes_exit_cleanly(levir_root, tmp_path):
    from tests.conftest import tiny_options
    env = dict(os.environ, PYTHON=sys.executable, PORT='29561', OMP_NUM_THREADS='1')
    work = str(tmp_path / 'work')
    train = subprocess.run(['bash', 'tools/dist_train.sh', CFG, '2', '--work-dir', work,
                            '--cfg-options', *tiny_options(levir_root, 2)], cwd=REPO_ROOT,
                           env=env, capture_output=True, text=True, timeout=900)
    assert train.returncode == 0, train.stderr[-3000:]
    assert 'terminate called' not in train.stderr
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    test = subprocess.run(['bash', 'tools/dist_test.sh', CFG, osp.join(work, 'iter_2.pth'), '2',
                           '--work-dir', work, '--cfg-options', *tiny_options(levir_root, 2)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert test.returncode == 0, test.stderr[-3000:]
    assert 'F1' in test.stdout + test.stderr
