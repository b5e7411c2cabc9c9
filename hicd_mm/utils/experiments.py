"""The experiment matrix behind ``tools/run_experiments.py`` (and the runs of ``tools/demo.py``).

Settings x methods x seeds for one detector and dataset: this module builds the plan (which
model to train with which generated config, which checkpoint to evaluate on which test set),
runs the tools as subprocesses, and turns the result CSV into markdown tables and a bar plot.
The functions need mmengine (to read configs) and numpy; matplotlib is imported only by
:func:`plot_f1`.

Layout of a work dir (``--work-dir``, default ``work_dirs/experiments``)::

    results.csv, results.md, results_f1.png
    <detector>_<dataset>/configs/<method>_<setting>.py          generated configs
    <detector>_<dataset>/iters<N>/seed<S>/teacher/               the teacher (HQ pairs)
    <detector>_<dataset>/iters<N>/seed<S>/teacher/test_clean/    teacher_hq evaluation
    <detector>_<dataset>/iters<N>/seed<S>/<setting>/<method>/    a student (+ test/)

See docs/experiments.md.
"""
import csv
import glob
import json
import os
import os.path as osp
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from typing import (Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Set,
                    Tuple)

import numpy as np

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_ROOT = osp.join(REPO_ROOT, 'configs')

DETECTORS = ('fc_siam_diff', 'bit', 'changeformer', 'snunet')
# dataset key (suffix of the detector configs) -> folder layout, for messages
DATASETS = {
    'synthetic': 'LEVIR-CD layout from tools/make_synthetic_cd.py: {train,val,test}/{A,B,label}',
    'levircd': 'LEVIR-CD: {train,val,test}/{A,B,label}/*.png',
    'bandon': 'BANDON: {train,val,test}/imgs/<city>/<t>/*.jpg, labels, train.txt ...',
    'svcd': 'SV-CD: {train,val,test}/{A,B,OUT}/*.jpg',
}
# setting name -> degradation mixin (configs/_base_/degradations/<mixin>.py)
SETTING_MIXINS = {
    'resolution_x4': 'resolution_x4',
    'resolution_x8': 'resolution_x8',
    'blur': 'single_blur',
    'noise': 'single_noise',
    'jpeg': 'single_jpeg',
    'haze': 'single_haze',
    'multi_deg_x4': 'multi_deg_x4',
    'multi_deg_x8': 'multi_deg_x8',
}
SETTINGS = tuple(SETTING_MIXINS)
CLEAN = 'clean'  # the "setting" of teacher_hq rows: the undegraded test set
METHODS = ('teacher_hq', 'teacher_lq', 'lq', 'feat_mse', 'cwd', 'hicd', 'hicd_no_self',
           'hicd_no_cross', 'hicd_no_global')
METHOD_LABELS = {
    'teacher_hq': 'teacher on HQ',
    'teacher_lq': 'teacher on LQ',
    'lq': 'LQ baseline',
    'feat_mse': 'feature MSE (FitNets)',
    'cwd': 'CWD',
    'hicd': 'HiCD',
    'hicd_no_self': 'HiCD w/o self',
    'hicd_no_cross': 'HiCD w/o cross',
    'hicd_no_global': 'HiCD w/o global',
}
# distilled students: method -> distillation mixin (configs/_base_/hicd/<mixin>.py)
DISTILL_MIXINS = {'feat_mse': 'feature_mse', 'cwd': 'cwd', 'hicd': 'hicd_default'}
# HiCD ablations: method -> the terms of hicd_default.py whose loss_weight is set to 0
ABLATIONS = {
    'hicd_no_self': ('sem_self', 'chg_self'),
    'hicd_no_cross': ('sem_cross', ),
    'hicd_no_global': ('sem_global', 'chg_global'),
}
TEACHER_METHODS = ('teacher_hq', 'teacher_lq')
METRICS = ('Precision', 'Recall', 'F1', 'IoU', 'OA', 'Kappa')
KEY_COLUMNS = ('detector', 'dataset', 'setting', 'method', 'seed', 'iters')
CSV_COLUMNS = KEY_COLUMNS + METRICS + ('train_seconds', 'work_dir')
DONE_FILE = 'run_info.json'  # written into a training work dir when the training succeeded

LQ_TEMPLATE = '''# LQ baseline: {base} trained and tested on pairs whose B is degraded by {setting}.
# Written by tools/run_experiments.py (hicd_mm/utils/experiments.py); do not edit.
_base_ = ['{base_path}', '{degradation_path}']
train_dataloader = dict(dataset=dict(pipeline=[
    *_base_.train_dataloader.dataset.pipeline[:-1], _base_.lq_train_degradation,
    _base_.train_dataloader.dataset.pipeline[-1]]))
val_dataloader = dict(dataset=dict(pipeline=[
    *_base_.val_dataloader.dataset.pipeline[:-1], _base_.test_degradation,
    _base_.val_dataloader.dataset.pipeline[-1]]))
test_dataloader = val_dataloader
'''

DISTILL_TEMPLATE = '''# {method} student: {base} on pairs whose B is degraded by {setting},
# distilled from the frozen teacher ({base} trained on HQ pairs) with the terms of {distill}.py.
# Written by tools/run_experiments.py (hicd_mm/utils/experiments.py); do not edit.
# The teacher checkpoint is given at run time: --cfg-options model.teacher_ckpt=PATH
_base_ = ['{base_path}', '{degradation_path}', '{distill_path}']
model = dict(
    _delete_=True,
    type='HiCDDistiller',
    student={{{{_base_.model}}}},
    teacher_ckpt=None,
    distill_terms={{{{_base_.hicd_terms}}}})
train_dataloader = dict(dataset=dict(pipeline=[
    *_base_.train_dataloader.dataset.pipeline[:-1], _base_.train_degradation,
    dict(type='hicd_mm.PackHQPair', packer=_base_.train_dataloader.dataset.pipeline[-1])]))
val_dataloader = dict(dataset=dict(pipeline=[
    *_base_.val_dataloader.dataset.pipeline[:-1], _base_.test_degradation,
    _base_.val_dataloader.dataset.pipeline[-1]]))
test_dataloader = val_dataloader
'''

ABLATION_TEMPLATE = '''# {method}: the HiCD student of {setting} with loss_weight=0 for {terms}
# (a term with weight 0 is not built by HiCDDistiller).
# Written by tools/run_experiments.py (hicd_mm/utils/experiments.py); do not edit.
_base_ = ['./{hicd_config}']
model = dict(distill_terms=dict({zeroed}))
'''


class RunKey(NamedTuple):
    """What identifies one result row (the CSV's key columns)."""
    detector: str
    dataset: str
    setting: str
    method: str
    seed: int
    iters: int


# ---------------------------------------------------------------------------- names and paths
def canonical_setting(name: str) -> str:
    """The setting name for a ``--settings`` entry (a setting or its mixin's file stem).

    Args:
        name (str): e.g. ``'blur'``, ``'single_blur'`` or ``'multi_deg_x4'``.

    Returns:
        str: The key of :data:`SETTING_MIXINS` (``'blur'`` for ``'single_blur'``).
    """
    if name in SETTING_MIXINS:
        return name
    for setting, mixin in SETTING_MIXINS.items():
        if name == mixin:
            return setting
    raise ValueError(f'unknown setting {name!r}; choose from {list(SETTING_MIXINS)}')


def degradation_mixin(setting: str, config_root: str = CONFIG_ROOT) -> str:
    """Path of the degradation mixin of a setting (checked to exist)."""
    path = osp.join(config_root, '_base_', 'degradations', f'{SETTING_MIXINS[setting]}.py')
    if not osp.isfile(path):
        raise FileNotFoundError(f'degradation mixin of setting {setting!r} not found: {path}')
    return path


def find_base_config(detector: str, dataset: str, config_root: str = CONFIG_ROOT) -> str:
    """The detector's config for a dataset: ``configs/<detector>/*_<dataset>.py``.

    Configs that need optional packages (``mmpretrain``) are left out.

    Args:
        detector (str): One of :data:`DETECTORS`.
        dataset (str): One of :data:`DATASETS`.
        config_root (str): The ``configs`` folder.

    Returns:
        str: Absolute config path.
    """
    if detector not in DETECTORS:
        raise ValueError(f'unknown detector {detector!r}; choose from {DETECTORS}')
    if dataset not in DATASETS:
        raise ValueError(f'unknown dataset {dataset!r}; choose from {list(DATASETS)}')
    found = sorted(p for p in glob.glob(osp.join(config_root, detector, f'*_{dataset}.py'))
                   if 'mmpretrain' not in osp.basename(p))
    if len(found) != 1:
        raise FileNotFoundError(f'expected one config {config_root}/{detector}/*_{dataset}.py, '
                                f'found {found or "none"}')
    return osp.abspath(found[0])


def relative_to(path: str, start: str) -> str:
    """``path`` relative to the folder ``start`` (``/`` separators, for config files)."""
    return osp.relpath(path, start).replace(os.sep, '/')


# ---------------------------------------------------------------------------- dataset folders
def config_data_root(cfg) -> str:
    """The ``data_root`` of a config's test dataset (relative paths: to the repo root)."""
    root = cfg.test_dataloader.dataset.get('data_root', '')
    return root if osp.isabs(root) else osp.join(REPO_ROOT, root)


def missing_dataset_paths(cfg, data_root: str) -> List[str]:
    """The folders and list files a config's train/val/test datasets need that do not exist.

    Args:
        cfg (Config): Detector config (its ``*_dataloader.dataset`` entries are read).
        data_root (str): Dataset folder.

    Returns:
        list[str]: Missing paths (``[data_root]`` if the folder itself is missing).
    """
    if not osp.isdir(data_root):
        return [data_root]
    missing = []
    for loader in ('train', 'val', 'test'):
        dataset = cfg.get(f'{loader}_dataloader', {}).get('dataset', {})
        for sub in dict(dataset.get('data_prefix') or {}).values():
            if sub and not osp.isdir(osp.join(data_root, sub)):
                missing.append(osp.join(data_root, sub))
        ann_file = dataset.get('ann_file')
        if ann_file and not osp.isfile(osp.join(data_root, ann_file)):
            missing.append(osp.join(data_root, ann_file))
    return sorted(set(missing))


def dataset_problem(dataset: str, cfg, data_root: str) -> Optional[str]:
    """A one-line explanation why ``dataset`` cannot be used from ``data_root``, or ``None``."""
    missing = missing_dataset_paths(cfg, data_root)
    if not missing:
        return None
    what = ('folder not found' if missing == [data_root] else
            f'incomplete, missing {", ".join(relative_to(p, data_root) for p in missing[:4])}'
            + (' ...' if len(missing) > 4 else ''))
    return f'dataset {dataset!r} at {data_root}: {what} (expected {DATASETS[dataset]})'


# ---------------------------------------------------------------------------- options
def loader_options(data_root: str, loaders: Sequence[str],
                   num_workers: Optional[int] = None) -> List[str]:
    """``--cfg-options`` pointing the given dataloaders at ``data_root`` (and worker count)."""
    opts = [f'{loader}_dataloader.dataset.data_root={data_root}' for loader in loaders]
    if num_workers is not None:
        for loader in loaders:
            opts += [f'{loader}_dataloader.num_workers={num_workers}',
                     f'{loader}_dataloader.persistent_workers={num_workers > 0}']
    return opts


def crop_index(cfg) -> int:
    """Position of ``MultiImgRandomCrop`` in the config's training pipeline."""
    pipeline = cfg.train_dataloader.dataset.pipeline
    for i, step in enumerate(pipeline):
        if step.get('type', '').split('.')[-1] == 'MultiImgRandomCrop':
            return i
    raise ValueError('the training pipeline has no MultiImgRandomCrop; --crop cannot be set')


def schedule_options(schedulers: Sequence[dict], iters: int) -> List[str]:
    """``--cfg-options`` that fit a ``[warm-up, decay]`` (or single) LR schedule to ``iters``.

    The warm-up keeps its length, capped at a tenth of the run (at least 1 iteration).

    Args:
        schedulers (list[dict]): The config's ``param_scheduler``.
        iters (int): Training iterations (>= 2).

    Returns:
        list[str]: ``param_scheduler.<i>.<begin|end>=...`` options.
    """
    if len(schedulers) == 1:
        return [f'param_scheduler.0.end={iters}']
    if len(schedulers) != 2:
        raise ValueError(f'cannot rescale a schedule of {len(schedulers)} parts to --iters; '
                         'expected [warm-up, decay]')
    warmup = max(1, min(int(schedulers[0].get('end', 1)), iters // 10))
    return [f'param_scheduler.0.end={warmup}', f'param_scheduler.1.begin={warmup}',
            f'param_scheduler.1.end={iters}']


def training_options(cfg, data_root: str, iters: int, seed: int,
                     batch_size: Optional[int] = None, crop: Optional[int] = None,
                     num_workers: Optional[int] = None, val_interval: Optional[int] = None,
                     logger_interval: Optional[int] = None) -> List[str]:
    """``--cfg-options`` of a training run: data, length, schedule, checkpoints, seed.

    Args:
        cfg (Config): The detector config the run starts from.
        data_root (str): Dataset folder (train, val and test loaders).
        iters (int): Training iterations; the checkpoint ``iter_<iters>.pth`` is kept.
        seed (int): ``randomness.seed``.
        batch_size (int, optional): Training batch size (default: the config's).
        crop (int, optional): Side of the random training crop (default: the config's).
        num_workers (int, optional): Dataloader workers (default: the config's).
        val_interval (int, optional): Validate (and checkpoint) every this many iterations;
            ``None``: no validation and one checkpoint at the end.
        logger_interval (int, optional): Default: a tenth of the run, at most 50.

    Returns:
        list[str]: ``key=value`` strings for ``tools/train.py --cfg-options``.
    """
    if iters < 2:
        raise ValueError(f'iters must be >= 2, got {iters}')
    opts = loader_options(data_root, ('train', 'val', 'test'), num_workers)
    if batch_size is not None:
        opts.append(f'train_dataloader.batch_size={batch_size}')
    if crop is not None:
        opts.append(f'train_dataloader.dataset.pipeline.{crop_index(cfg)}.crop_size=[{crop},'
                    f'{crop}]')
    opts += [f'train_cfg.max_iters={iters}', f'randomness.seed={seed}',
             f'default_hooks.logger.interval={logger_interval or max(1, min(50, iters // 10))}']
    if val_interval is None:
        # mmengine validates at the last iteration unless val_begin lies beyond the run
        opts += [f'train_cfg.val_begin={iters + 1}', f'default_hooks.checkpoint.interval={iters}',
                 'default_hooks.checkpoint.max_keep_ckpts=1']
    else:
        opts += [f'train_cfg.val_interval={val_interval}',
                 f'default_hooks.checkpoint.interval={val_interval}']
    if iters != cfg.train_cfg.max_iters:
        opts += schedule_options(cfg.param_scheduler, iters)
    return opts


# ---------------------------------------------------------------------------- the plan
@dataclass
class TrainJob:
    """One training (``tools/train.py``), shared by every run that evaluates its weights.

    Args:
        name (str): ``'teacher'`` or ``'<setting>/<method>'``.
        config (str): Config file.
        work_dir (str): Its work dir (also holds ``train.log`` and :data:`DONE_FILE`).
        options (list[str]): ``--cfg-options`` entries.
        weights (str): The checkpoint the evaluation loads, written by this training.
        teacher (TrainJob, optional): The training whose weights this one distils.
    """
    name: str
    config: str
    work_dir: str
    options: List[str]
    weights: str
    teacher: Optional['TrainJob'] = None

    @property
    def log_file(self) -> str:
        """Full log of the training subprocess."""
        return osp.join(self.work_dir, 'train.log')

    @property
    def marker(self) -> str:
        """File written when the training finished (holds its wall time)."""
        return osp.join(self.work_dir, DONE_FILE)

    def is_done(self) -> bool:
        """Whether a previous invocation finished this training."""
        return osp.isfile(self.marker) and osp.isfile(self.weights)

    def train_seconds(self) -> Optional[float]:
        """Wall time of the finished training, from its marker file."""
        if not osp.isfile(self.marker):
            return None
        with open(self.marker) as f:
            return json.load(f).get('train_seconds')

    def command(self, python: str = sys.executable) -> List[str]:
        """The ``tools/train.py`` command line (run from the repo root)."""
        return [python, 'tools/train.py', self.config, '--work-dir', self.work_dir,
                '--cfg-options', *self.options]


@dataclass
class EvalJob:
    """One result row: evaluate a training's weights with ``tools/test.py``.

    Args:
        key (RunKey): The row's key.
        config (str): Test config (clean or the setting's fixed degraded test set).
        work_dir (str): Test work dir (metrics JSON, ``test.log``).
        options (list[str]): ``--cfg-options`` entries.
        training (TrainJob): The training whose ``weights`` are evaluated.
        run_dir (str): The run's folder, written to the CSV's ``work_dir`` column.
    """
    key: RunKey
    config: str
    work_dir: str
    options: List[str]
    training: TrainJob
    run_dir: str

    @property
    def log_file(self) -> str:
        """Full log of the test subprocess."""
        return osp.join(self.work_dir, 'test.log')

    def command(self, python: str = sys.executable) -> List[str]:
        """The ``tools/test.py`` command line (run from the repo root)."""
        return [python, 'tools/test.py', self.config, self.training.weights, '--work-dir',
                self.work_dir, '--cfg-options', *self.options]


@dataclass
class ExperimentSpec:
    """What ``tools/run_experiments.py`` was asked for, for one detector and dataset.

    Args:
        detector (str): One of :data:`DETECTORS`.
        dataset (str): One of :data:`DATASETS`.
        work_dir (str): Root of all runs (holds ``results.csv``).
        settings (list[str]): Setting names (see :func:`canonical_setting`).
        methods (list[str]): Names from :data:`METHODS`.
        seeds (list[int]): Training seeds.
        data_root (str, optional): Dataset folder (default: the config's).
        iters (int, optional): Training iterations (default: the config's ``max_iters``).
        batch_size (int, optional): Training batch size (default: the config's).
        crop (int, optional): Training crop side (default: the config's).
        num_workers (int, optional): Dataloader workers (default: the config's).
        cfg_options (list[str]): Extra ``key=value`` options for every train and test run.
        student_cfg_options (list[str]): Extra options for the distilled students' training.
        config_root (str): The ``configs`` folder.
    """
    detector: str
    dataset: str
    work_dir: str
    settings: Sequence[str] = SETTINGS
    methods: Sequence[str] = METHODS
    seeds: Sequence[int] = (0, 1, 2)
    data_root: Optional[str] = None
    iters: Optional[int] = None
    batch_size: Optional[int] = None
    crop: Optional[int] = None
    num_workers: Optional[int] = None
    cfg_options: List[str] = field(default_factory=list)
    student_cfg_options: List[str] = field(default_factory=list)
    config_root: str = CONFIG_ROOT

    def __post_init__(self) -> None:
        self.settings = list(dict.fromkeys(canonical_setting(s) for s in self.settings))
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f'unknown method(s) {unknown}; choose from {list(METHODS)}')
        self.methods = [m for m in METHODS if m in self.methods]
        self.seeds = list(dict.fromkeys(int(s) for s in self.seeds))
        for option in list(self.cfg_options) + list(self.student_cfg_options):
            if '=' not in option:
                raise ValueError(f'config option {option!r} is not of the form key=value')
        self.work_dir = osp.abspath(self.work_dir)
        self.base_config = find_base_config(self.detector, self.dataset, self.config_root)

    @property
    def group_dir(self) -> str:
        """Folder of this detector and dataset inside the work dir."""
        return osp.join(self.work_dir, f'{self.detector}_{self.dataset}')

    @property
    def config_dir(self) -> str:
        """Folder of the generated configs."""
        return osp.join(self.group_dir, 'configs')


@dataclass
class ExperimentPlan:
    """The runs still to do, in order, and the configs they need.

    Args:
        spec (ExperimentSpec): What was asked for.
        iters (int): Resolved training iterations.
        data_root (str): Resolved dataset folder.
        runs (list[EvalJob]): One per missing result row.
        configs (dict): Generated config path -> text.
    """
    spec: ExperimentSpec
    iters: int
    data_root: str
    runs: List[EvalJob]
    configs: Dict[str, str]

    @property
    def trainings(self) -> List[TrainJob]:
        """The distinct trainings the runs need, teachers before their students."""
        seen: Dict[int, TrainJob] = {}
        for run in self.runs:
            job = run.training
            if job.teacher is not None:
                seen.setdefault(id(job.teacher), job.teacher)
            seen.setdefault(id(job), job)
        return list(seen.values())


def config_texts(spec: ExperimentSpec, setting: str) -> Dict[str, str]:
    """Generated config texts of one setting, keyed by their path.

    Args:
        spec (ExperimentSpec): The request (base config, config folder).
        setting (str): A setting name.

    Returns:
        dict: Path -> text for ``lq_``, ``feat_mse_``, ``cwd_``, ``hicd_`` and the ablation
        configs of the setting.
    """
    out_dir = spec.config_dir
    base = osp.splitext(osp.basename(spec.base_config))[0]
    fmt = dict(base=base, setting=setting, base_path=relative_to(spec.base_config, out_dir),
               degradation_path=relative_to(degradation_mixin(setting, spec.config_root),
                                            out_dir))
    texts = {osp.join(out_dir, f'lq_{setting}.py'): LQ_TEMPLATE.format(**fmt)}
    for method, mixin in DISTILL_MIXINS.items():
        mixin_path = osp.join(spec.config_root, '_base_', 'hicd', f'{mixin}.py')
        if not osp.isfile(mixin_path):
            raise FileNotFoundError(f'distillation mixin of {method!r} not found: {mixin_path}')
        texts[osp.join(out_dir, f'{method}_{setting}.py')] = DISTILL_TEMPLATE.format(
            method=method, distill=mixin, distill_path=relative_to(mixin_path, out_dir), **fmt)
    for method, terms in ABLATIONS.items():
        zeroed = ', '.join(f'{t}=dict(loss=dict(loss_weight=0.0))' for t in terms)
        texts[osp.join(out_dir, f'{method}_{setting}.py')] = ABLATION_TEMPLATE.format(
            method=method, setting=setting, terms=', '.join(terms), zeroed=zeroed,
            hicd_config=f'hicd_{setting}.py')
    return texts


def _resolve_iters(spec: ExperimentSpec, cfg) -> int:
    iters = spec.iters if spec.iters is not None else int(cfg.train_cfg.max_iters)
    if iters < 2:
        raise ValueError(f'--iters must be >= 2, got {iters}')
    return iters


def _teacher_job(spec: ExperimentSpec, seed_dir: str, options: List[str],
                 iters: int) -> TrainJob:
    work = osp.join(seed_dir, 'teacher')
    return TrainJob('teacher', spec.base_config, work, options,
                    osp.join(work, f'iter_{iters}.pth'))


def _student_job(spec: ExperimentSpec, method: str, setting: str, seed_dir: str,
                 options: List[str], iters: int, teacher: TrainJob) -> TrainJob:
    work = osp.join(seed_dir, setting, method)
    config = osp.join(spec.config_dir, f'{method}_{setting}.py')
    if method == 'lq':
        return TrainJob(f'{setting}/lq', config, work, options,
                        osp.join(work, f'iter_{iters}.pth'))
    student_opts = options + [f'model.teacher_ckpt={teacher.weights}',
                              *spec.student_cfg_options]
    return TrainJob(f'{setting}/{method}', config, work, student_opts,
                    osp.join(work, 'student_final.pth'), teacher=teacher)


def _eval_job(spec: ExperimentSpec, key: RunKey, seed_dir: str, test_opts: List[str],
              teacher: TrainJob, train_opts: List[str], iters: int) -> EvalJob:
    if key.method == 'teacher_hq':
        work = osp.join(teacher.work_dir, 'test_clean')
        return EvalJob(key, spec.base_config, work, test_opts, teacher, teacher.work_dir)
    lq_config = osp.join(spec.config_dir, f'lq_{key.setting}.py')
    if key.method == 'teacher_lq':
        work = osp.join(seed_dir, key.setting, 'teacher_lq')
        return EvalJob(key, lq_config, work, test_opts, teacher, work)
    job = _student_job(spec, key.method, key.setting, seed_dir, train_opts, iters, teacher)
    return EvalJob(key, lq_config, osp.join(job.work_dir, 'test'), test_opts, job,
                   job.work_dir)


def planned_keys(spec: ExperimentSpec, iters: int) -> List[RunKey]:
    """Every result row the spec asks for, in run order (seed, then setting, then method)."""
    keys = []
    for seed in spec.seeds:
        if 'teacher_hq' in spec.methods:
            keys.append(RunKey(spec.detector, spec.dataset, CLEAN, 'teacher_hq', seed, iters))
        for setting in spec.settings:
            keys += [RunKey(spec.detector, spec.dataset, setting, m, seed, iters)
                     for m in spec.methods if m != 'teacher_hq']
    return keys


def build_plan(spec: ExperimentSpec, done: Iterable[RunKey] = ()) -> ExperimentPlan:
    """The runs still to do for ``spec`` (rows in ``done`` are skipped) and their configs.

    One teacher per seed is trained on HQ pairs and shared by all settings: ``teacher_hq``
    evaluates it on the clean test set, ``teacher_lq`` on the setting's degraded test set,
    and the distilled students (``feat_mse``, ``cwd``, ``hicd*``) load it. The ``lq`` baseline
    and the students train on the setting's LQ pairs; every LQ evaluation uses the setting's
    fixed degraded test set (``test_degradation``, seed 0).

    Args:
        spec (ExperimentSpec): The request.
        done (iterable[RunKey]): Rows that already exist (resume).

    Returns:
        ExperimentPlan: The plan; nothing is written or run.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(spec.base_config)
    iters = _resolve_iters(spec, cfg)
    data_root = osp.abspath(spec.data_root) if spec.data_root else config_data_root(cfg)
    done = set(done)
    configs: Dict[str, str] = {}
    for setting in spec.settings:
        configs.update(config_texts(spec, setting))
    test_opts = loader_options(data_root, ('test', ), spec.num_workers) + spec.cfg_options
    runs, teachers = [], {}
    for key in planned_keys(spec, iters):
        if key in done:
            continue
        seed_dir = osp.join(spec.group_dir, f'iters{iters}', f'seed{key.seed}')
        train_opts = training_options(cfg, data_root, iters, key.seed, spec.batch_size,
                                      spec.crop, spec.num_workers) + spec.cfg_options
        if key.seed not in teachers:
            teachers[key.seed] = _teacher_job(spec, seed_dir, train_opts, iters)
        runs.append(_eval_job(spec, key, seed_dir, test_opts, teachers[key.seed], train_opts,
                              iters))
    return ExperimentPlan(spec, iters, data_root, runs, configs)


def write_configs(plan: ExperimentPlan) -> None:
    """Write the plan's generated configs (rewritten only when their text changed)."""
    for path, text in plan.configs.items():
        if osp.isfile(path):
            with open(path) as f:
                if f.read() == text:
                    continue
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(text)


def describe_plan(plan: ExperimentPlan, python: str = sys.executable) -> str:
    """Human-readable plan with the exact commands (``--dry-run``)."""
    spec = plan.spec
    lines = [f'{spec.detector} on {spec.dataset} ({plan.data_root}): {plan.iters} iterations, '
             f'{len(plan.runs)} result row(s) to do, {len(plan.trainings)} training(s) needed',
             f'configs are written to {spec.config_dir}']
    for job in plan.trainings:
        state = 'done, reused' if job.is_done() else 'to train'
        lines += [f'  train {job.name} -> {job.work_dir} [{state}]',
                  '    ' + shlex.join(job.command(python))]
    for run in plan.runs:
        k = run.key
        lines += [f'  row {k.setting}/{k.method} seed {k.seed}: evaluate {run.training.name}',
                  '    ' + shlex.join(run.command(python))]
    return '\n'.join(lines)


# ---------------------------------------------------------------------------- subprocesses
def run_tool(cmd: Sequence[str], log_file: str, echo: Optional[Callable[[str], None]] = None,
             cwd: str = REPO_ROOT) -> int:
    """Run a tool, keep its full output in ``log_file`` and echo its progress lines.

    Args:
        cmd (list[str]): Command line.
        log_file (str): File receiving stdout and stderr (its folder is created).
        echo (callable, optional): Called with the short form of every training-iteration
            and metric line.
        cwd (str): Working directory (the repo root: config paths are relative to it).

    Returns:
        int: The exit status.
    """
    os.makedirs(osp.dirname(osp.abspath(log_file)), exist_ok=True)
    with open(log_file, 'w') as f:
        proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ, PYTHONUNBUFFERED='1'))
        for line in proc.stdout:
            f.write(line)
            if echo is not None and ('Iter(train)' in line or 'change metrics' in line):
                echo(line.split(' - INFO - ')[-1].rstrip()[:150])
        return proc.wait()


def read_metrics(work_dir: str, since: Optional[float] = None) -> Dict[str, float]:
    """The metrics a ``tools/test.py`` run wrote (``<work_dir>/<timestamp>/<timestamp>.json``).

    Args:
        work_dir (str): The test run's work dir.
        since (float, optional): Ignore JSON files older than this time stamp.

    Returns:
        dict: The newest metrics JSON (``Precision, Recall, F1, ...``).
    """
    files = glob.glob(osp.join(work_dir, '*', '*.json'))
    if since is not None:
        files = [f for f in files if osp.getmtime(f) >= since - 1]
    if not files:
        raise FileNotFoundError(f'no metrics JSON under {work_dir}/<timestamp>/')
    with open(max(files, key=osp.getmtime)) as f:
        metrics = json.load(f)
    missing = [m for m in METRICS if m not in metrics]
    if missing:
        raise KeyError(f'metrics JSON in {work_dir} lacks {missing}; got {sorted(metrics)}')
    return metrics


def ensure_synthetic_dataset(data_root: str, log_file: str, train: int = 800, val: int = 100,
                             test: int = 200, seed: int = 0,
                             log: Callable[[str], None] = print) -> None:
    """Generate the synthetic dataset with ``tools/make_synthetic_cd.py`` if it is missing.

    Args:
        data_root (str): Dataset folder; nothing happens if its ``meta.json`` exists.
        log_file (str): Log of the generator.
        train (int): Training pairs.
        val (int): Validation pairs.
        test (int): Test pairs.
        seed (int): Dataset seed.
        log (callable): Progress messages.
    """
    if osp.isfile(osp.join(data_root, 'meta.json')):
        log(f'dataset: using {data_root}')
        return
    log(f'dataset: generating {data_root}')
    rc = run_tool([sys.executable, 'tools/make_synthetic_cd.py', data_root, '--train',
                   str(train), '--val', str(val), '--test', str(test), '--seed', str(seed)],
                  log_file)
    if rc != 0:
        raise RuntimeError(f'generating the synthetic dataset failed ({rc}); see {log_file}')


# ---------------------------------------------------------------------------- results CSV
def row_key(row: Dict[str, str]) -> RunKey:
    """The :class:`RunKey` of a CSV row."""
    try:
        return RunKey(row['detector'], row['dataset'], row['setting'], row['method'],
                      int(row['seed']), int(row['iters']))
    except (KeyError, ValueError) as err:
        raise ValueError(f'malformed results row {row}: {err}') from err


def read_results(path: str) -> List[Dict[str, str]]:
    """Rows of a results CSV (``[]`` if the file does not exist)."""
    if not osp.isfile(path):
        return []
    with open(path, newline='') as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f'{path} is not a results CSV: columns {missing} are missing')
        return list(reader)


def done_keys(rows: Iterable[Dict[str, str]]) -> Set[RunKey]:
    """Keys of the rows that exist (these runs are skipped on resume)."""
    return {row_key(row) for row in rows}


def result_row(run: EvalJob, metrics: Dict[str, float], train_seconds: Optional[float],
               root: str) -> Dict[str, str]:
    """The CSV row of a finished run (``work_dir`` relative to the CSV's folder)."""
    row = dict(run.key._asdict())
    row.update({m: f'{float(metrics[m]):.4f}' for m in METRICS})
    row['train_seconds'] = '' if train_seconds is None else f'{train_seconds:.1f}'
    row['work_dir'] = relative_to(run.run_dir, root)
    return {k: str(v) for k, v in row.items()}


def append_result(path: str, row: Dict[str, str]) -> None:
    """Append one row to the results CSV (writing the header for a new file)."""
    new = not osp.isfile(path) or osp.getsize(path) == 0
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'a', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow({c: row.get(c, '') for c in CSV_COLUMNS})


# ---------------------------------------------------------------------------- aggregation
class Summary(NamedTuple):
    """Mean, sample standard deviation (``ddof=1``; NaN for one value) and count."""
    mean: float
    std: float
    n: int


def summarize(values: Sequence[float]) -> Summary:
    """:class:`Summary` of the values over seeds."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError('no values to summarize')
    std = float(arr.std(ddof=1)) if arr.size > 1 else float('nan')
    return Summary(float(arr.mean()), std, int(arr.size))


GroupKey = Tuple[str, str, int]  # (detector, dataset, iters)


def aggregate(rows: Iterable[Dict[str, str]], metric: str = 'F1'
              ) -> Dict[GroupKey, Dict[Tuple[str, str], Summary]]:
    """``metric`` over seeds for every (method, setting), per (detector, dataset, iters).

    A key that appears more than once counts once (its last row).

    Args:
        rows (iterable[dict]): CSV rows.
        metric (str): Column to aggregate.

    Returns:
        dict: ``{(detector, dataset, iters): {(method, setting): Summary}}``.
    """
    latest: Dict[RunKey, float] = {}
    for row in rows:
        latest[row_key(row)] = float(row[metric])
    values: Dict[GroupKey, Dict[Tuple[str, str], List[float]]] = {}
    for key, value in latest.items():
        group = values.setdefault((key.detector, key.dataset, key.iters), {})
        group.setdefault((key.method, key.setting), []).append(value)
    return {g: {k: summarize(v) for k, v in cells.items()} for g, cells in values.items()}


def _ordered(names: Iterable[str], order: Sequence[str]) -> List[str]:
    names = set(names)
    return [n for n in order if n in names] + sorted(names - set(order))


def format_cell(summary: Optional[Summary]) -> str:
    """``mean ± std (n=k)`` with one decimal; ``mean (n=1)`` for one seed; ``–`` if absent."""
    if summary is None:
        return '–'
    if summary.n == 1:
        return f'{summary.mean:.1f} (n=1)'
    return f'{summary.mean:.1f} ± {summary.std:.1f} (n={summary.n})'


def markdown_table(cells: Dict[Tuple[str, str], Summary]) -> str:
    """One table: rows = methods, columns = settings (``clean`` first)."""
    settings = _ordered({s for _, s in cells}, (CLEAN, *SETTINGS))
    methods = _ordered({m for m, _ in cells}, METHODS)
    lines = ['| method | ' + ' | '.join(settings) + ' |',
             '|---|' + '---|' * len(settings)]
    for method in methods:
        label = METHOD_LABELS.get(method, method)
        lines.append(f'| {label} | ' +
                     ' | '.join(format_cell(cells.get((method, s))) for s in settings) + ' |')
    return '\n'.join(lines)


def markdown_report(rows: Iterable[Dict[str, str]], metric: str = 'F1') -> str:
    """``results.md``: one table per (detector, dataset, iterations)."""
    groups = aggregate(rows, metric)
    parts = [
        '# Experiment results', '',
        f'{metric} of the changed class in percent, mean ± sample standard deviation over '
        'seeds (n = number of seeds). `teacher on HQ` is evaluated on the clean test set '
        '(column `clean`); every other method on the setting\'s fixed degraded test set '
        '(seed 0). Written by `tools/run_experiments.py` from `results.csv`.'
    ]
    for (detector, dataset, iters) in sorted(groups):
        parts += ['', f'## {detector} on {dataset}, {iters} iterations', '',
                  markdown_table(groups[(detector, dataset, iters)])]
    if not groups:
        parts += ['', 'No results yet.']
    return '\n'.join(parts) + '\n'


def plot_f1(rows: Iterable[Dict[str, str]], path: str, metric: str = 'F1') -> None:
    """Grouped bars of ``metric`` (mean, std as error bar): groups = settings, bars = methods.

    One panel per (detector, dataset, iterations).

    Args:
        rows (iterable[dict]): CSV rows.
        path (str): Output image.
        metric (str): Column to plot.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    groups = aggregate(rows, metric)
    if not groups:
        raise ValueError('no results to plot')
    fig, axes = plt.subplots(len(groups), 1, figsize=(11, 3.6 * len(groups)), squeeze=False)
    for ax, group in zip(axes[:, 0], sorted(groups)):
        _plot_group(ax, groups[group], group, metric)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_group(ax, cells: Dict[Tuple[str, str], Summary], group: GroupKey,
                metric: str) -> None:
    settings = _ordered({s for _, s in cells}, (CLEAN, *SETTINGS))
    methods = _ordered({m for m, _ in cells}, METHODS)
    colors = {m: f'C{i % 10}' for i, m in enumerate(methods)}
    per_setting = {s: [m for m in methods if (m, s) in cells] for s in settings}
    width = 0.8 / max(len(ms) for ms in per_setting.values())
    labelled = set()
    for j, setting in enumerate(settings):
        present = per_setting[setting]
        for i, method in enumerate(present):  # bars of a setting centred on its tick
            summary = cells[(method, setting)]
            label = None if method in labelled else METHOD_LABELS.get(method, method)
            labelled.add(method)
            ax.bar(j + (i - (len(present) - 1) / 2) * width, summary.mean, width,
                   yerr=0.0 if np.isnan(summary.std) else summary.std, capsize=2,
                   color=colors[method], label=label)
    ax.set_xticks(range(len(settings)))
    ax.set_xticklabels(settings, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel(f'{metric} (%)')
    ax.set_title(f'{group[0]} on {group[1]}, {group[2]} iterations (mean ± std over seeds)',
                 fontsize=9)
    ax.legend(ncol=5, fontsize=7, loc='upper right')


def write_reports(csv_path: str, md_path: str, png_path: Optional[str] = None) -> None:
    """Rewrite ``results.md`` (and the plot, if a path is given) from the CSV."""
    rows = read_results(csv_path)
    with open(md_path, 'w') as f:
        f.write(markdown_report(rows))
    if png_path is not None and rows:
        plot_f1(rows, png_path)

