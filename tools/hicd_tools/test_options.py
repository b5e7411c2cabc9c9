"""Config edits behind the test-time options of ``tools/test.py`` and the robustness report.

Two ways to evaluate a checkpoint on a degraded test split, both acting on
``cfg.test_dataloader.dataset`` only:

* on the fly (``--degradation NAME``): image B is degraded by a ``DegradeImage`` transform
  with ``keep_hq=False`` and a fixed seed, inserted right before the packing step of the test
  pipeline, so the degraded split is reproducible; any degradation the config already had is
  replaced (:func:`set_test_degradation`);
* offline (``--degraded-dir DIR``): the split was written once by
  ``tools/degrade_dataset.py`` and the dataset is pointed at it, without any on-the-fly
  degradation (:func:`set_degraded_dir`).

Every function returns human-readable notes (what was changed) instead of logging them, so
the caller can write them to the runner's log once the runner exists.
"""
import copy
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from mmengine.config import Config
from mmengine.registry import DefaultScope

from hicd_mm.datasets.degradations import NAMES, SINGLE_NAMES, build_specs, family

# Group names accepted besides the registered degradation names: the kinds of a group are
# drawn per sample (from the seed), as in the ``single_blur``/``single_noise`` mixins.
DEGRADATION_GROUPS: Dict[str, Tuple[str, ...]] = {
    'blur': ('gaussian_blur', 'anisotropic_blur', 'motion_blur'),
    'noise': ('gaussian_noise', 'poisson_noise'),
    'single': SINGLE_NAMES,
}
DEGRADE_TRANSFORM = 'DegradeImage'
PREFIX_KEYS = ('img_path_from', 'img_path_to', 'seg_map_path')
MANIFEST = 'manifest.json'


def valid_degradation_names() -> List[str]:
    """The names accepted by :func:`resolve_degradation`: registered names, then groups.

    Returns:
        list[str]: ``NAMES`` of :mod:`hicd_mm.datasets.degradations` and the group names.
    """
    return list(NAMES) + list(DEGRADATION_GROUPS)


def resolve_degradation(name: str) -> Union[str, List[str]]:
    """Map a degradation name or group name to the ``degradation`` argument of DegradeImage.

    Args:
        name (str): A registered degradation name (``jpeg``, ``resolution``, ...) or a group
            of :data:`DEGRADATION_GROUPS` (``blur``, ``noise``, ``single``).

    Returns:
        str | list[str]: The name itself, or the list of names of the group.

    Raises:
        ValueError: ``name`` is neither, with the list of valid names.
    """
    if name in DEGRADATION_GROUPS:
        return list(DEGRADATION_GROUPS[name])
    if name in NAMES:
        return name
    groups = ', '.join(f'{g} ({"/".join(v) if g != "single" else "all nine single"})'
                       for g, v in DEGRADATION_GROUPS.items())
    raise ValueError(f'unknown degradation {name!r}; valid names: {", ".join(NAMES)}; '
                     f'groups: {groups}')


def degradation_family(name: str) -> str:
    """``'single'`` (takes a severity), ``'resolution'``/``'multi'`` (take a scale) or
    ``'identity'`` (takes nothing) for a name or group accepted by :func:`resolve_degradation`.

    Args:
        name (str): Degradation or group name.

    Returns:
        str: The family of the name.
    """
    resolved = resolve_degradation(name)
    return 'single' if isinstance(resolved, list) else family(resolved)


def make_test_degradation(name: str, severity: Optional[int] = None,
                          scale: Optional[float] = None, seed: int = 0) -> dict:
    """A validated, reproducible ``DegradeImage`` config degrading image B at test time.

    Args:
        name (str): Degradation or group name (see :func:`resolve_degradation`).
        severity (int, optional): Severity 1-5, required by single degradations and groups.
        scale (float, optional): Factor (``resolution``) or scale factor sf (``multi``).
        seed (int): Seed of the per-sample draws (sample ``i`` uses ``[seed, i]``).

    Returns:
        dict: ``dict(type='DegradeImage', degradation=..., [severity | scale], target='B',
        keep_hq=False, seed=seed)``.

    Raises:
        ValueError | TypeError: Unknown name, a missing or invalid severity/scale, an option
            the degradation does not take, or a negative seed.
    """
    degradation = resolve_degradation(name)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f'degradation seed must be a non-negative int, got {seed!r}')
    options = {k: v for k, v in (('severity', severity), ('scale', scale)) if v is not None}
    try:
        build_specs(degradation, **options)
    except (ValueError, TypeError) as err:
        if name in DEGRADATION_GROUPS:
            raise type(err)(f'degradation group {name!r}: {err}') from None
        raise
    return dict(type=f'hicd_mm.{DEGRADE_TRANSFORM}', degradation=degradation, **options, target='B',
                keep_hq=False, seed=seed)


def describe_degradation(degradation: Any) -> str:
    """A one-line description of a DegradeImage config, e.g. ``jpeg severity=3 seed=0``.

    Args:
        degradation (dict, optional): A ``DegradeImage`` config (``None``: clean), or a
            transform object (described by its ``repr``).

    Returns:
        str: The description.
    """
    if not degradation:
        return 'none (clean HQ images)'
    if not isinstance(degradation, dict):
        return repr(degradation)
    names = degradation.get('degradation')
    names = '/'.join(names) if isinstance(names, (list, tuple)) else str(names)
    options = ' '.join(f'{k}={degradation[k]}' for k in ('severity', 'scale', 'seed')
                       if degradation.get(k) is not None)
    return f'{names} {options}'.strip()


def _is_degrade_transform(transform: Any) -> bool:
    if not isinstance(transform, dict):
        return type(transform).__name__ == DEGRADE_TRANSFORM
    return str(transform.get('type', '')).split('.')[-1] == DEGRADE_TRANSFORM


def insert_before_packing(pipeline: Sequence, transform: dict) -> list:
    """A copy of ``pipeline`` with ``transform`` inserted right before its packing step.

    Args:
        pipeline (Sequence): Transform configs; the last one is the packing step (its type
            ends with ``PackSegInputs``).
        transform (dict): The transform config to insert.

    Returns:
        list: The new pipeline.
    """
    pipeline = list(pipeline)
    types = [str(t.get('type', '')) if isinstance(t, dict) else type(t).__name__
             for t in pipeline]
    if not types or not types[-1].endswith('PackSegInputs'):
        raise ValueError(f'cannot insert the degradation {transform.get("type")!r}: the last '
                         f'step of the test pipeline must be the packing step, got {types}')
    pipeline.insert(len(pipeline) - 1, transform)
    return pipeline


def _check_plain_dataset(dataset_cfg: dict, option: str) -> None:
    if 'dataset' in dataset_cfg or 'datasets' in dataset_cfg:
        raise ValueError(
            f'{option}: test_dataloader.dataset is a dataset wrapper '
            f'({dataset_cfg.get("type")!r}); expected a plain change-detection dataset '
            'config (with data_root, data_prefix and pipeline)')


def strip_degradations(dataset_cfg: dict) -> Tuple[dict, List[dict]]:
    """Remove every on-the-fly degradation from a dataset config.

    Every ``DegradeImage`` step of the dataset's ``pipeline`` is dropped.

    Args:
        dataset_cfg (dict): A dataset config (not modified).

    Returns:
        tuple[dict, list[dict]]: The cleaned copy and the removed transform configs.
    """
    cfg = copy.deepcopy(dict(dataset_cfg))
    removed = []
    pipeline = cfg.get('pipeline')
    if pipeline:
        removed += [t for t in pipeline if _is_degrade_transform(t)]
        cfg['pipeline'] = [t for t in pipeline if not _is_degrade_transform(t)]
    return cfg, removed


def with_test_degradation(dataset_cfg: dict, degradation: Optional[dict]
                          ) -> Tuple[dict, List[str]]:
    """A copy of ``dataset_cfg`` whose only degradation is ``degradation``.

    Args:
        dataset_cfg (dict): A plain dataset config (``test_dataloader.dataset``).
        degradation (dict, optional): A ``DegradeImage`` config; ``None`` evaluates the clean
            images (every degradation is removed).

    Returns:
        tuple[dict, list[str]]: The new dataset config and notes on what was replaced.
    """
    _check_plain_dataset(dataset_cfg, 'on-the-fly degradation')
    cfg, removed = strip_degradations(dataset_cfg)
    notes = [f'test dataset: removed the degradation of the config '
             f'({describe_degradation(t)})' for t in removed]
    if degradation is not None:
        cfg['pipeline'] = insert_before_packing(cfg['pipeline'], copy.deepcopy(degradation))
        notes.append(f'test dataset: image B degraded on the fly with '
                     f'{describe_degradation(degradation)} (keep_hq=False)')
    return cfg, notes


def set_test_degradation(cfg: Config, degradation: Optional[dict]) -> List[str]:
    """Make ``degradation`` the only degradation of ``cfg.test_dataloader.dataset``.

    Args:
        cfg (Config): The config, modified in place.
        degradation (dict, optional): A ``DegradeImage`` config, e.g. from
            :func:`make_test_degradation`; ``None`` removes every degradation.

    Returns:
        list[str]: Notes on what was changed (for the log).
    """
    dataset_cfg, notes = with_test_degradation(_test_dataset_cfg(cfg), degradation)
    _replace_test_dataset(cfg, dataset_cfg)
    return notes


def _test_dataset_cfg(cfg: Config) -> dict:
    loader = cfg.get('test_dataloader')
    if not loader or not loader.get('dataset'):
        raise KeyError('the config has no test_dataloader.dataset to evaluate on')
    return copy.deepcopy(loader['dataset'])


def _replace_test_dataset(cfg: Config, dataset_cfg: dict) -> None:
    # A copy: configs often write ``test_dataloader = val_dataloader`` (shared objects).
    loader = copy.deepcopy(cfg.test_dataloader)
    loader['dataset'] = dataset_cfg
    cfg.test_dataloader = loader


def _relative_layout(dataset_cfg: dict, default_scope: Optional[str]) -> Tuple[dict, str]:
    """The folders (relative to ``data_root``) and ann_file the dataset class would use.

    The dataset is built lazily (nothing is read) with an empty ``data_root``, so defaults
    of the dataset class (e.g. SV-CD's ``OUT`` label folder, ``CDFolderDataset``'s
    ``split``) are taken into account.
    """
    from hicd_mm.registry import DATASETS
    probe = dict(copy.deepcopy(dataset_cfg), data_root='', pipeline=[], lazy_init=True)
    with DefaultScope.overwrite_default_scope(default_scope):
        dataset = DATASETS.build(probe)
    prefix = {k: v for k, v in dataset.data_prefix.items() if k in PREFIX_KEYS and v}
    for key, value in prefix.items():
        if osp.isabs(value):
            raise ValueError(
                f'--degraded-dir: test_dataloader.dataset.data_prefix.{key} is absolute '
                f'({value!r}); expected folders relative to data_root to redirect')
    return prefix, dataset.ann_file or ''


def _parts(path: str) -> List[str]:
    return [p for p in osp.normpath(path).split(osp.sep) if p not in ('', '.')]


def _strip(path: str, count: int) -> str:
    return osp.join(*_parts(path)[count:]) if len(_parts(path)) > count else ''


def _common_parents(paths: Sequence[str]) -> List[str]:
    """Leading folders shared by all ``paths`` (never the last component of any of them)."""
    split = [_parts(p)[:-1] for p in paths]
    common = []
    for items in zip(*split):
        if len(set(items)) != 1:
            break
        common.append(items[0])
    return common


def _match_layout(root: str, prefix: dict) -> Tuple[int, dict]:
    """How many leading folders to strip from ``prefix`` so that all exist below ``root``."""
    common = _common_parents(list(prefix.values()))
    for count in range(len(common) + 1):
        stripped = {k: _strip(v, count) for k, v in prefix.items()}
        if all(v and osp.isdir(osp.join(root, v)) for v in stripped.values()):
            return count, stripped
    split = osp.join(*common) if common else ''
    expected = ', '.join(f'{osp.join(root, v)}' for v in prefix.values())
    as_split = ', '.join(f'{osp.join(root, _strip(v, len(common)))}' for v in prefix.values())
    hint = (f' or, as written by tools/degrade_dataset.py for the split {split!r}: '
            f'{as_split}') if common else ''
    raise FileNotFoundError(
        f'--degraded-dir {root!r} is not a dataset layout: expected the folders {expected}'
        f'{hint}')


def _redirect_ann_file(ann_file: str, root: str, count: int, old_root: str) -> Tuple[str, str]:
    """The ann_file for the degraded folder: its own copy if it has one, else the original."""
    for candidate in (ann_file, _strip(ann_file, count), osp.basename(ann_file)):
        if candidate and osp.isfile(osp.join(root, candidate)):
            return candidate, f'list file {osp.join(root, candidate)}'
    original = ann_file if osp.isabs(ann_file) else osp.join(old_root, ann_file)
    if osp.isfile(original):
        original = osp.abspath(original)
        return original, f'list file of the original dataset {original} (same stems)'
    raise FileNotFoundError(
        f'--degraded-dir {root!r}: the list file {ann_file!r} (test_dataloader.dataset.'
        f'ann_file) is neither in the degraded folder nor at {original!r}')


def _manifest_note(root: str, split_parts: List[str]) -> str:
    path = osp.join(root, *split_parts, MANIFEST)
    if not osp.isfile(path):
        return (f'--degraded-dir: no {MANIFEST} in {osp.dirname(path)!r}; the folder was not '
                'written by tools/degrade_dataset.py, evaluating it as it is')
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as err:
        return f'--degraded-dir: cannot read {path!r} ({err}); evaluating the folder as it is'
    return (f'--degraded-dir: {manifest.get("count", "?")} images degraded offline with '
            f'{manifest.get("degradation")} seed={manifest.get("seed")} '
            f'target={manifest.get("target")} ({path})')


def with_degraded_dir(dataset_cfg: dict, degraded_dir: str,
                      default_scope: Optional[str] = 'hicd_mm') -> Tuple[dict, List[str]]:
    """A copy of ``dataset_cfg`` reading its images from an offline degraded folder.

    ``degraded_dir`` is either the split folder ``tools/degrade_dataset.py SRC DST`` wrote
    (DST mirrors one split SRC, e.g. ``data/LEVIR-CD/test``: ``DST/A``, ``DST/B``,
    ``DST/label``, ``DST/manifest.json``) or a data root with the config's own layout
    (``DIR/test/A``, ...). ``data_root`` is set to it, the split folder is dropped from
    ``data_prefix`` when needed, and every on-the-fly degradation is removed.

    Args:
        dataset_cfg (dict): A plain dataset config (``test_dataloader.dataset``).
        degraded_dir (str): The degraded folder.
        default_scope (str, optional): Registry scope of the dataset type.

    Returns:
        tuple[dict, list[str]]: The new dataset config and notes for the log.

    Raises:
        FileNotFoundError: ``degraded_dir`` is not a folder or lacks the dataset's folders.
        ValueError: The dataset is a wrapper or uses absolute folders.
    """
    _check_plain_dataset(dataset_cfg, '--degraded-dir')
    if not osp.isdir(degraded_dir):
        raise FileNotFoundError(f'--degraded-dir {degraded_dir!r} is not a folder')
    root = osp.abspath(degraded_dir)
    prefix, ann_file = _relative_layout(dataset_cfg, default_scope)
    if not prefix:
        raise ValueError('--degraded-dir: the test dataset has no data_prefix folders')
    count, stripped = _match_layout(root, prefix)
    cfg, removed = strip_degradations(dataset_cfg)
    notes = [f'test dataset: removed the on-the-fly degradation of the config '
             f'({describe_degradation(t)}); the images of --degraded-dir are used as '
             'they are' for t in removed]
    old_root = cfg.get('data_root') or ''
    cfg['data_root'] = root
    if count:
        _set_prefix(cfg, prefix, stripped, count)
    if ann_file:
        cfg['ann_file'], ann_note = _redirect_ann_file(ann_file, root, count, old_root)
        notes.append(f'--degraded-dir: samples listed by the {ann_note}')
    notes.append(f'test dataset: data_root={root}, folders ' +
                 ', '.join(f'{k}={v}' for k, v in stripped.items()))
    notes.append(_manifest_note(root, _common_parents(list(prefix.values()))[count:]))
    _check_redirect(cfg, root, stripped, default_scope)
    return cfg, notes


def _set_prefix(cfg: dict, prefix: dict, stripped: dict, count: int) -> None:
    """Drop ``count`` leading split folders: from ``split`` if the config has one, else from
    ``data_prefix``."""
    split = cfg.get('split')
    if isinstance(split, str) and len(_parts(split)) >= count:
        cfg['split'] = _strip(split, count)
        return
    new_prefix = dict(cfg.get('data_prefix') or {})
    new_prefix.update(stripped)
    cfg['data_prefix'] = new_prefix


def _check_redirect(cfg: dict, root: str, stripped: dict, default_scope: Optional[str]) -> None:
    """Check that the dataset class really reads the folders below ``root``."""
    try:
        got, _ = _relative_layout(cfg, default_scope)
    except TypeError as err:
        raise ValueError(f'--degraded-dir: cannot redirect the folders of '
                         f'{cfg.get("type")!r} ({err})') from None
    if {k: osp.normpath(v) for k, v in got.items()} != \
            {k: osp.normpath(v) for k, v in stripped.items()}:
        raise ValueError(f'--degraded-dir: {cfg.get("type")!r} would read {got} below '
                         f'{root!r}, expected {stripped}')


def set_degraded_dir(cfg: Config, degraded_dir: str) -> List[str]:
    """Point ``cfg.test_dataloader.dataset`` at an offline degraded folder.

    Args:
        cfg (Config): The config, modified in place.
        degraded_dir (str): See :func:`with_degraded_dir`.

    Returns:
        list[str]: Notes on what was changed (for the log).
    """
    dataset_cfg, notes = with_degraded_dir(_test_dataset_cfg(cfg), degraded_dir,
                                           cfg.get('default_scope', 'hicd_mm'))
    _replace_test_dataset(cfg, dataset_cfg)
    return notes


def apply_test_options(cfg: Config, degradation: Optional[str] = None,
                       severity: Optional[int] = None, scale: Optional[float] = None,
                       degradation_seed: int = 0,
                       degraded_dir: Optional[str] = None) -> List[str]:
    """Apply the ``--degradation``/``--degraded-dir`` options of ``tools/test.py``.

    Args:
        cfg (Config): The config, modified in place.
        degradation (str, optional): Degrade image B on the fly with this name or group.
        severity (int, optional): Its severity (single degradations).
        scale (float, optional): Its scale (``resolution``, ``multi``).
        degradation_seed (int): Seed of the on-the-fly degradation.
        degraded_dir (str, optional): Evaluate on this offline degraded folder instead.

    Returns:
        list[str]: Notes on what was changed (for the log).

    Raises:
        ValueError: Both options given, or ``severity``/``scale`` without ``degradation``.
    """
    if degradation is not None and degraded_dir is not None:
        raise ValueError('--degradation and --degraded-dir are mutually exclusive: degrade '
                         'on the fly or read an offline degraded folder, not both')
    if degradation is None:
        given = [n for n, v in (('--severity', severity), ('--scale', scale)) if v is not None]
        if given:
            raise ValueError(f'{" and ".join(given)} need(s) --degradation NAME')
        return set_degraded_dir(cfg, degraded_dir) if degraded_dir is not None else []
    return set_test_degradation(
        cfg, make_test_degradation(degradation, severity, scale, degradation_seed))
