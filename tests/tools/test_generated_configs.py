"""The checked-in configs/hicd/** and configs/opencd/** files: exactly what
tools/misc/generate_hicd_configs.py writes (one template source with the experiment runner),
with the degradation step where it belongs. tests/test_configs.py builds every one of them."""
import glob
import importlib.util
import os
import os.path as osp

import pytest
from mmengine.config import Config

from tests.conftest import REPO_ROOT

CONFIG_ROOT = osp.join(REPO_ROOT, 'configs')
GENERATED = sorted(glob.glob(osp.join(CONFIG_ROOT, 'hicd', '*', '*.py')) +
                   glob.glob(osp.join(CONFIG_ROOT, 'opencd', '*', '*.py')))


def generator():
    path = osp.join(REPO_ROOT, 'tools', 'misc', 'generate_hicd_configs.py')
    spec = importlib.util.spec_from_file_location('generate_hicd_configs', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_in_configs_match_the_generator():
    gen = generator()
    files = gen.generated_files(CONFIG_ROOT)
    assert sorted(files) == GENERATED  # nothing extra checked in, nothing missing
    assert gen.stale_files(CONFIG_ROOT) == {}


def test_generator_notices_an_edited_file(tmp_path):
    import shutil
    root = str(tmp_path / 'configs')
    shutil.copytree(CONFIG_ROOT, root)
    edited = sorted(generator().generated_files(root))[0]
    with open(edited, 'a') as f:
        f.write('# edited by hand\n')
    assert list(generator().stale_files(root)) == [edited]


@pytest.mark.parametrize('path', GENERATED, ids=lambda p: osp.relpath(p, CONFIG_ROOT)[:-3])
def test_every_generated_config_degrades_b_before_the_packer(path):
    if '/opencd/' in path and not os.environ.get('OPENCD_ROOT'):
        pytest.skip('configs/opencd/ needs OPENCD_ROOT (an Open-CD checkout)')
    cfg = Config.fromfile(path)
    student = cfg.model.type.endswith('HiCDDistiller')
    if student:
        assert cfg.model.teacher_ckpt  # the teacher's work dir, resolved when training
    train = cfg.train_dataloader.dataset.pipeline
    assert train[-2].type == 'hicd_mm.DegradeImage' and bool(train[-2].keep_hq) == student
    assert (train[-1].type == 'hicd_mm.PackHQPair') == student
    for loader in ('val_dataloader', 'test_dataloader'):
        step = cfg[loader].dataset.pipeline[-2]
        assert step.type == 'hicd_mm.DegradeImage' and step.seed == 0 and not step.keep_hq
