"""HiCD distiller: a frozen high-quality teacher guides a low-quality student."""
import copy
import inspect
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import ConfigDict
from mmengine.logging import print_log
from mmengine.model import BaseModel
from torch import Tensor, nn

from hicd_mm.registry import MODELS
from hicd_mm.utils.checkpoint import load_teacher_weights
from ..losses.correlation import shared_feature_preparation
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


def as_stage_tuple(output) -> Tuple[Tensor, ...]:
    """A backbone's output as a tuple of stage maps."""
    return tuple(output) if isinstance(output, (list, tuple)) else (output, )


@MODELS.register_module()
class HiCDDistiller(BaseModel):
    """Hierarchical correlation distillation for change detection in quality-varied pairs.

    Training batches hold a low-quality (LQ) pair followed by its high-quality (HQ) twin
    (``inputs`` of 4*C channels, see :class:`MultiImgPackSegInputs`). The frozen teacher runs
    on the HQ pair, the student on the LQ pair with the same geometry, and the student minimises
    its task loss plus correlation losses between its features and the teacher's:

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
        semantic_feature (dict): Module paths whose outputs are the per-date encoder features
            (``student``/``teacher`` paths, called once per date) and the selected ``stages``
            (``None``: all stages).
        change_feature (dict): Module paths whose *input* is the change feature.
        init_student_from_teacher (bool): Copy the teacher's weights into the student at
            initialisation (architectures must match).
        allow_random_teacher (bool): Allow ``teacher_ckpt=None`` (tests and benchmarks only).
        probe_size (tuple[int, int]): Input size of the dry run that checks the feature paths
            and finds the channel counts given to losses that need them.
        data_preprocessor (dict, optional): Default: the student's data preprocessor.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 student: dict,
                 teacher: Optional[dict] = None,
                 teacher_ckpt: Optional[str] = None,
                 distill_terms: Optional[dict] = None,
                 semantic_feature: dict = dict(student='backbone', teacher='backbone',
                                               stages=None),
                 change_feature: dict = dict(student='decode_head.conv_seg',
                                             teacher='decode_head.conv_seg'),
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
        self.stages = semantic_feature.get('stages')
        self._recorders = dict(
            student_sem=ModuleRecorder(self.student, semantic_feature['student'], 'output'),
            teacher_sem=ModuleRecorder(teacher_model, semantic_feature['teacher'], 'output'),
            student_chg=ModuleRecorder(self.student, change_feature['student'], 'input'),
            teacher_chg=ModuleRecorder(teacher_model, change_feature['teacher'], 'input'))
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
                modules.append(MODELS.build(cfg))
            self.distill_losses[name] = modules
            self.term_features[name] = kind

    @torch.no_grad()
    def _probe_feature_shapes(self, probe_size: Tuple[int, int]) -> dict:
        """Dry-run both models to check the recorded paths and find channel counts."""
        was_training = self.student.training
        self.student.eval()
        x = torch.zeros(1, 2 * self.student.backbone_inchannels, *probe_size)
        feats = {}
        for role, model in (('student', self.student), ('teacher', self.teacher)):
            sem, chg = self._recorders[f'{role}_sem'], self._recorders[f'{role}_chg']
            with sem, chg:
                model.decode_head(model.extract_feat(x))
            feats[role] = (self._semantic(sem)[0], chg.get(0))
        self.student.train(was_training)
        s_sem, t_sem = feats['student'][0], feats['teacher'][0]
        if len(s_sem) != len(t_sem):
            raise ValueError(f'student has {len(s_sem)} selected semantic stages, teacher '
                             f'{len(t_sem)}; set semantic_feature.stages')
        semantic = [(s.shape[1], t.shape[1]) for s, t in zip(s_sem, t_sem)]
        change = [(feats['student'][1].shape[1], feats['teacher'][1].shape[1])]
        return dict(semantic=semantic, change=change)

    def _semantic(self, recorder: ModuleRecorder) -> List[Tuple[Tensor, ...]]:
        """Selected stage maps of t1 and t2 from a backbone recorder."""
        out = []
        for call in (0, 1):
            stages = as_stage_tuple(recorder.get(call))
            if self.stages is not None:
                try:
                    stages = tuple(stages[i] for i in self.stages)
                except IndexError as err:
                    raise IndexError(f'semantic_feature.stages={self.stages} but the backbone '
                                     f'outputs {len(as_stage_tuple(recorder.get(call)))} '
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

    def forward(self, inputs: Tensor, data_samples=None, mode: str = 'tensor'):
        """mmengine entry point: ``'loss'`` (distillation), ``'predict'``, ``'tensor'``."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        student_inputs = self._split_lq_hq(inputs, need_hq=False)[0]
        if mode == 'predict':
            return self.student.predict(student_inputs, data_samples)
        if mode == 'tensor':
            return self.student._forward(student_inputs, data_samples)
        raise RuntimeError(f'invalid mode {mode!r}; only loss, predict and tensor are supported')

    def _split_lq_hq(self, inputs: Tensor, need_hq: bool) -> Tuple[Tensor, Optional[Tensor]]:
        pair = 2 * self.student.backbone_inchannels
        if inputs.shape[1] == 2 * pair:
            return inputs[:, :pair], inputs[:, pair:]
        if inputs.shape[1] == pair and not need_hq:
            return inputs, None
        raise ValueError(
            f'HiCDDistiller got inputs with {inputs.shape[1]} channels; training needs the LQ '
            f'pair followed by its HQ copy ({2 * pair} channels): add a degradation transform '
            'with keep_hq=True to the train pipeline before MultiImgPackSegInputs')

    # ------------------------------------------------------------------ loss
    def loss(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        """Student task losses plus ``distill.loss_<term>`` for every active term."""
        lq, hq = self._split_lq_hq(inputs, need_hq=True)
        rec = self._recorders
        needs_change = 'change' in self.term_features.values()
        if self.term_features:
            with torch.no_grad(), rec['teacher_sem'], rec['teacher_chg']:
                feats = self.teacher.extract_feat(hq)
                if needs_change:
                    self.teacher.decode_head(feats)
        with rec['student_sem'], rec['student_chg']:
            losses = self.student.loss(lq, data_samples)
        if not self.term_features:
            return losses
        student_sem, teacher_sem = self._semantic(rec['student_sem']), self._semantic(
            rec['teacher_sem'])
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
