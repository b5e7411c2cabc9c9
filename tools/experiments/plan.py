"""What the experiment runner does: the request, the result keys, the jobs and their configs.

Nothing here runs a model; :func:`build_plan` turns an :class:`ExperimentSpec` into the
trainings and evaluations still missing from the results CSV, and :func:`config_texts` gives
the generated configs (from :mod:`tools.experiments.templates`).

Work-dir layout (``--work-dir``, default ``work_dirs/experiments``)::

    results.csv, results.md, results_f1.png
    <detector>_<dataset>/configs/<method>_<setting>[__<variant>].py   generated configs
    <detector>_<dataset>/seed<S>/teacher_iters<T>/                   the teacher (HQ pairs)
    <detector>_<dataset>/seed<S>/teacher_iters<T>/eval_<split>_<setting>/   its evaluations
    <detector>_<dataset>/seed<S>/iters<N>/<setting>/lq/               the LQ baseline
    <detector>_<dataset>/seed<S>/iters<N>/teacher<T>/<setting>/<method>[__<variant>]/
                                                                       students of teacher T
    <run>/eval_<split>/                                                its evaluation

See docs/experiments.md.
"""
import glob
import os
import os.path as osp
import sys
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from . import templates

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_ROOT = osp.join(REPO_ROOT, 'configs')

DETECTORS = templates.DETECTORS
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
CLEAN = 'clean'  # the "setting" of teacher_hq rows: the undegraded split
SPLITS = ('val', 'test')
METHODS = ('teacher_hq', 'teacher_lq', 'lq', 'ft_lq', 'feat_mse', 'cwd', 'hicd', 'hicd_no_self',
           'hicd_no_cross', 'hicd_no_global')
METHOD_LABELS = {
    'teacher_hq': 'teacher on HQ',
    'teacher_lq': 'teacher on LQ',
    'lq': 'LQ baseline',
    'ft_lq': 'teacher fine-tuned on LQ (ft_lq)',
    'feat_mse': 'feature MSE (FitNets)',
    'cwd': 'CWD',
    'hicd': 'HiCD',
}
TEACHER_METHODS = ('teacher_hq', 'teacher_lq')
# distilled students: method -> distillation mixin (configs/_base_/hicd/<mixin>.py)
DISTILL_MIXINS = {'feat_mse': 'feature_mse', 'cwd': 'cwd', 'hicd': 'hicd_default'}
# HiCD ablations: method -> the terms whose loss_weight is set to 0. Any other
# ``hicd_no_<term>`` switches off the single term ``<term>`` (e.g. a term a variant adds).
ABLATIONS = {
    'hicd_no_self': ('sem_self', 'chg_self'),
    'hicd_no_cross': ('sem_cross', ),
    'hicd_no_global': ('sem_global', 'chg_global'),
}
ABLATION_PREFIX = 'hicd_no_'
DEFAULT_VARIANT = 'default'  # the HiCD configuration of hicd_default.py, unchanged
# keys a variant may not change: they would make it incomparable with its baseline
SCHEDULE_KEYS = ('optimizer', 'optim_wrapper', 'param_scheduler', 'train_cfg')
METRICS = ('Precision', 'Recall', 'F1', 'IoU', 'AP', 'OA', 'Kappa')
KEY_COLUMNS = ('detector', 'dataset', 'setting', 'method', 'variant', 'seed', 'iters',
               'teacher_iters', 'split')
CSV_COLUMNS = KEY_COLUMNS + ('best_iter', 'val_F1') + METRICS + ('train_seconds', 'work_dir')
DONE_FILE = 'run_info.json'  # written into a training work dir when the training succeeded


class RunKey(NamedTuple):
    """What identifies one result row (the CSV's key columns).

    ``variant`` is ``''`` for methods without variants; ``teacher_iters`` is the teacher's
    training length of the invocation (also on rows that do not use the teacher, so every
    group of the summary holds its own baselines).
    """
    detector: str
    dataset: str
    setting: str
    method: str
    variant: str
    seed: int
    iters: int
    teacher_iters: int
    split: str


def is_hicd_method(method: str) -> bool:
    """Whether ``method`` is HiCD or one of its ablations (the methods that take variants)."""
    return method == 'hicd' or method.startswith(ABLATION_PREFIX)


def ablated_terms(method: str) -> Tuple[str, ...]:
    """The terms an ablation switches off (``()`` for ``hicd`` itself)."""
    if method == 'hicd':
        return ()
    if method in ABLATIONS:
        return ABLATIONS[method]
    if method.startswith(ABLATION_PREFIX) and len(method) > len(ABLATION_PREFIX):
        return (method[len(ABLATION_PREFIX):], )
    raise ValueError(f'{method!r} is not a HiCD method')


def check_method(method: str) -> str:
    """``method`` itself if known (a name of :data:`METHODS` or ``hicd_no_<term>``)."""
    if method in METHODS or is_hicd_method(method):
        return method
    raise ValueError(f'unknown method {method!r}; choose from {list(METHODS)} or '
                     f'{ABLATION_PREFIX}<term>')


def method_label(method: str, variant: str = '') -> str:
    """Human-readable name of a (method, variant)."""
    if method in METHOD_LABELS:
        label = METHOD_LABELS[method]
    elif is_hicd_method(method):
        label = 'HiCD w/o ' + method[len(ABLATION_PREFIX):].replace('_', ' ')
    else:
        label = method
    return f'{label} [{variant}]' if variant and variant != DEFAULT_VARIANT else label


# ---------------------------------------------------------------------------- variants
@dataclass(frozen=True)
class Variant:
    """A HiCD configuration: config mixins and options applied on top of ``hicd_default.py``.

    A mixin is a config file whose top-level keys are merged into the generated HiCD config
    (e.g. ``model = dict(init_student_from_teacher=True)`` or changed ``distill_terms``).

    Args:
        name (str): The CSV's ``variant`` column (letters, digits, ``-``, ``_``, ``.``).
        mixins (tuple[str]): Config files merged in this order.
        cfg_options (tuple[str]): ``key=value`` options of its trainings.
    """
    name: str
    mixins: Tuple[str, ...] = ()
    cfg_options: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in '-_.' for c in self.name):
            raise ValueError(f'variant name {self.name!r}: use letters, digits, "-", "_", "."')
        for mixin in self.mixins:
            if not osp.isfile(mixin):
                raise FileNotFoundError(f'variant {self.name!r}: mixin {mixin!r} not found')
        for option in self.cfg_options:
            _check_option(option, f'variant {self.name!r}')

    def overrides(self) -> Dict[str, object]:
        """The mixins' top-level keys merged in order (plain Python values); their
        ``hicd_terms`` become ``model.distill_terms`` (replacing the parent's terms).

        Raises:
            ValueError: A mixin changes the optimiser or schedule (see :data:`SCHEDULE_KEYS`).
        """
        from mmengine.config import Config
        merged: Dict[str, object] = {}
        for mixin in self.mixins:
            cfg = Config.fromfile(mixin).to_dict()
            for key, value in cfg.items():
                if key.startswith('_'):
                    continue
                if key in SCHEDULE_KEYS:
                    raise ValueError(
                        f'variant {self.name!r}: mixin {mixin} sets {key!r}; a variant may not '
                        'change the optimiser or schedule (its baselines would train '
                        'differently): use --cfg-options (all runs) or --finetune-cfg-options '
                        '(ft_lq and every variant starting from the teacher)')
                merged[key] = _merge(merged.get(key), value)
        for option in self.cfg_options:
            if option.split('=', 1)[0].split('.')[0] in SCHEDULE_KEYS:
                raise ValueError(f'variant {self.name!r}: option {option!r} changes the '
                                 'optimiser or schedule; use --cfg-options or '
                                 '--finetune-cfg-options')
        if 'hicd_terms' in merged:
            # The parent read hicd_terms into model.distill_terms when it was parsed, so a
            # top-level hicd_terms in the child would change nothing: the mixins' terms (they
            # start from hicd_default.py, so they are the whole set) replace the model's.
            model = dict(merged.get('model') or {})
            model['distill_terms'] = dict(_delete_=True, **merged.pop('hicd_terms'))
            merged['model'] = model
        return merged

    @property
    def from_teacher(self) -> bool:
        """Whether the student starts from the teacher's weights
        (``model.init_student_from_teacher``, set by a mixin or an option)."""
        model = dict(self.overrides().get('model') or {})
        value = bool(model.get('init_student_from_teacher', False))
        for option in self.cfg_options:
            key, _, text = option.partition('=')
            if key == 'model.init_student_from_teacher':
                value = text.strip().lower() in ('true', '1')
        return value


def _merge(base, new):
    if isinstance(base, dict) and isinstance(new, dict) and not new.get('_delete_'):
        out = dict(base)
        for key, value in new.items():
            out[key] = _merge(base.get(key), value)
        return out
    return new


def parse_variant(text: str) -> Variant:
    """A ``--variant NAME=MIXIN.py[,MIXIN2.py]`` argument (``NAME=`` alone: no mixin)."""
    name, sep, mixins = text.partition('=')
    if not sep:
        raise ValueError(f'--variant {text!r}: expected NAME=MIXIN.py[,MIXIN2.py]')
    return Variant(name.strip(), tuple(m for m in mixins.split(',') if m))


def load_variants_file(path: str) -> List[Variant]:
    """Variants of a ``--variants`` file: a config file with
    ``variants = dict(NAME=dict(mixins=[...], cfg_options=[...]), ...)``; relative mixin paths
    are relative to the file's folder."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    if not isinstance(cfg.get('variants'), dict):
        raise ValueError(f'{path}: expected a top-level dict "variants"')
    out = []
    for name, spec in cfg.variants.items():
        unknown = set(spec) - {'mixins', 'cfg_options'}
        if unknown:
            raise ValueError(f'{path}: variant {name!r} has unknown keys {sorted(unknown)} '
                             '(expected mixins, cfg_options)')
        mixins = tuple(m if osp.isabs(m) else osp.join(osp.dirname(osp.abspath(path)), m)
                       for m in spec.get('mixins', ()))
        out.append(Variant(name, mixins, tuple(spec.get('cfg_options', ()))))
    return out


# ---------------------------------------------------------------------------- names and paths
def canonical_setting(name: str) -> str:
    """The setting name for a ``--settings`` entry (a setting or its mixin's file stem)."""
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
    """The detector's config for a dataset: ``configs/<detector>/*_<dataset>.py``
    (configs that need ``mmpretrain`` are left out)."""
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


def _check_option(option: str, where: str) -> None:
    if '=' not in option:
        raise ValueError(f'{where}: config option {option!r} is not of the form key=value')


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
    for i, step in enumerate(cfg.train_dataloader.dataset.pipeline):
        if step.get('type', '').split('.')[-1] == 'MultiImgRandomCrop':
            return i
    raise ValueError('the training pipeline has no MultiImgRandomCrop; --crop cannot be set')


def schedule_options(schedulers: Sequence[dict], iters: int) -> List[str]:
    """``--cfg-options`` that fit a ``[warm-up, decay]`` (or single) LR schedule to ``iters``;
    the warm-up keeps its length, capped at a tenth of the run (at least 1 iteration)."""
    if len(schedulers) == 1:
        return [f'param_scheduler.0.end={iters}']
    if len(schedulers) != 2:
        raise ValueError(f'cannot rescale a schedule of {len(schedulers)} parts to --iters; '
                         'expected [warm-up, decay]')
    warmup = max(1, min(int(schedulers[0].get('end', 1)), iters // 10))
    return [f'param_scheduler.0.end={warmup}', f'param_scheduler.1.begin={warmup}',
            f'param_scheduler.1.end={iters}']


def default_val_interval(iters: int) -> int:
    """Validate eight times per run (every ``iters // 8`` iterations, at least 1)."""
    return max(1, iters // 8)


def training_options(cfg, data_root: str, iters: int, seed: int,
                     batch_size: Optional[int] = None, crop: Optional[int] = None,
                     num_workers: Optional[int] = None, val_interval: Optional[int] = None,
                     logger_interval: Optional[int] = None) -> List[str]:
    """``--cfg-options`` of a training run: data, length, schedule, validation, seed.

    Every training validates on the val split every ``val_interval`` iterations (and at the
    last one) and keeps its best-on-val checkpoint (``best_F1_iter_<i>.pth``, mmengine's
    ``CheckpointHook(save_best='F1', rule='greater')``) besides the latest one.

    Args:
        cfg (Config): The detector config the run starts from.
        data_root (str): Dataset folder (train, val and test loaders).
        iters (int): Training iterations (>= 2).
        seed (int): ``randomness.seed``.
        batch_size (int, optional): Training batch size (default: the config's).
        crop (int, optional): Side of the random training crop (default: the config's).
        num_workers (int, optional): Dataloader workers (default: the config's).
        val_interval (int, optional): Default :func:`default_val_interval`.
        logger_interval (int, optional): Default: a tenth of the run, at most 50.

    Returns:
        list[str]: ``key=value`` strings for ``tools/train.py --cfg-options``.
    """
    if iters < 2:
        raise ValueError(f'iters must be >= 2, got {iters}')
    val_interval = val_interval or default_val_interval(iters)
    if val_interval < 1:
        raise ValueError(f'val_interval must be >= 1, got {val_interval}')
    opts = loader_options(data_root, ('train', 'val', 'test'), num_workers)
    if batch_size is not None:
        opts.append(f'train_dataloader.batch_size={batch_size}')
    if crop is not None:
        opts.append(f'train_dataloader.dataset.pipeline.{crop_index(cfg)}.crop_size=[{crop},'
                    f'{crop}]')
    opts += [f'train_cfg.max_iters={iters}', f'randomness.seed={seed}',
             f'default_hooks.logger.interval={logger_interval or max(1, min(50, iters // 10))}',
             'train_cfg.val_begin=1', f'train_cfg.val_interval={val_interval}',
             f'default_hooks.checkpoint.interval={val_interval}',
             'default_hooks.checkpoint.save_best=F1', 'default_hooks.checkpoint.rule=greater',
             'default_hooks.checkpoint.max_keep_ckpts=1']
    if iters != cfg.train_cfg.max_iters:
        opts += schedule_options(cfg.param_scheduler, iters)
    return opts


# ---------------------------------------------------------------------------- jobs
@dataclass
class TrainJob:
    """One training (``tools/train.py``), shared by every row that evaluates its weights.

    Args:
        name (str): ``'teacher (seed S, T it)'`` or ``'<setting>/<method>...'``, for messages.
        config (str): Config file.
        work_dir (str): Its work dir (``train.log``, checkpoints, :data:`DONE_FILE`).
        options (list[str]): ``--cfg-options`` entries.
        distiller (bool): The config is a ``HiCDDistiller``: the student is exported from
            the best checkpoint before it is evaluated.
        teacher (TrainJob, optional): The training whose best checkpoint this one needs.
    """
    name: str
    config: str
    work_dir: str
    options: List[str]
    distiller: bool = False
    teacher: Optional['TrainJob'] = None

    @property
    def log_file(self) -> str:
        """Full log of the training subprocess."""
        return osp.join(self.work_dir, 'train.log')

    @property
    def marker(self) -> str:
        """File written when the training finished (best iteration, val metrics, wall time)."""
        return osp.join(self.work_dir, DONE_FILE)

    @property
    def weights(self) -> str:
        """The weights evaluated: the best-on-val checkpoint, for a distiller its student
        exported to ``student_best.pth`` (written by the runner after the training)."""
        return osp.join(self.work_dir, 'student_best.pth' if self.distiller else 'best.pth')

    def command(self, python: str = sys.executable) -> List[str]:
        """The ``tools/train.py`` command line (run from the repo root)."""
        options = list(self.options)
        if self.teacher is not None:
            # the path is known once the teacher has trained: resolved at run time
            options.insert(0, f'model.teacher_ckpt={self.teacher.weights}')
        return [python, 'tools/train.py', self.config, '--work-dir', self.work_dir,
                '--cfg-options', *options]


@dataclass
class EvalJob:
    """One result row: evaluate a training's best weights once with ``tools/test.py``.

    Args:
        key (RunKey): The row's key.
        config (str): Test config (clean or the setting's fixed degraded data).
        work_dir (str): Test work dir (metrics JSON, ``test.log``).
        options (list[str]): ``--cfg-options`` entries.
        training (TrainJob): The training whose weights are evaluated.
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
        """The ``tools/test.py`` command line (``--split val`` in development)."""
        return [python, 'tools/test.py', self.config, self.training.weights, '--work-dir',
                self.work_dir, '--split', self.key.split, '--cfg-options', *self.options]


# ---------------------------------------------------------------------------- the request
@dataclass
class ExperimentSpec:
    """What ``tools/run_experiments.py`` was asked for, for one detector and dataset.

    Args:
        detector (str): One of :data:`DETECTORS`.
        dataset (str): One of :data:`DATASETS`.
        work_dir (str): Root of all runs (holds ``results.csv``).
        settings (list[str]): Setting names (see :func:`canonical_setting`).
        methods (list[str]): Names from :data:`METHODS` or ``hicd_no_<term>``.
        seeds (list[int]): Training seeds.
        variants (list[Variant]): HiCD configurations for ``hicd`` and its ablations
            (default: one, :data:`DEFAULT_VARIANT`).
        split (str): ``'val'`` (development: rows hold val metrics, test is never read) or
            ``'test'`` (confirmation: each best-on-val checkpoint is tested once).
        data_root (str, optional): Dataset folder (default: the config's).
        dataset_tag (str): Appended to the dataset name in the CSV and the work dir, e.g.
            ``cr0.02`` for a synthetic dataset generated at another change rate.
        iters (int, optional): Student training iterations (default: the config's).
        teacher_iters (int, optional): Teacher training iterations (default: ``iters``).
        val_interval (int, optional): Default :func:`default_val_interval` of each training.
        batch_size, crop, num_workers (int, optional): Training options (default: config's).
        cfg_options (list[str]): ``key=value`` options of every training and evaluation.
        student_cfg_options (list[str]): Options of every distilled student's training (not
            of ``ft_lq``, which has no distillation terms).
        finetune_cfg_options (list[str]): Options of the trainings that start from the teacher
            (``ft_lq`` and every variant with ``init_student_from_teacher``), e.g. a lower LR.
        config_root (str): The ``configs`` folder.
    """
    detector: str
    dataset: str
    work_dir: str
    settings: Sequence[str] = SETTINGS
    methods: Sequence[str] = METHODS
    seeds: Sequence[int] = (0, 1, 2)
    variants: Sequence[Variant] = ()
    split: str = 'val'
    data_root: Optional[str] = None
    dataset_tag: str = ''
    iters: Optional[int] = None
    teacher_iters: Optional[int] = None
    val_interval: Optional[int] = None
    batch_size: Optional[int] = None
    crop: Optional[int] = None
    num_workers: Optional[int] = None
    cfg_options: List[str] = field(default_factory=list)
    student_cfg_options: List[str] = field(default_factory=list)
    finetune_cfg_options: List[str] = field(default_factory=list)
    config_root: str = CONFIG_ROOT

    def __post_init__(self) -> None:
        self.settings = list(dict.fromkeys(canonical_setting(s) for s in self.settings))
        methods = [check_method(m) for m in dict.fromkeys(self.methods)]
        self.methods = ([m for m in METHODS if m in methods] +
                        [m for m in methods if m not in METHODS])
        self.seeds = list(dict.fromkeys(int(s) for s in self.seeds))
        if self.split not in SPLITS:
            raise ValueError(f'split must be one of {SPLITS}, got {self.split!r}')
        self.variants = list(self.variants) or [Variant(DEFAULT_VARIANT)]
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f'variant names must be unique, got {names}')
        for option in (list(self.cfg_options) + list(self.student_cfg_options) +
                       list(self.finetune_cfg_options)):
            _check_option(option, 'options')
        for name, value in (('iters', self.iters), ('teacher_iters', self.teacher_iters)):
            if value is not None and value < 2:
                raise ValueError(f'{name} must be >= 2, got {value}')
        self.work_dir = osp.abspath(self.work_dir)
        self.base_config = find_base_config(self.detector, self.dataset, self.config_root)

    @property
    def dataset_label(self) -> str:
        """The CSV's ``dataset`` column: the dataset name, with ``-<tag>`` if tagged."""
        return f'{self.dataset}-{self.dataset_tag}' if self.dataset_tag else self.dataset

    @property
    def group_dir(self) -> str:
        """Folder of this detector and dataset inside the work dir."""
        return osp.join(self.work_dir, f'{self.detector}_{self.dataset_label}')

    @property
    def config_dir(self) -> str:
        """Folder of the generated configs."""
        return osp.join(self.group_dir, 'configs')

    def variants_of(self, method: str) -> List[str]:
        """Variant names of a method's rows (``['']`` for methods without variants)."""
        return [v.name for v in self.variants] if is_hicd_method(method) else ['']

    def variant(self, name: str) -> Variant:
        """The variant called ``name``."""
        return next(v for v in self.variants if v.name == name)


@dataclass
class ExperimentPlan:
    """The runs still to do, in order, and the configs they need.

    Args:
        spec (ExperimentSpec): What was asked for.
        iters (int): Resolved student training iterations.
        teacher_iters (int): Resolved teacher training iterations.
        data_root (str): Resolved dataset folder.
        runs (list[EvalJob]): One per missing result row.
        configs (dict): Generated config path -> text.
    """
    spec: ExperimentSpec
    iters: int
    teacher_iters: int
    data_root: str
    runs: List[EvalJob]
    configs: Dict[str, str]

    @property
    def teachers(self) -> List[TrainJob]:
        """The teacher trainings the runs need (evaluated or distilled from)."""
        found: Dict[int, TrainJob] = {}
        for run in self.runs:
            if run.training.teacher is not None:
                found.setdefault(id(run.training.teacher), run.training.teacher)
            elif run.key.method in TEACHER_METHODS:
                found.setdefault(id(run.training), run.training)
        return list(found.values())

    @property
    def trainings(self) -> List[TrainJob]:
        """The distinct trainings the runs need, teachers first."""
        found = {id(job): job for job in self.teachers}
        for run in self.runs:
            found.setdefault(id(run.training), run.training)
        return list(found.values())


# ---------------------------------------------------------------------------- configs
def _config_name(method: str, setting: str, variant: str = '') -> str:
    suffix = f'__{variant}' if variant and variant != DEFAULT_VARIANT else ''
    return f'{method}_{setting}{suffix}.py'


def config_texts(spec: ExperimentSpec, setting: str) -> Dict[str, str]:
    """Generated config texts of one setting, keyed by their path.

    Args:
        spec (ExperimentSpec): The request (base config, config folder, variants).
        setting (str): A setting name.

    Returns:
        dict: Path -> text: ``lq_``, ``ft_lq_``, ``feat_mse_``, ``cwd_``, ``hicd_`` and, per
        variant, the variant's HiCD config and the ablations of the requested methods.
    """
    out = spec.config_dir
    base = osp.splitext(osp.basename(spec.base_config))[0]
    base_path = relative_to(spec.base_config, out)
    degradation_path = relative_to(degradation_mixin(setting, spec.config_root), out)
    writer = 'Written by tools/run_experiments.py (tools/experiments/templates.py); do not edit.'
    texts = {osp.join(out, _config_name('lq', setting)): templates.lq_config(
        [f'LQ baseline: {base} trained and tested on pairs whose B is degraded by {setting}.',
         writer], base_path, degradation_path)}
    for method, mixin in DISTILL_MIXINS.items():
        mixin_path = osp.join(spec.config_root, '_base_', 'hicd', f'{mixin}.py')
        if not osp.isfile(mixin_path):
            raise FileNotFoundError(f'distillation mixin of {method!r} not found: {mixin_path}')
        texts[osp.join(out, _config_name(method, setting))] = templates.distiller_config(
            [f'{method} student: {base} on pairs whose B is degraded by {setting}, distilled',
             f'from the frozen teacher ({base} trained on HQ pairs) with the terms of {mixin}.py.',
             writer, 'The teacher checkpoint is given at run time: '
             '--cfg-options model.teacher_ckpt=PATH'],
            base_path, degradation_path, relative_to(mixin_path, out), teacher_ckpt=None)
    hicd = _config_name('hicd', setting)
    texts[osp.join(out, _config_name('ft_lq', setting))] = templates.child_config(
        ['ft_lq: the teacher fine-tuned on LQ pairs without distillation (every term off), the',
         'control of HiCD students that start from the teacher; same data, schedule and hooks.',
         writer], f'./{hicd}',
        dict(model=dict(init_student_from_teacher=True, distill_terms=dict(_delete_=True))))
    for variant in spec.variants:
        parent = hicd
        if variant.name != DEFAULT_VARIANT or variant.mixins:
            parent = _config_name('hicd', setting, variant.name)
            texts[osp.join(out, parent)] = templates.child_config(
                [f'HiCD variant {variant.name!r}: hicd_{setting}.py merged with '
                 f'{", ".join(variant.mixins) or "no mixin"}.', writer], f'./{hicd}',
                variant.overrides())
        for method in spec.methods:
            if is_hicd_method(method) and method != 'hicd':
                terms = ablated_terms(method)
                texts[osp.join(out, _config_name(method, setting, variant.name))] = (
                    templates.child_config(
                        [f'{method}: {parent} with loss_weight=0 for {", ".join(terms)}', writer],
                        f'./{parent}', dict(model=dict(distill_terms=templates.zero_terms(terms)))))
    return texts


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


# ---------------------------------------------------------------------------- the plan
def planned_keys(spec: ExperimentSpec, iters: int, teacher_iters: int) -> List[RunKey]:
    """Every result row the spec asks for, in run order (seed, setting, method, variant)."""
    keys = []
    for seed in spec.seeds:
        def key(setting, method, variant=''):
            return RunKey(spec.detector, spec.dataset_label, setting, method, variant, seed,
                          iters, teacher_iters, spec.split)

        if 'teacher_hq' in spec.methods:
            keys.append(key(CLEAN, 'teacher_hq'))
        for setting in spec.settings:
            for method in spec.methods:
                if method != 'teacher_hq':
                    keys += [key(setting, method, v) for v in spec.variants_of(method)]
    return keys


def build_plan(spec: ExperimentSpec, done: Iterable[RunKey] = ()) -> ExperimentPlan:
    """The runs still to do for ``spec`` (rows in ``done`` are skipped) and their configs.

    One teacher per seed is trained on HQ pairs and shared by all settings, methods and
    variants: ``teacher_hq`` evaluates it on the clean split, ``teacher_lq`` on the setting's
    degraded split, and the distilled students and ``ft_lq`` load its best-on-val checkpoint.
    Every training validates on the val split; every row evaluates a best-on-val checkpoint
    once, on ``spec.split``.

    Args:
        spec (ExperimentSpec): The request.
        done (iterable[RunKey]): Rows that already exist (resume).

    Returns:
        ExperimentPlan: The plan; nothing is written or run.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(spec.base_config)
    iters = spec.iters if spec.iters is not None else int(cfg.train_cfg.max_iters)
    teacher_iters = spec.teacher_iters or iters
    if spec.data_root:
        data_root = osp.abspath(spec.data_root)
    else:
        root = cfg.test_dataloader.dataset.get('data_root', '')
        data_root = root if osp.isabs(root) else osp.join(REPO_ROOT, root)
    configs: Dict[str, str] = {}
    for setting in spec.settings:
        configs.update(config_texts(spec, setting))
    test_opts = loader_options(data_root, ('test', 'val'), spec.num_workers) + spec.cfg_options

    def train_opts(n: int, seed: int) -> List[str]:
        return training_options(cfg, data_root, n, seed, spec.batch_size, spec.crop,
                                spec.num_workers, spec.val_interval) + spec.cfg_options

    done = set(done)
    runs, teachers, students = [], {}, {}
    for key in planned_keys(spec, iters, teacher_iters):
        if key in done:
            continue
        seed_dir = osp.join(spec.group_dir, f'seed{key.seed}')
        if key.seed not in teachers:
            work = osp.join(seed_dir, f'teacher_iters{teacher_iters}')
            teachers[key.seed] = TrainJob(f'teacher (seed {key.seed}, {teacher_iters} it)',
                                          spec.base_config, work,
                                          train_opts(teacher_iters, key.seed))
        teacher = teachers[key.seed]
        lq_config = osp.join(spec.config_dir, _config_name('lq', key.setting))
        if key.method == 'teacher_hq':
            runs.append(EvalJob(key, spec.base_config,
                                osp.join(teacher.work_dir, f'eval_{key.split}_{CLEAN}'),
                                test_opts, teacher, teacher.work_dir))
            continue
        if key.method == 'teacher_lq':
            runs.append(EvalJob(key, lq_config,
                                osp.join(teacher.work_dir, f'eval_{key.split}_{key.setting}'),
                                test_opts, teacher, teacher.work_dir))
            continue
        job_key = (key.seed, key.setting, key.method, key.variant)
        if job_key not in students:
            students[job_key] = _student_job(spec, key, seed_dir, teacher,
                                             train_opts(iters, key.seed))
        job = students[job_key]
        runs.append(EvalJob(key, lq_config, osp.join(job.work_dir, f'eval_{key.split}'),
                            test_opts, job, job.work_dir))
    return ExperimentPlan(spec, iters, teacher_iters, data_root, runs, configs)


def _student_job(spec: ExperimentSpec, key: RunKey, seed_dir: str, teacher: TrainJob,
                 options: List[str]) -> TrainJob:
    iters_dir = osp.join(seed_dir, f'iters{key.iters}')
    if key.method == 'lq':
        return TrainJob(f'{key.setting}/lq (seed {key.seed})',
                        osp.join(spec.config_dir, _config_name('lq', key.setting)),
                        osp.join(iters_dir, key.setting, 'lq'), options)
    folder = key.method + (f'__{key.variant}' if key.variant and
                           key.variant != DEFAULT_VARIANT else '')
    work = osp.join(iters_dir, f'teacher{key.teacher_iters}', key.setting, folder)
    config = osp.join(spec.config_dir, _config_name(key.method, key.setting, key.variant))
    from_teacher = key.method == 'ft_lq'
    if not from_teacher:  # ft_lq has no distillation terms for these options to change
        options = options + list(spec.student_cfg_options)
    if is_hicd_method(key.method):
        variant = spec.variant(key.variant)
        options += list(variant.cfg_options)
        from_teacher = variant.from_teacher
    if from_teacher:
        options += list(spec.finetune_cfg_options)
    name = f'{key.setting}/{folder} (seed {key.seed})'
    return TrainJob(name, config, work, options, distiller=True, teacher=teacher)
