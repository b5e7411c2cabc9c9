"""Binary change-detection metric accumulated over a whole split."""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

from hicd_mm.registry import METRICS


def confusion_counts(pred: torch.Tensor, gt: torch.Tensor, ignore_index: int = 255) -> np.ndarray:
    """Counts ``[tp, fp, fn, tn]`` of the changed class (1) over pixels whose gt is not ignored.

    Args:
        pred (Tensor): Predicted labels (0/1), any shape.
        gt (Tensor): Ground truth of the same shape (0/1/``ignore_index``).
        ignore_index (int): Ignored gt value.

    Returns:
        np.ndarray: int64 array ``[tp, fp, fn, tn]``.
    """
    if pred.shape != gt.shape:
        raise ValueError(f'prediction shape {tuple(pred.shape)} != ground truth shape '
                         f'{tuple(gt.shape)}')
    valid = gt != ignore_index
    p = pred[valid] == 1
    g = gt[valid] == 1
    tp = int((p & g).sum())
    fp = int((p & ~g).sum())
    fn = int((~p & g).sum())
    tn = int(valid.sum()) - tp - fp - fn
    return np.array([tp, fp, fn, tn], dtype=np.int64)


def change_scores(counts: np.ndarray) -> Dict[str, float]:
    """Precision, recall, F1 and IoU of the changed class, OA, Cohen's kappa and mIoU, in %.

    Ratios whose denominator is zero are reported as 0 (e.g. recall on a split without change).

    Args:
        counts (np.ndarray): ``[tp, fp, fn, tn]`` accumulated over the split.

    Returns:
        dict: ``Precision, Recall, F1, IoU, OA, Kappa, mIoU`` in percent.
    """
    tp, fp, fn, tn = (float(c) for c in counts)
    total = tp + fp + fn + tn

    def ratio(num: float, den: float) -> float:
        return num / den if den > 0 else 0.0

    precision = ratio(tp, tp + fp)
    recall = ratio(tp, tp + fn)
    f1 = ratio(2 * tp, 2 * tp + fp + fn)
    iou = ratio(tp, tp + fp + fn)
    iou_unchanged = ratio(tn, tn + fp + fn)
    oa = ratio(tp + tn, total)
    expected = ratio((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn), total * total)
    kappa = ratio(oa - expected, 1 - expected) if expected < 1 else 0.0
    return OrderedDict(Precision=100 * precision, Recall=100 * recall, F1=100 * f1,
                       IoU=100 * iou, OA=100 * oa, Kappa=100 * kappa,
                       mIoU=50 * (iou + iou_unchanged))


@METRICS.register_module()
class ChangeMetric(BaseMetric):
    """Precision / recall / F1 / IoU of the *changed* class, OA, kappa and mIoU.

    The confusion counts are accumulated over the whole split (not averaged per image),
    pixels whose label is ``ignore_index`` are skipped, and the returned keys are flat
    (``F1``, ``IoU``, ...) so that ``CheckpointHook(save_best='F1')`` works.

    Args:
        ignore_index (int): Label value to skip.
        collect_device (str): Device used to gather results across ranks.
        prefix (str, optional): Prefix of the returned keys.
    """

    default_prefix: Optional[str] = None

    def __init__(self, ignore_index: int = 255, collect_device: str = 'cpu',
                 prefix: Optional[str] = None, **kwargs) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ignore_index = ignore_index

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Accumulate the confusion counts of one batch of predictions."""
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze()
            gt = sample['gt_sem_seg']['data'].squeeze().to(pred)
            self.results.append(confusion_counts(pred, gt, self.ignore_index))

    def compute_metrics(self, results: List[np.ndarray]) -> Dict[str, float]:
        """Scores of the summed counts."""
        counts = np.sum(results, axis=0) if results else np.zeros(4, dtype=np.int64)
        scores = change_scores(counts)
        logger = MMLogger.get_current_instance()
        print_log('change metrics: ' + ', '.join(f'{k} {v:.2f}' for k, v in scores.items()) +
                  f' (tp/fp/fn/tn = {counts.tolist()})', logger=logger)
        return dict(scores)
