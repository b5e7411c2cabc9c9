"""Save student-only checkpoints while a HiCD distiller trains."""
import os.path as osp
from typing import Optional

from mmengine.dist import master_only
from mmengine.hooks import Hook

from hicd_mm.registry import HOOKS
from hicd_mm.utils.checkpoint import save_student_checkpoint
from .distiller_access import unwrapped_model


@HOOKS.register_module()
class StudentCheckpointHook(Hook):
    """Write ``student_iter_<n>.pth`` every ``interval`` iterations and ``student_final.pth``.

    The files hold only the student's weights under the plain detector's key names (written by
    :func:`hicd_mm.utils.checkpoint.save_student_checkpoint`, as ``tools/export_student.py``
    does), so the baseline detector config and ``tools/test.py`` load them directly.

    Args:
        interval (int): Save every this many iterations (``-1``: only at the end).
        out_dir (str, optional): Folder (default: the work dir).
    """

    priority = 'LOW'

    def __init__(self, interval: int = -1, out_dir: Optional[str] = None) -> None:
        self.interval = interval
        self.out_dir = out_dir

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.interval > 0 and self.every_n_train_iters(runner, self.interval):
            self._save(runner, f'student_iter_{runner.iter + 1}.pth')

    def after_train(self, runner) -> None:
        self._save(runner, 'student_final.pth')

    @master_only
    def _save(self, runner, name: str) -> None:
        model = unwrapped_model(runner)
        meta = dict(iter=runner.iter, source='HiCDDistiller student',
                    teacher_ckpt=getattr(model, 'teacher_ckpt', None))
        path = osp.join(self.out_dir or runner.work_dir, name)
        save_student_checkpoint(model.state_dict(), path, meta)
        runner.logger.info(f'student-only checkpoint saved to {path}')
