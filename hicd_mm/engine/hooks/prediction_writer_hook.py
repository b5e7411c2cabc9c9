"""Write test predictions: change masks and A | B | prediction | error-overlay panels."""
import os
import os.path as osp
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmengine.hooks import Hook

from hicd_mm.registry import HOOKS

# BGR colours of the error overlay.
TP_COLOUR = (255, 255, 255)
FP_COLOUR = (0, 0, 255)
FN_COLOUR = (0, 255, 0)


def error_overlay(pred: np.ndarray, gt: Optional[np.ndarray]) -> np.ndarray:
    """Colour a prediction by outcome: TP white, FP red, FN green, TN black (BGR, uint8).

    Without ground truth the prediction is drawn in white.
    """
    out = np.zeros(pred.shape + (3, ), np.uint8)
    if gt is None:
        out[pred == 1] = TP_COLOUR
        return out
    valid = gt != 255
    out[(pred == 1) & (gt == 1) & valid] = TP_COLOUR
    out[(pred == 1) & (gt == 0) & valid] = FP_COLOUR
    out[(pred == 0) & (gt == 1) & valid] = FN_COLOUR
    return out


def sample_name(img_path, index: int) -> str:
    """File stem of the t1 image of a sample (its index when unknown)."""
    path = img_path[0] if isinstance(img_path, (list, tuple)) else img_path
    return osp.splitext(osp.basename(path))[0] if path else f'{index:06d}'


@HOOKS.register_module()
class CDPredictionWriterHook(Hook):
    """Save test predictions as PNG.

    Args:
        out_dir (str, optional): Folder for the binary masks (0/255), one per pair.
        show_dir (str, optional): Folder for panels ``A | B | prediction | overlay`` where the
            images are those the model saw (after the test pipeline, e.g. with B degraded).
    """

    priority = 'LOW'

    def __init__(self, out_dir: Optional[str] = None, show_dir: Optional[str] = None) -> None:
        self.out_dir = out_dir
        self.show_dir = show_dir
        self._count = 0

    def before_test(self, runner) -> None:
        for folder in (self.out_dir, self.show_dir):
            if folder:
                os.makedirs(folder, exist_ok=True)

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
                inputs = data_batch['inputs'][i].cpu().numpy()
                panels = self._input_panels(inputs, pred.shape)
                panels += [np.repeat(pred[..., None] * 255, 3, axis=2), error_overlay(pred, gt)]
                mmcv.imwrite(np.concatenate(panels, axis=1),
                             osp.join(self.show_dir, name + '.png'))

    @staticmethod
    def _input_panels(inputs: np.ndarray, shape: tuple) -> list:
        """The t1 and t2 images of a packed (6, H, W) input, resized to ``shape``."""
        panels = []
        for img in (inputs[:3], inputs[3:6]):
            img = np.clip(img.transpose(1, 2, 0), 0, 255).astype(np.uint8)
            if img.shape[:2] != shape:
                img = mmcv.imresize(img, (shape[1], shape[0]))
            panels.append(img)
        return panels
