"""Log how the distillation gradient compares with the task gradient during training."""
from mmengine.hooks import Hook

from hicd_mm.registry import HOOKS
from .distiller_access import distiller_with


@HOOKS.register_module()
class DistillGradientRatioHook(Hook):
    """Every ``interval`` iterations, log the student-gradient norms of task and distillation.

    The distiller measures them in that iteration's loss computation with two extra
    backward passes (:meth:`HiCDDistiller.request_gradient_stats`), so a run shows when the
    distillation terms take over the update. Logged scalars: ``train/grad_norm_task``,
    ``train/grad_norm_distill``, ``train/grad_ratio_distill_task`` (norm ratio) and
    ``train/grad_cos_distill_task`` (cosine of the two gradients). Off unless configured;
    keep it out of speed benchmarks.

    Args:
        interval (int): Measure every this many iterations (>= 1).
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 50) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f'DistillGradientRatioHook: interval must be an int >= 1, got '
                             f'{interval!r}')
        self.interval = interval

    @staticmethod
    def _distiller(runner):
        return distiller_with(runner, 'request_gradient_stats', 'DistillGradientRatioHook')

    def before_train(self, runner) -> None:
        """Fail early on a model that cannot measure its gradients."""
        self._distiller(runner)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """Ask the distiller to measure in this iteration."""
        if self.every_n_train_iters(runner, self.interval):
            self._distiller(runner).request_gradient_stats()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Log the measurement of this iteration, if any."""
        stats = self._distiller(runner).pop_gradient_stats()
        if stats is None:
            return
        hub = runner.message_hub
        hub.update_scalar('train/grad_norm_task', stats['task_grad_norm'])
        hub.update_scalar('train/grad_norm_distill', stats['distill_grad_norm'])
        hub.update_scalar('train/grad_ratio_distill_task', stats['distill_task_ratio'])
        hub.update_scalar('train/grad_cos_distill_task', stats['distill_task_cosine'])
