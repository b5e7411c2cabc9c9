"""Schedule the weight of the distillation terms over a training run."""
import math
from typing import Optional, Sequence

from mmengine.hooks import Hook

from hicd_mm.registry import HOOKS
from .distiller_access import distiller_with

SCHEDULES = ('constant', 'linear', 'cosine')


def distill_weight_scale(progress: float, schedule: str = 'constant', begin: float = 0.0,
                         end: Optional[float] = None, floor: float = 0.0,
                         stop_at: Optional[float] = None) -> float:
    """The factor on the distillation weights at a fraction ``progress`` of the run.

    1 before ``begin``; from ``begin`` to ``end`` a ``linear`` or ``cosine`` decay from 1 to
    ``floor`` (``constant``: stays 1); ``floor`` after ``end``; 0 from ``stop_at`` on.

    Args:
        progress (float): Iterations done / total iterations, in ``[0, 1]``.
        schedule (str): ``'constant'``, ``'linear'`` or ``'cosine'``.
        begin (float): Fraction of the run where the decay starts.
        end (float, optional): Fraction where it reaches ``floor`` (default: the end, 1).
        floor (float): Factor after the decay, in ``[0, 1]``.
        stop_at (float, optional): Fraction from which distillation is off (factor 0).

    Returns:
        float: The factor.
    """
    if stop_at is not None and progress >= stop_at:
        return 0.0
    if schedule == 'constant' or progress <= begin:
        return 1.0
    end = 1.0 if end is None else end
    if progress >= end:
        return floor
    t = (progress - begin) / (end - begin)
    shape = 1 - t if schedule == 'linear' else 0.5 * (1 + math.cos(math.pi * t))
    return floor + (1 - floor) * shape


@HOOKS.register_module()
class DistillWeightScheduleHook(Hook):
    """Scale the distillation weights of a :class:`HiCDDistiller` by a schedule.

    Before every training iteration the factor of :func:`distill_weight_scale` at
    ``runner.iter / runner.max_iters`` is applied with
    ``distiller.set_distill_weight_scale(scale, term)`` -- to every term, or to each term in
    ``terms`` -- and logged as the scalar ``train/distill_weight_scale`` (``...scale.<term>``
    per term). Several hooks may schedule different terms. Precedents: mmrazor's stop-
    distillation hook; Cho & Hariharan (ICCV 2019) find KD can hurt late in training.

    Args:
        schedule (str): ``'constant'``, ``'linear'`` or ``'cosine'``.
        begin (float): Fraction of the run where the decay starts, in ``[0, 1)``.
        end (float, optional): Fraction where the decay reaches ``floor``, in ``(begin, 1]``
            (default 1).
        floor (float): Factor after the decay, in ``[0, 1]``.
        stop_at (float, optional): Fraction of the run from which distillation is off, in
            ``(0, 1]``.
        terms (Sequence[str], optional): Terms to schedule (names of ``distill_terms``);
            default: all.
    """

    priority = 'NORMAL'

    def __init__(self, schedule: str = 'constant', begin: float = 0.0,
                 end: Optional[float] = None, floor: float = 0.0,
                 stop_at: Optional[float] = None,
                 terms: Optional[Sequence[str]] = None) -> None:
        if schedule not in SCHEDULES:
            raise ValueError(f'DistillWeightScheduleHook: schedule must be one of {SCHEDULES}, '
                             f'got {schedule!r}')

        def fraction(key: str, value, low: float, high: float, low_open: bool = False) -> None:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
                low < value <= high if low_open else low <= value <= high)
            if not ok:
                bounds = f'({low}, {high}]' if low_open else f'[{low}, {high}]'
                raise ValueError(f'DistillWeightScheduleHook: {key} must be a fraction of the '
                                 f'run in {bounds}, got {value!r}')

        fraction('begin', begin, 0.0, 1.0)
        if begin >= 1:
            raise ValueError(f'DistillWeightScheduleHook: begin must be < 1, got {begin!r}')
        if end is not None:
            fraction('end', end, 0.0, 1.0)
            if end <= begin:
                raise ValueError(f'DistillWeightScheduleHook: the decay end ({end}) must come '
                                 f'after its begin ({begin})')
        if not (isinstance(floor, (int, float)) and not isinstance(floor, bool)
                and floor >= 0):
            raise ValueError(f'DistillWeightScheduleHook: floor is a weight factor and must be '
                             f'>= 0, got {floor!r}')
        if floor > 1:
            raise ValueError(f'DistillWeightScheduleHook: floor must be <= 1 (a decay), got '
                             f'{floor!r}')
        if stop_at is not None:
            fraction('stop_at', stop_at, 0.0, 1.0, low_open=True)
        if terms is not None:
            if isinstance(terms, str) or not all(isinstance(t, str) for t in terms):
                raise ValueError('DistillWeightScheduleHook: terms must be a list of term '
                                 f'names, got {terms!r}')
            terms = list(terms)
        self.schedule = schedule
        self.begin = float(begin)
        self.end = None if end is None else float(end)
        self.floor = float(floor)
        self.stop_at = None if stop_at is None else float(stop_at)
        self.terms = terms

    @staticmethod
    def _distiller(runner):
        return distiller_with(runner, 'set_distill_weight_scale', 'DistillWeightScheduleHook')

    def before_train(self, runner) -> None:
        """Check the scheduled term names against the distiller's active terms."""
        model = self._distiller(runner)
        unknown = [t for t in self.terms or [] if t not in model.distill_losses]
        if unknown:
            raise KeyError(f'DistillWeightScheduleHook: terms {unknown} are not active '
                           f'distillation terms; active: {list(model.distill_losses)}')

    def scale_at(self, iteration: int, max_iters: int) -> float:
        """The factor before iteration ``iteration`` (0-based) of ``max_iters``."""
        progress = iteration / max_iters if max_iters else 0.0
        return distill_weight_scale(progress, self.schedule, self.begin, self.end,
                                    self.floor, self.stop_at)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """Apply and log the factor of this iteration."""
        model = self._distiller(runner)
        scale = self.scale_at(runner.iter, runner.max_iters)
        if self.terms is None:
            model.set_distill_weight_scale(scale)
            runner.message_hub.update_scalar('train/distill_weight_scale', scale)
        else:
            for term in self.terms:
                model.set_distill_weight_scale(scale, term)
                runner.message_hub.update_scalar(f'train/distill_weight_scale.{term}', scale)
