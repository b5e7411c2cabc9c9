"""HiCD students of real Open-CD detectors, trained and tested with Open-CD's own tools.

Runs only where Open-CD is importable and ``OPENCD_ROOT`` names its source checkout (the
environment built by ``tools/opencd/setup_opencd_env.sh``); skipped elsewhere, e.g. in CI. For
each covered detector: Open-CD's ``tools/train.py`` trains the plain config on HQ pairs (the
teacher), then the HiCD student from ``configs/opencd/`` (all five terms must be non-zero in
the log, the checkpoint holds no teacher weights), ``tools/export_student.py`` turns it into a
plain checkpoint, and Open-CD's ``tools/test.py`` evaluates it with the plain Open-CD config.
"""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO_ROOT, make_levir_split

try:
    import opencd  # noqa: F401
    OPENCD_WHY = None if os.environ.get('OPENCD_ROOT') else 'OPENCD_ROOT is not set'
except Exception as err:  # ImportError, or Open-CD's version asserts
    OPENCD_WHY = f'opencd cannot be imported ({type(err).__name__}: {err})'

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(OPENCD_WHY is not None, reason=str(OPENCD_WHY))]

TERMS = ('sem_self', 'sem_cross', 'sem_global', 'chg_self', 'chg_global')
# Open-CD config (below $OPENCD_ROOT/configs) -> options that keep the run offline and tiny
DETECTORS = {
    'bit/bit_r18_256x256_40k_levircd': [],
    'changeformer/changeformer_mit-b0_256x256_40k_levircd': [],
    'snunet/snunet_c16_256x256_40k_levircd': [],
    'tinycd/tinycd_256x256_40k_levircd': ['backbone.pretrained=False'],
    'changer/changer_ex_r18_512x512_40k_levircd': [],
}


def tiny_options(root: str, model_prefix: str, extra_model) -> list:
    opts = [f'{model_prefix}pretrained=None'] + [f'{model_prefix}{o}' for o in extra_model]
    for loader in ('train', 'val', 'test'):
        opts += [f'{loader}_dataloader.dataset.data_root={root}',
                 f'{loader}_dataloader.num_workers=0',
                 f'{loader}_dataloader.persistent_workers=False']
    # Open-CD tests whole 1024 x 1024 images: keep the 64 x 64 fixture at its size
    opts += ['val_dataloader.dataset.pipeline.1.scale=(64,64)',
             'test_dataloader.dataset.pipeline.1.scale=(64,64)',
             'train_dataloader.batch_size=2', 'train_cfg.max_iters=2',
             'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
             'default_hooks.checkpoint.save_best=None', 'default_hooks.logger.interval=1']
    return opts


def run(args, cwd=REPO_ROOT):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable] + args, cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def levir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('levir'))
    for split, n in (('train', 4), ('val', 1), ('test', 2)):
        make_levir_split(root, split, n, seed=len(split))
    return root


def readme_student(tmp_path) -> str:
    """The README's "Turning any detector config into a HiCD student" snippet, as written,
    saved where it says (next to the mixins: configs/<dir>/, here a copy of that layout)."""
    readme = open(osp.join(REPO_ROOT, 'README.md')).read()
    section = readme.split('### Turning any detector config into a HiCD student')[1]
    snippet = section.split('```python\n')[1].split('```')[0]
    os.symlink(osp.join(REPO_ROOT, 'configs', '_base_'), str(tmp_path / '_base_'))
    os.makedirs(str(tmp_path / 'opencd'))
    path = str(tmp_path / 'opencd' / 'my_student.py')
    with open(path, 'w') as f:
        f.write(snippet)
    return path


@pytest.mark.parametrize('config', list(DETECTORS))
def test_opencd_trains_and_tests_hicd_student(config, levir, tmp_path):
    opencd_root = os.environ['OPENCD_ROOT']
    det, name = config.split('/')
    plain = osp.join(opencd_root, 'configs', f'{config}.py')
    hicd = osp.join(REPO_ROOT, 'configs', 'opencd', det, f'hicd_{name}_resolution_x4.py')
    if det == 'bit':  # the README snippet is written for Open-CD's BIT
        hicd = readme_student(tmp_path)
    train, test = osp.join(opencd_root, 'tools', 'train.py'), osp.join(opencd_root, 'tools',
                                                                       'test.py')
    teacher_dir, student_dir = str(tmp_path / 'teacher'), str(tmp_path / 'student')
    run([train, plain, '--work-dir', teacher_dir, '--cfg-options',
         *tiny_options(levir, 'model.', DETECTORS[config])])
    log = run([train, hicd, '--work-dir', student_dir, '--cfg-options',
               *tiny_options(levir, 'model.student.', DETECTORS[config]),
               f'model.teacher_ckpt={osp.join(teacher_dir, "iter_2.pth")}'])
    for term in TERMS:
        values = [float(v) for v in re.findall(rf'distill\.loss_{term}: ([0-9.e+-]+)', log)]
        assert values and all(v > 0 for v in values), (term, values)
    ckpt = osp.join(student_dir, 'iter_2.pth')
    state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    assert state and all(k.startswith(('student.', 'distill_losses.')) for k in state)
    exported = str(tmp_path / 'student.pth')
    run(['tools/export_student.py', ckpt, exported])
    out = run([test, plain, exported, '--work-dir', str(tmp_path / 'test'), '--cfg-options',
               *tiny_options(levir, 'model.', DETECTORS[config])])
    assert 'mIoU' in out
