"""Every shipped config under configs/ (except the ``_base_`` parts) loads and builds.

For each leaf config: ``Config.fromfile`` resolves its ``_base_`` chain, the model builds from
the registry (a HiCD distiller with a random teacher: the checkpoints named in the configs are
trained by the user), and the train/val/test datasets build lazily (no data on disk needed),
which builds every pipeline transform, including a ``degradation=`` spliced in by the dataset.
Configs that name a package absent here (mmpretrain, Open-CD) are skipped with that reason.
The list is globbed, so generated configs (``configs/hicd/**``) are covered as they change.
"""
import copy
import glob
import importlib.util
import json
import os
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from hicd_mm.registry import DATASETS, MODELS
from tests.conftest import REPO_ROOT

# Package a config may need -> the import name that must be present to build it.
OPTIONAL_PACKAGES = {'mmpretrain': 'mmpretrain', 'opencd': 'opencd'}
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')

# Model dicts already built in this session (many configs share one model and differ only in
# dataset or schedule); building an identical dict again would test nothing new.
_built_models = {}


def shipped_configs():
    paths = glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
    rel = (osp.relpath(p, REPO_ROOT) for p in paths)
    return sorted(p for p in rel if '_base_' not in p.split(osp.sep))


def config_params():
    """One param per config; the full-size HiCD distillers are slow to build (the distiller
    dry-runs teacher and student to read feature shapes: 27 s for them all on 2 busy cores)."""
    params = []
    for path in shipped_configs():
        heavy = path.startswith(osp.join('configs', 'hicd') + osp.sep) and '_40k_' in path
        params.append(pytest.param(path, marks=pytest.mark.slow) if heavy else path)
    return params


def missing_requirement(path: str, text: str):
    """What a config needs and this environment lacks (a package, ``OPENCD_ROOT``), or None.

    Args:
        path (str): The config, relative to the repository.
        text (str): Its text, or its text plus its resolved dict.
    """
    for name, module in OPTIONAL_PACKAGES.items():
        if name in text and importlib.util.find_spec(module) is None:
            return f'{name}, which is not installed here'
    if 'OPENCD_ROOT' in text and not os.environ.get('OPENCD_ROOT'):
        return 'OPENCD_ROOT (an Open-CD checkout), which is not set'
    return None


def without_pretrained(cfg):
    """``cfg`` without pretrained-weight downloads (``pretrained=...``, ``init_cfg`` of type
    ``Pretrained``): this machine has no network and the test is about building."""
    if isinstance(cfg, dict):
        return type(cfg)({k: (None if k == 'pretrained' and isinstance(v, str) else
                              False if k == 'pretrained' and v is True else
                              None if k == 'init_cfg' and isinstance(v, dict) and
                              v.get('type') == 'Pretrained' else without_pretrained(v))
                          for k, v in cfg.items()})
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(without_pretrained(v) for v in cfg)
    return cfg


def buildable_model(model_cfg):
    """The model dict with a random teacher instead of the user-trained checkpoint and no
    pretrained-weight downloads."""
    model_cfg = without_pretrained(copy.deepcopy(model_cfg))
    if str(model_cfg.get('type', '')).endswith('HiCDDistiller'):
        teacher_ckpt = model_cfg.get('teacher_ckpt')
        assert teacher_ckpt is None or isinstance(teacher_ckpt, str), teacher_ckpt
        model_cfg.update(teacher_ckpt=None, allow_random_teacher=True)
    return model_cfg


def test_configs_are_found():
    paths = shipped_configs()
    assert len(paths) >= 20, paths
    for folder in ('bit', 'changeformer', 'fc_siam_diff', 'snunet', 'hicd'):
        assert any(p.startswith(osp.join('configs', folder) + osp.sep) for p in paths), folder


@pytest.mark.parametrize('path', config_params())
def test_config_builds(path):
    with open(osp.join(REPO_ROOT, path), encoding='utf-8') as f:
        missing = missing_requirement(path, f.read())
    if missing:
        pytest.skip(f'{path} needs {missing}')
    cfg = Config.fromfile(osp.join(REPO_ROOT, path))
    missing = missing_requirement(path, repr(cfg.to_dict()))
    if missing:
        pytest.skip(f'{path} needs {missing}')
    for key in ('model', 'train_cfg', 'optim_wrapper', *LOADERS):
        assert key in cfg, f'{path}: no {key!r}'

    # each config builds in its own default scope (``opencd`` for Open-CD's detectors)
    scope = DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'hicd_mm'))
    model_cfg = buildable_model(cfg.model)
    key = json.dumps(model_cfg.to_dict(), sort_keys=True, default=repr)
    if key not in _built_models:
        with scope:
            model = MODELS.build(model_cfg)
        _built_models[key] = type(model).__name__
    host_detector = path.startswith(osp.join('configs', 'opencd') + osp.sep)
    if not host_detector:
        assert _built_models[key] in ('SiamEncoderDecoder', 'HiCDDistiller'), _built_models[key]
    if host_detector and osp.basename(path).startswith('hicd_'):
        assert _built_models[key] == 'HiCDDistiller', (path, _built_models[key])
    if path.startswith(osp.join('configs', 'hicd') + osp.sep):
        name = osp.basename(path)
        expected = 'HiCDDistiller' if name.startswith('hicd_') else 'SiamEncoderDecoder'
        assert _built_models[key] == expected, (path, _built_models[key])

    for loader in LOADERS:
        dataset_cfg = copy.deepcopy(cfg[loader]['dataset'])
        dataset_cfg['lazy_init'] = True  # build the pipeline, do not list files on disk
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'hicd_mm')):
            dataset = DATASETS.build(dataset_cfg)
        assert len(dataset.pipeline.transforms) >= 2, (path, loader)
