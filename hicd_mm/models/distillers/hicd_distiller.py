"""HiCD distiller: a frozen high-quality teacher guides a low-quality student."""
import copy
import inspect
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import ConfigDict
from mmengine.logging import print_log
from mmengine.model import BaseModel
from torch import Tensor, nn

from hicd_mm.registry import MODELS, build_in_hicd_scope
from hicd_mm.utils.checkpoint import load_teacher_weights
from ..data_preprocessor import HQPairDataPreprocessor
from ..losses.correlation import shared_feature_preparation
from .feature_points import (SemanticRecorder, as_stage_tuple, count_module_calls,
                             resolve_feature_points)
from .recorder import ModuleRecorder

FEATURE_KINDS = ('semantic', 'semantic_pair', 'change')


# Correlations are compared on at most this many positions per side (adaptive average
# pooling): full-resolution change features (e.g. 256 x 256) cost 16x less at 64 x 64, and
# 64 x 64 = 4096 positions keep the structure the affinities describe. See docs/method.md.
DEFAULT_POOL_SIZE = 64


def default_hicd_terms(sem_self: float = 1.0, sem_cross: float = 1.0, sem_global: float = 1.0,
                       chg_self: float = 1.0, chg_global: float = 1.0,
                       **loss_kwargs) -> dict:
    """The five HiCD correlation terms of ``configs/_base_/hicd/hicd_default.py``.

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
    * ``change``: on the decoder's change feature.

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
            module paths whose *input* is the change feature.
        init_student_from_teacher (bool): Copy the teacher's weights into the student at
            initialisation (architectures must match).
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
            self._recorders[f'{role}_chg'] = ModuleRecorder(model, points['change'], 'input')
        terms = default_hicd_terms() if distill_terms is None else distill_terms
        self.term_features: Dict[str, str] = {}
        self.distill_losses = nn.ModuleDict()
        self._build_terms(terms, probe_size)

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher detector."""
        return self._teacher

    # ------------------------------------------------------------------ build
    def _build_terms(self, terms: dict, probe_size: Tuple[int, int]) -> None:
        active = {}
        for name, term in terms.items():
            if term is None or term['loss'].get('loss_weight', 1.0) == 0:
                continue
            if term.get('feature') not in FEATURE_KINDS:
                raise ValueError(f'distill term {name!r}: feature must be one of '
                                 f'{FEATURE_KINDS}, got {term.get("feature")!r}')
            active[name] = term
        if not active:
            print_log('HiCDDistiller: every distillation term is off; the student trains on '
                      'its task loss only', logger='current')
            return
        shapes = self._probe_feature_shapes(probe_size)
        for name, term in active.items():
            kind = term['feature']
            slots = shapes['change'] if kind == 'change' else shapes['semantic']
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

    @torch.no_grad()
    def _probe_feature_shapes(self, probe_size: Tuple[int, int]) -> dict:
        """Dry-run both models to check the recorded paths and find channel counts."""
        was_training = self.student.training
        self.student.eval()
        feats = {}
        for role, model in (('student', self.student), ('teacher', self.teacher)):
            x = torch.zeros(1, 2 * getattr(model, 'backbone_inchannels', 3), *probe_size)
            sem, chg = self._recorders[f'{role}_sem'], self._recorders[f'{role}_chg']
            counts, handles = count_module_calls(model)
            try:
                with sem, chg:
                    model.decode_head(model.extract_feat(x))
            finally:
                for handle in handles:
                    handle.remove()
            sem.check_calls(counts)
            feats[role] = (self._semantic(role)[0], chg.get(0))
        self.student.train(was_training)
        s_sem, t_sem = feats['student'][0], feats['teacher'][0]
        if len(s_sem) != len(t_sem):
            raise ValueError(f'student has {len(s_sem)} selected semantic stages, teacher '
                             f'{len(t_sem)}; set semantic_feature.stages, e.g. '
                             'dict(student=[-1], teacher=[-1]) for the last stage of each')
        semantic = [(s.shape[1], t.shape[1]) for s, t in zip(s_sem, t_sem)]
        change = [(feats['student'][1].shape[1], feats['teacher'][1].shape[1])]
        return dict(semantic=semantic, change=change)

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
        needs_change = 'change' in self.term_features.values()
        if self.term_features:
            with torch.no_grad(), rec['teacher_sem'], rec['teacher_chg']:
                feats = self.teacher.extract_feat(inputs_hq)
                if needs_change:
                    self.teacher.decode_head(feats)
        with rec['student_sem'], rec['student_chg']:
            losses = self.student.loss(inputs, data_samples)
        if not self.term_features:
            return losses
        student_sem, teacher_sem = self._semantic('student'), self._semantic('teacher')
        student_chg = rec['student_chg'].get(0) if needs_change else None
        teacher_chg = rec['teacher_chg'].get(0) if needs_change else None
        with shared_feature_preparation():
            losses.update(self._distill_losses(student_sem, teacher_sem, student_chg,
                                               teacher_chg))
        return losses

    def _distill_losses(self, student_sem: List[Tuple[Tensor, ...]],
                        teacher_sem: List[Tuple[Tensor, ...]], student_chg: Optional[Tensor],
                        teacher_chg: Optional[Tensor]) -> Dict[str, Tensor]:
        """``distill.loss_<term>`` of every active term from the recorded features."""
        losses = {}
        for name, kind in self.term_features.items():
            modules = self.distill_losses[name]
            if kind == 'change':
                value = modules[0](student_chg, teacher_chg)
            elif kind == 'semantic':
                value = self._mean([
                    modules[s](student_sem[d][s], teacher_sem[d][s])
                    for s in range(len(modules)) for d in (0, 1)])
            else:
                value = self._mean([
                    modules[s](student_sem[0][s], student_sem[1][s], teacher_sem[0][s],
                               teacher_sem[1][s]) for s in range(len(modules))])
            losses[f'distill.loss_{name}'] = value
        return losses

    @staticmethod
    def _mean(values: Sequence[Tensor]) -> Tensor:
        return torch.stack(list(values)).mean()
