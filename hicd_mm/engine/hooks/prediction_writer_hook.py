"""Write test predictions: change masks and titled A | B | GT | prediction | errors panels."""
import os
import os.path as osp
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmengine.hooks import Hook

from hicd_mm.registry import HOOKS
from hicd_mm.visualization import change_panels


def sample_name(img_path, index: int) -> str:
    """File stem of the t1 image of a sample (its index when unknown)."""
    path = img_path[0] if isinstance(img_path, (list, tuple)) else img_path
    return osp.splitext(osp.basename(path))[0] if path else f'{index:06d}'


@HOOKS.register_module()
class CDPredictionWriterHook(Hook):
    """Save test predictions as PNG.

    Follows mmseg's ``SegVisualizationHook`` conventions: a relative ``show_dir`` is put under
    ``work_dir/<timestamp>/`` and the change colours are blended over the image with
    ``opacity``.

    Args:
        out_dir (str, optional): Folder for the binary masks (0/255), one per pair.
        show_dir (str, optional): Folder for the panels ``A | B | GT | prediction | errors over
            A`` (titled, with a legend; see :func:`hicd_mm.visualization.change_panels`); the
            images are those the model saw (after the test pipeline, e.g. with B degraded).
        opacity (float): Opacity of the error colours over image A.
    """

    priority = 'LOW'

    def __init__(self, out_dir: Optional[str] = None, show_dir: Optional[str] = None,
                 opacity: float = 0.5) -> None:
        if not 0 <= opacity <= 1:
            raise ValueError(f'opacity must be in [0, 1], got {opacity}')
        self.out_dir = out_dir
        self.show_dir = show_dir
        self.opacity = opacity
        self._count = 0

    def before_test(self, runner) -> None:
        if self.show_dir and not osp.isabs(self.show_dir):
            self.show_dir = osp.join(runner.work_dir, runner.timestamp, self.show_dir)
        for folder in (self.out_dir, self.show_dir):
            if folder:
                os.makedirs(folder, exist_ok=True)
        if self.show_dir:
            runner.logger.info(f'--show-dir panels are written to {self.show_dir}')

    def after_test_iter(self, runner, batch_idx: int, data_batch: dict = None,
                        outputs: Optional[Sequence] = None) -> None:
        for i, sample in enumerate(outputs or []):
            name = sample_name(sample.metainfo.get('img_path'), self._count)
            self._count += 1
            pred = sample.pred_sem_seg.data.squeeze(0).cpu().numpy().astype(np.uint8)
            if self.out_dir:
                mmcv.imwrite(pred * 255, osp.join(self.out_dir, name + '.png'))
            if self.show_dir:
                gt = None
                if 'gt_sem_seg' in sample:
                    gt = sample.gt_sem_seg.data.squeeze(0).cpu().numpy()
                img_a, img_b = self._input_images(data_batch['inputs'][i].cpu().numpy(),
                                                  pred.shape)
                mmcv.imwrite(change_panels(img_a, img_b, pred, gt, self.opacity),
                             osp.join(self.show_dir, name + '.png'))

    @staticmethod
    def _input_images(inputs: np.ndarray, shape: tuple) -> list:
        """The t1 and t2 images of a packed (6, H, W) input, resized to ``shape``."""
        images = []
        for img in (inputs[:3], inputs[3:6]):
            img = np.ascontiguousarray(np.clip(img.transpose(1, 2, 0), 0, 255).astype(np.uint8))
            if img.shape[:2] != shape:
                img = mmcv.imresize(img, (shape[1], shape[0]))
            images.append(img)
        return images
