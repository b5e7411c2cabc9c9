"""HiCD distiller: a frozen high-quality teacher guides a low-quality student.

Also the distiller's data preprocessor, :class:`HQPairDataPreprocessor`, which runs the
student's own preprocessor on the LQ pair and on the HQ pair (``inputs_hq``).
"""
import copy
import inspect
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import ConfigDict
from mmengine.logging import print_log
from mmengine.model import BaseDataPreprocessor, BaseModel
from torch import Tensor, nn

from hicd_mm.registry import MODELS, build_in_hicd_scope
from hicd_mm.utils.checkpoint import load_teacher_weights, state_dict_mismatch
from ..losses.base_correlation_loss import BaseCorrelationLoss
from ..losses.correlation import FeaturePreparation, PreparedPair, prepare_pair
from .feature_points import (ChangeFeatureRecorder, ModuleRecorder, SemanticRecorder,
                             count_module_calls, resolve_feature_points)

# semantic: per encoder stage and date; semantic_pair: per stage, the (t1, t2) pair;
# change: the decoder feature fed to the classifier; change_logits: the classifier's output.
FEATURE_KINDS = ('semantic', 'semantic_pair', 'change', 'change_logits')


# Correlations are compared on at most this many positions per side (adaptive average
# pooling): full-resolution change features (e.g. 256 x 256) cost 16x less at 64 x 64, and
# 64 x 64 = 4096 positions keep the structure the affinities describe. See docs/method.md.
DEFAULT_POOL_SIZE = 64


@MODELS.register_module()
class HQPairDataPreprocessor(BaseDataPreprocessor):
    """Run a detector's own data preprocessor on the LQ pair and, separately, on the HQ pair.

    HiCD batches carry the high-quality copy of each pair as its own field ``inputs_hq`` (see
    :class:`~hicd_mm.datasets.transforms.PackHQPair`). The wrapped preprocessor (the
    student's: Open-CD's, mmseg's or ours, unchanged) processes ``inputs`` and ``inputs_hq`` with
    the same instance and settings, so both pairs get identical colour conversion,
    normalisation and padding. Batches without ``inputs_hq`` (validation, test) pass through.

    Args:
        preprocessor (dict | nn.Module, optional): The wrapped data preprocessor (a config
            resolves in the config's default scope, like the student's own). ``None``:
            mmengine's ``BaseDataPreprocessor``.
    """

    def __init__(self, preprocessor: Optional[Union[dict, nn.Module]] = None) -> None:
        super().__init__()
        if preprocessor is None:  # a detector config without one: mmengine's default
            preprocessor = BaseDataPreprocessor()
        elif isinstance(preprocessor, dict):
            preprocessor = MODELS.build(preprocessor)
        self.preprocessor = preprocessor

    def forward(self, data: dict, training: bool = False) -> dict:
        """Preprocess ``inputs`` (with ``data_samples``) and ``inputs_hq`` alike.

        Args:
            data (dict): ``inputs``, ``data_samples`` and optionally ``inputs_hq`` (lists of
                per-sample tensors from the dataloader).
            training (bool): Whether the model is training.

        Returns:
            dict: The wrapped preprocessor's output, plus ``inputs_hq`` (N, C, H, W) when the
            batch had it.
        """
        inputs_hq = data.get('inputs_hq')
        main = {k: v for k, v in data.items() if k != 'inputs_hq'}
        # The wrapped preprocessor pads labels and writes padding metainfo into data_samples;
        # the HQ pass works on a copy so the samples are processed exactly once.
        hq_samples = copy.deepcopy(data.get('data_samples')) if inputs_hq is not None else None
        out = self.preprocessor(main, training)
        if inputs_hq is None:
            return out
        hq_out = self.preprocessor(dict(inputs=inputs_hq, data_samples=hq_samples), training)
        if hq_out['inputs'].shape != out['inputs'].shape:
            raise RuntimeError(
                f'HQPairDataPreprocessor: preprocessed inputs_hq has shape '
                f'{tuple(hq_out["inputs"].shape)} but inputs {tuple(out["inputs"].shape)}; '
                'the LQ and HQ pairs of a sample must have the same size')
        out['inputs_hq'] = hq_out['inputs']
        return out


def default_hicd_terms(sem_self: float = 1.0, sem_cross: float = 1.0, sem_global: float = 1.0,
                       chg_self: float = 1.0, chg_global: float = 1.0,
                       **loss_kwargs) -> dict:
    """The five HiCD correlation terms of ``configs/_base_/hicd/hicd_default.py``.

    ``*_self``: within one image; ``sem_cross``: between the two dates of a pair;
    ``*_global``: between positions of different images of the batch
    (:class:`GlobalCorrelationLoss`, ``blocks='cross_image'``).

    Args:
        sem_self, sem_cross, sem_global, chg_self, chg_global (float): Term weights; 0
            switches a term off.
        **loss_kwargs: Extra arguments of every correlation loss (default
            ``pool_size=DEFAULT_POOL_SIZE``).

    Returns:
        dict: ``distill_terms`` for :class:`HiCDDistiller`.
    """
    loss_kwargs.setdefault('pool_size', DEFAULT_POOL_SIZE)

    def term(feature: str, loss_type: str, weight: float) -> dict:
        return dict(feature=feature,
                    loss=dict(type=loss_type, loss_weight=weight, **loss_kwargs))

    return dict(
        sem_self=term('semantic', 'SelfCorrelationLoss', sem_self),
        sem_cross=term('semantic_pair', 'CrossCorrelationLoss', sem_cross),
        sem_global=term('semantic', 'GlobalCorrelationLoss', sem_global),
        chg_self=term('change', 'SelfCorrelationLoss', chg_self),
        chg_global=term('change', 'GlobalCorrelationLoss', chg_global))


@MODELS.register_module()
class HiCDDistiller(BaseModel):
    """Hierarchical correlation distillation for change detection in quality-varied pairs.

    Training batches hold the low-quality (LQ) pair as ``inputs`` and its high-quality (HQ) twin
    as ``inputs_hq`` (packed by :class:`PackHQPair`, preprocessed like ``inputs`` by
    :class:`HQPairDataPreprocessor` around the student's own data preprocessor). The frozen
    teacher runs on the HQ pair, the student on the LQ pair with the same geometry, and the
    student minimises its task loss plus correlation losses between its features and the
    teacher's:

    * ``semantic``: per encoder stage and per date (t1, t2) -- one loss call each, averaged;
    * ``semantic_pair``: per encoder stage, on the (t1, t2) pair -- cross-correlation;
    * ``change``: on the decoder's change feature (the input of the classifier, before
      the head's dropout);
    * ``change_logits``: on the classifier's output (response KD, :class:`ResponseKDLoss`).

    Each recorded map pair is prepared (resized, pooled, flattened, L2-normalised) once per
    set of preparation options and the prepared tensors are handed to the correlation losses
    (``forward_prepared``); losses with ``requires_label`` (change-aware options) also get the
    ground-truth change maps of the batch. :meth:`set_distill_weight_scale` scales the
    configured term weights (used by ``DistillWeightScheduleHook``) and
    :meth:`request_gradient_stats` measures the task vs distillation student gradients
    (``DistillGradientRatioHook``).

    In val/test only the student runs, on the LQ pair. The teacher is kept outside the module
    tree: it is never in ``state_dict()`` (so never in checkpoints), never seen by the
    optimizer or by DDP, has ``requires_grad=False`` and is always in eval mode.

    Args:
        student (dict): Student detector config.
        teacher (dict, optional): Teacher detector config (default: same as the student).
        teacher_ckpt (str, optional): Checkpoint of the teacher trained on HQ pairs, or the
            work dir of that training (its ``last_checkpoint`` is used). A relative path is
            relative to the current directory (where ``tools/train.py`` runs).
        allow_distiller_teacher (bool): Accept a HiCD distiller checkpoint as
            ``teacher_ckpt`` (its student, trained on LQ pairs); refused by default.
        distill_terms (dict, optional): ``name -> dict(feature=KIND, loss=LOSS_CFG)``;
            default: :func:`default_hicd_terms`. A term set to ``None`` or with
            ``loss_weight=0`` is not built (ablations).
        feature_preset (str | dict): Feature points of a detector family (a key of
            :data:`~hicd_mm.models.distillers.feature_points.FEATURE_PRESETS`: ``siamese``,
            ``changer``, ``snunet_ecam``, ``tinycd``), or ``dict(student=..., teacher=...)``.
        semantic_feature (dict, optional): Overrides of the preset: ``student``/``teacher``
            module path(s) whose outputs are the encoder features, ``split``
            (``'per_call'``: one call per date; ``'channel_halves'``: one call, stage maps
            ``[t1 | t2]``; or ``dict(student=..., teacher=...)``) and the selected ``stages``
            (``None``: all; a list, or ``dict(student=[...], teacher=[...])`` for architectures
            with different depths).
        change_feature (dict, optional): Overrides of the preset: ``student``/``teacher``
            module paths whose *input* is the change feature and whose output, for
            ``change_logits`` terms, are the class logits (the classifier); and
            ``before_dropout`` (default True): when the classifier's input is the output of
            the head's ``dropout`` layer, record the dropout's input (see
            :class:`ChangeFeatureRecorder`).
        init_student_from_teacher (bool): Copy the teacher's weights into the student at
            initialisation; the architectures must match (checked at build).
        allow_random_teacher (bool): Allow ``teacher_ckpt=None`` (tests and benchmarks only).
        probe_size (tuple[int, int]): Input size of the dry run that checks the feature paths
            and finds the channel counts given to losses that need them.
        data_preprocessor (dict, optional): Default: the student's data preprocessor. It is
            wrapped in :class:`HQPairDataPreprocessor` so that ``inputs_hq`` gets the same
            treatment as ``inputs``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 student: dict,
                 teacher: Optional[dict] = None,
                 teacher_ckpt: Optional[str] = None,
                 distill_terms: Optional[dict] = None,
                 feature_preset: Union[str, dict] = 'siamese',
                 semantic_feature: Optional[dict] = None,
                 change_feature: Optional[dict] = None,
                 init_student_from_teacher: bool = False,
                 allow_random_teacher: bool = False,
                 allow_distiller_teacher: bool = False,
                 probe_size: Tuple[int, int] = (64, 64),
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        student = ConfigDict(copy.deepcopy(student))
        teacher = ConfigDict(copy.deepcopy(teacher if teacher is not None else student))
        if data_preprocessor is None:
            data_preprocessor = student.get('data_preprocessor')
        if not isinstance(data_preprocessor, HQPairDataPreprocessor) and not (
                isinstance(data_preprocessor, dict)
                and data_preprocessor.get('type') in ('HQPairDataPreprocessor',
                                                      'hicd_mm.HQPairDataPreprocessor')):
            data_preprocessor = dict(type=HQPairDataPreprocessor,
                                     preprocessor=data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.student = MODELS.build(student)
        teacher_model = MODELS.build(teacher)
        if teacher_ckpt is not None:
            load_teacher_weights(teacher_model, teacher_ckpt, allow_distiller_teacher)
        elif not allow_random_teacher:
            raise ValueError('HiCDDistiller needs teacher_ckpt (a detector trained on HQ '
                             'pairs); set allow_random_teacher=True only for tests')
        teacher_model.requires_grad_(False)
        teacher_model.eval()
        # Kept out of the module tree on purpose (see the class docstring).
        object.__setattr__(self, '_teacher', teacher_model)
        self.teacher_ckpt = teacher_ckpt
        self.init_student_from_teacher = init_student_from_teacher
        semantic_feature = dict(semantic_feature or {})
        change_feature = dict(change_feature or {})
        unknown = set(change_feature) - {'student', 'teacher', 'before_dropout'}
        if unknown:
            raise KeyError(f'change_feature has unknown key(s) {sorted(unknown)}; keys: '
                           "'student', 'teacher' (module paths), 'before_dropout' (bool)")
        before_dropout = change_feature.pop('before_dropout', True)
        if not isinstance(before_dropout, bool):
            raise ValueError(f'change_feature.before_dropout must be True or False, got '
                             f'{before_dropout!r}')
        presets = feature_preset if isinstance(feature_preset, dict) else dict(
            student=feature_preset, teacher=feature_preset)
        stages = semantic_feature.get('stages')
        self.stages = stages if isinstance(stages, dict) else dict(student=stages,
                                                                   teacher=stages)
        self._recorders = {}
        for role, model in (('student', self.student), ('teacher', teacher_model)):
            split = semantic_feature.get('split')
            points = resolve_feature_points(
                presets[role], semantic_feature.get(role),
                split.get(role) if isinstance(split, dict) else split, change_feature.get(role))
            self._recorders[f'{role}_sem'] = SemanticRecorder(model, points['semantic'],
                                                              points['split'], role)
            self._recorders[f'{role}_chg'] = ChangeFeatureRecorder(model, points['change'],
                                                                   before_dropout)
            self._recorders[f'{role}_logits'] = ModuleRecorder(model, points['change'],
                                                               'output')
        if init_student_from_teacher:
            self._check_student_matches_teacher()
        terms = default_hicd_terms() if distill_terms is None else distill_terms
        self.term_features: Dict[str, str] = {}
        self.distill_losses = nn.ModuleDict()
        self._base_loss_weights: Dict[str, List[float]] = {}
        self._gradient_probe_requested = False
        self._gradient_stats: Optional[Dict[str, float]] = None
        self._build_terms(terms, probe_size)

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher detector."""
        return self._teacher

    # ------------------------------------------------------------------ build
    def _build_terms(self, terms: dict, probe_size: Tuple[int, int]) -> None:
        active = {}
        for name, term in terms.items():
            if term is None:
                continue
            weight = term['loss'].get('loss_weight', 1.0)
            if not (isinstance(weight, (int, float)) and weight >= 0):
                raise ValueError(f'distill_terms.{name}.loss.loss_weight must be a number >= 0, '
                                 f'got {weight!r}')
            if weight == 0:
                continue
            if term.get('feature') not in FEATURE_KINDS:
                raise ValueError(f'distill term {name!r}: feature must be one of '
                                 f'{FEATURE_KINDS}, got {term.get("feature")!r}')
            active[name] = term
        if not active:
            print_log('HiCDDistiller: every distillation term is off; the student trains on '
                      'its task loss only', logger='current')
            return
        needs_logits = [n for n, t in active.items() if t['feature'] == 'change_logits']
        if needs_logits:
            self._check_classifier(needs_logits[0])
        shapes = self._probe_feature_shapes(probe_size)
        for name, term in active.items():
            kind = term['feature']
            slots = shapes['semantic'] if kind.startswith('semantic') else shapes[kind]
            if not slots:
                raise ValueError(f'distill_terms.{name} (feature={kind!r}): the recorded '
                                 'classifier output is not a (B, K, H, W) logit map')
            if kind == 'change_logits' and slots[0][0] != slots[0][1]:
                raise ValueError(f'distill_terms.{name} (feature={kind!r}): student and '
                                 f'teacher classifiers output {slots[0][0]} and {slots[0][1]} '
                                 'classes; response KD needs the same classes')
            modules = nn.ModuleList()
            for s_channels, t_channels in slots:
                cfg = ConfigDict(copy.deepcopy(term['loss']))
                loss_cls = MODELS.get(cfg['type'])
                if loss_cls is None:
                    raise KeyError(f'distill term {name!r}: unknown loss type {cfg["type"]!r}')
                params = inspect.signature(loss_cls.__init__).parameters
                if 'student_channels' in params:
                    cfg.setdefault('student_channels', s_channels)
                if 'teacher_channels' in params:
                    cfg.setdefault('teacher_channels', t_channels)
                # hicd_mm's loss types, whatever the config's default scope (e.g. opencd)
                modules.append(build_in_hicd_scope(MODELS, cfg))
            self.distill_losses[name] = modules
            self.term_features[name] = kind
            self._base_loss_weights[name] = [float(m.loss_weight) for m in modules]

    def _check_classifier(self, term: str) -> None:
        """A ``change_logits`` term needs the change-feature module to be the classifier."""
        for role, model in (('student', self.student), ('teacher', self.teacher)):
            path = self._recorders[f'{role}_logits'].path
            module = model.get_submodule(path)
            if not isinstance(module, (nn.Conv2d, nn.Conv1d, nn.Linear)):
                raise ValueError(
                    f'distill_terms.{term} (feature=\'change_logits\') distils the class logits '
                    f'that the classifier at change_feature.{role}={path!r} outputs, but that '
                    f'module is a {type(module).__name__}, not a convolution or linear '
                    'classifier: this head has no logits there; point change_feature at its '
                    'classifier (e.g. decode_head.conv_seg) or drop the term')

    def _check_student_matches_teacher(self) -> None:
        """``init_student_from_teacher`` copies every parameter: the architectures must match."""
        problems = state_dict_mismatch(self.student.state_dict(), self.teacher.state_dict(),
                                       labels=('student-only', 'teacher-only'))
        if problems:
            raise ValueError('init_student_from_teacher=True copies the teacher into the '
                             'student, but their architectures differ (shapes: student vs '
                             'teacher): ' + '; '.join(problems))

    @torch.no_grad()
    def _probe_feature_shapes(self, probe_size: Tuple[int, int]) -> dict:
        """Dry-run both models to check the recorded paths and find channel counts."""
        was_training = self.student.training
        self.student.eval()
        feats = {}
        for role, model in (('student', self.student), ('teacher', self.teacher)):
            x = torch.zeros(1, 2 * getattr(model, 'backbone_inchannels', 3), *probe_size)
            sem, chg = self._recorders[f'{role}_sem'], self._recorders[f'{role}_chg']
            logits = self._recorders[f'{role}_logits']
            counts, handles = count_module_calls(model)
            try:
                with sem, chg, logits:
                    model.decode_head(model.extract_feat(x))
            finally:
                for handle in handles:
                    handle.remove()
            sem.check_calls(counts)
            feats[role] = (self._semantic(role)[0], chg.get(0), logits.get(0))
        self.student.train(was_training)
        s_sem, t_sem = feats['student'][0], feats['teacher'][0]
        if len(s_sem) != len(t_sem):
            raise ValueError(f'student has {len(s_sem)} selected semantic stages, teacher '
                             f'{len(t_sem)}; set semantic_feature.stages, e.g. '
                             'dict(student=[-1], teacher=[-1]) for the last stage of each')
        semantic = [(s.shape[1], t.shape[1]) for s, t in zip(s_sem, t_sem)]
        change = [(feats['student'][1].shape[1], feats['teacher'][1].shape[1])]
        s_logits, t_logits = feats['student'][2], feats['teacher'][2]
        logits = []
        if all(isinstance(z, Tensor) and z.dim() == 4 for z in (s_logits, t_logits)):
            logits = [(s_logits.shape[1], t_logits.shape[1])]
        return dict(semantic=semantic, change=change, change_logits=logits)

    def _semantic(self, role: str) -> List[Tuple[Tensor, ...]]:
        """Selected stage maps of t1 and t2 of ``role`` (``'student'`` or ``'teacher'``)."""
        selected = self.stages[role]
        out = []
        for stages in self._recorders[f'{role}_sem'].per_date():
            if selected is not None:
                try:
                    stages = tuple(stages[i] for i in selected)
                except IndexError as err:
                    raise IndexError(f'semantic_feature.stages={selected} ({role}) but its '
                                     f'semantic feature points give {len(stages)} '
                                     'stage(s)') from err
            out.append(stages)
        return out

    def init_weights(self) -> None:
        """Initialise the student (and the loss adapters), then optionally copy the teacher."""
        super().init_weights()
        if self.init_student_from_teacher:
            self.student.load_state_dict(self.teacher.state_dict(), strict=True)

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> 'HiCDDistiller':
        """Set the student's mode; the whole teacher stays in eval mode (BN and dropout)."""
        super().train(mode)
        self.teacher.eval()
        return self

    def _apply(self, fn, *args, **kwargs):
        """Move/cast the hidden teacher together with the distiller (``.to()``, ``.cuda()``)."""
        super()._apply(fn, *args, **kwargs)
        self.teacher._apply(fn, *args, **kwargs)
        return self

    def forward(self, inputs: Tensor, data_samples=None, mode: str = 'tensor',
                inputs_hq: Optional[Tensor] = None):
        """mmengine entry point: ``'loss'`` (distillation), ``'predict'``, ``'tensor'``.

        Args:
            inputs (Tensor): The LQ pair (N, 2C, H, W), preprocessed.
            data_samples (list, optional): The samples of the batch.
            mode (str): ``'loss'``, ``'predict'`` or ``'tensor'``.
            inputs_hq (Tensor, optional): The HQ pair, preprocessed like ``inputs``; needed
                for ``'loss'``, unused otherwise (only the student predicts).
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples, inputs_hq)
        if mode == 'predict':
            return self.student.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.student._forward(inputs, data_samples)
        raise RuntimeError(f'invalid mode {mode!r}; only loss, predict and tensor are supported')

    @staticmethod
    def _check_hq(inputs: Tensor, inputs_hq: Optional[Tensor]) -> None:
        if inputs_hq is None:
            raise ValueError(
                'HiCDDistiller.loss got no inputs_hq (the high-quality copy of each pair that '
                'the teacher needs). The train pipeline must end with '
                "dict(type='hicd_mm.DegradeImage', ..., keep_hq=True) right before the packing "
                "step and the packing step wrapped as dict(type='hicd_mm.PackHQPair', "
                'packer=<the host packing step>), which packs the HQ pair as inputs_hq (plain '
                'packers drop it). See docs/opencd.md.')
        if inputs_hq.shape != inputs.shape:
            raise ValueError(f'HiCDDistiller: inputs_hq has shape {tuple(inputs_hq.shape)} but '
                             f'inputs {tuple(inputs.shape)}; both must be the same pairs')

    # ------------------------------------------------------------------ loss
    def loss(self, inputs: Tensor, data_samples,
             inputs_hq: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Student task losses plus ``distill.loss_<term>`` for every active term.

        Args:
            inputs (Tensor): The LQ pair (N, 2C, H, W), for the student.
            data_samples (list): The samples (labels) of the batch.
            inputs_hq (Tensor): The HQ pair, same shape, for the teacher.

        Returns:
            dict: Loss name -> tensor.
        """
        self._check_hq(inputs, inputs_hq)
        rec = self._recorders
        kinds = set(self.term_features.values())
        needs_head = bool(kinds & {'change', 'change_logits'})
        if self.term_features:
            with torch.no_grad(), rec['teacher_sem'], rec['teacher_chg'], \
                    rec['teacher_logits']:
                feats = self.teacher.extract_feat(inputs_hq)
                if needs_head:
                    self.teacher.decode_head(feats)
        with rec['student_sem'], rec['student_chg'], rec['student_logits']:
            losses = self.student.loss(inputs, data_samples)
        if not self.term_features:
            return losses
        student, teacher = (self._recorded_features(role, kinds)
                            for role in ('student', 'teacher'))
        label = self._change_label(data_samples) if self._needs_label() else None
        losses.update(self._distill_losses(student, teacher, label))
        if self._gradient_probe_requested:
            self._gradient_probe_requested = False
            self._gradient_stats = self._measure_gradient_stats(losses)
        return losses

    def _recorded_features(self, role: str, kinds: set) -> Dict[str, Any]:
        """What the recorders of ``role`` hold after a forward pass, by feature kind."""
        rec = self._recorders
        return dict(
            semantic=self._semantic(role),
            change=rec[f'{role}_chg'].get(0) if 'change' in kinds else None,
            change_logits=rec[f'{role}_logits'].get(0) if 'change_logits' in kinds else None)

    def _needs_label(self) -> bool:
        return any(getattr(m, 'requires_label', False)
                   for modules in self.distill_losses.values() for m in modules)

    @staticmethod
    def _change_label(data_samples) -> Tensor:
        """The ground-truth change maps of the batch, ``(B, 1, H, W)``."""
        return torch.stack([sample.gt_sem_seg.data for sample in data_samples])

    def _distill_losses(self, student: Dict[str, Any], teacher: Dict[str, Any],
                        label: Optional[Tensor]) -> Dict[str, Tensor]:
        """``distill.loss_<term>`` of every active term from the recorded features.

        Every recorded map pair is prepared (resized, pooled, flattened, normalised) once per
        set of preparation options and handed to all correlation losses that use those
        options; other losses (baselines, response KD) get the raw maps.

        Args:
            student (dict): ``semantic`` (``[t1 stages, t2 stages]``), ``change`` and
                ``change_logits`` maps of the student.
            teacher (dict): The same for the teacher.
            label (Tensor, optional): Ground truth ``(B, 1, H, W)`` for change-aware losses.

        Returns:
            dict: ``distill.loss_<term>`` -> scalar.
        """
        prepared: Dict[Tuple[Any, ...], PreparedPair] = {}

        def maps(slot: Tuple[Any, ...]) -> Tuple[Tensor, Tensor]:
            """The (student, teacher) maps of ``(kind, )`` or ``('semantic', date, stage)``."""
            if slot[0] == 'semantic':
                _, date, stage = slot
                return student['semantic'][date][stage], teacher['semantic'][date][stage]
            return student[slot[0]], teacher[slot[0]]

        def pair(slot: Tuple[Any, ...], preparation: FeaturePreparation) -> PreparedPair:
            key = (slot, preparation)
            if key not in prepared:
                prepared[key] = prepare_pair(*maps(slot), preparation)
            return prepared[key]

        def label_for(module: nn.Module) -> dict:
            return dict(label=label) if getattr(module, 'requires_label', False) else {}

        def apply(module: nn.Module, slot: Tuple[Any, ...]) -> Tensor:
            if isinstance(module, BaseCorrelationLoss):
                return module.forward_prepared(pair(slot, module.preparation),
                                               **label_for(module))
            return module(*maps(slot), **label_for(module))

        losses = {}
        for name, kind in self.term_features.items():
            modules = self.distill_losses[name]
            if kind in ('change', 'change_logits'):
                value = apply(modules[0], (kind, ))
            elif kind == 'semantic':
                value = self._mean([apply(modules[s], ('semantic', d, s))
                                    for s in range(len(modules)) for d in (0, 1)])
            else:
                values = []
                for s, module in enumerate(modules):
                    if isinstance(module, BaseCorrelationLoss):
                        values.append(module.forward_prepared(
                            pair(('semantic', 0, s), module.preparation),
                            pair(('semantic', 1, s), module.preparation)))
                    else:
                        s_t1, t_t1 = maps(('semantic', 0, s))
                        s_t2, t_t2 = maps(('semantic', 1, s))
                        values.append(module(s_t1, s_t2, t_t1, t_t2))
                value = self._mean(values)
            losses[f'distill.loss_{name}'] = value
        return losses

    @staticmethod
    def _mean(values: Sequence[Tensor]) -> Tensor:
        return torch.stack(list(values)).mean()

    # ------------------------------------------------------------------ schedule
    def set_distill_weight_scale(self, scale: float, term: Optional[str] = None) -> None:
        """Scale the configured ``loss_weight`` of one term (or of every term).

        The scale multiplies the weight each loss module was built with (it does not
        compound), so a schedule can set it every iteration.

        Args:
            scale (float): Factor ``>= 0``.
            term (str, optional): Name of a term in ``distill_losses``; ``None``: all terms.
        """
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale >= 0):
            raise ValueError(f'distill weight scale must be a finite number >= 0, got {scale!r}')
        if term is not None and term not in self.distill_losses:
            raise KeyError(f'unknown distillation term {term!r}; active terms: '
                           f'{list(self.distill_losses)}')
        for name in ([term] if term is not None else list(self.distill_losses)):
            for module, base in zip(self.distill_losses[name], self._base_loss_weights[name]):
                module.loss_weight = base * float(scale)

    # ------------------------------------------------------------------ diagnostics
    def request_gradient_stats(self) -> None:
        """Measure, in the next ``loss`` call, the student gradients of task vs distillation.

        Costs two extra backward passes in that call (:meth:`pop_gradient_stats`).
        """
        self._gradient_probe_requested = True

    def pop_gradient_stats(self) -> Optional[Dict[str, float]]:
        """The last measurement of :meth:`request_gradient_stats` (once), or ``None``."""
        stats, self._gradient_stats = self._gradient_stats, None
        return stats

    def _measure_gradient_stats(self, losses: Dict[str, Tensor]) -> Dict[str, float]:
        """Norms and cosine of the student gradients of the task and the distillation sums."""
        params = [p for p in self.student.parameters() if p.requires_grad]
        task = [v for k, v in losses.items() if 'loss' in k and not k.startswith('distill.')]
        distill = [v for k, v in losses.items() if 'loss' in k and k.startswith('distill.')]

        def flat_grad(values: List[Tensor]) -> Tensor:
            if not values:
                return torch.zeros(())
            grads = torch.autograd.grad(sum(values), params, retain_graph=True,
                                        allow_unused=True)
            return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten()
                              for g, p in zip(grads, params)])

        g_task, g_distill = flat_grad(task), flat_grad(distill)
        n_task, n_distill = g_task.norm().item(), g_distill.norm().item()
        cos = ((g_task * g_distill).sum().item() / (n_task * n_distill)
               if n_task > 0 and n_distill > 0 else 0.0)
        return dict(task_grad_norm=n_task, distill_grad_norm=n_distill,
                    distill_task_ratio=n_distill / n_task if n_task > 0 else float('inf'),
                    distill_task_cosine=cos)
