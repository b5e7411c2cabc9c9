"""The checked-in configs/hicd/** files: exactly what tools/misc/generate_hicd_configs.py
writes (one template source with the experiment runner), and every one of them builds."""
import glob
import importlib.util
import os.path as osp

import pytest
from mmengine.config import Config

from hicd_mm.registry import MODELS
from tests.conftest import REPO_ROOT

CONFIG_ROOT = osp.join(REPO_ROOT, 'configs')
HICD_CONFIGS = sorted(glob.glob(osp.join(CONFIG_ROOT, 'hicd', '*', '*.py')))


def generator():
    path = osp.join(REPO_ROOT, 'tools', 'misc', 'generate_hicd_configs.py')
    spec = importlib.util.spec_from_file_location('generate_hicd_configs', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_in_configs_match_the_generator():
    gen = generator()
    files = gen.generated_files(CONFIG_ROOT)
    assert sorted(files) == HICD_CONFIGS  # nothing extra checked in, nothing missing
    assert gen.stale_files(CONFIG_ROOT) == {}


def test_generator_notices_an_edited_file(tmp_path):
    import shutil
    root = str(tmp_path / 'configs')
    shutil.copytree(CONFIG_ROOT, root)
    edited = sorted(generator().generated_files(root))[0]
    with open(edited, 'a') as f:
        f.write('# edited by hand\n')
    assert list(generator().stale_files(root)) == [edited]


@pytest.mark.slow
@pytest.mark.parametrize('path', HICD_CONFIGS, ids=lambda p: osp.basename(p)[:-3])
def test_every_generated_config_builds(path):
    cfg = Config.fromfile(path)
    model = cfg.model
    if model.type == 'HiCDDistiller':
        assert model.teacher_ckpt  # the teacher's work dir, resolved when training
        model.update(teacher_ckpt=None, allow_random_teacher=True)
        assert cfg.train_dataloader.dataset.degradation.keep_hq
    else:
        assert not cfg.train_dataloader.dataset.degradation.keep_hq
    assert cfg.test_dataloader.dataset.degradation.seed == 0
    built = MODELS.build(model)
    assert sum(p.numel() for p in built.parameters()) > 0
