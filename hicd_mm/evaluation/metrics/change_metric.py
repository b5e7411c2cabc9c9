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


def change_probability(seg_logits: torch.Tensor) -> torch.Tensor:
    """Probability of the changed class from a ``(C, H, W)`` logit map.

    ``C = 2``: softmax over the classes, class 1; ``C = 1``: sigmoid.
    """
    if seg_logits.dim() == 2:
        seg_logits = seg_logits[None]
    if seg_logits.dim() != 3 or seg_logits.shape[0] not in (1, 2):
        raise ValueError('seg_logits must be (2, H, W) (softmax) or (1, H, W) (sigmoid) for a '
                         f'change probability, got {tuple(seg_logits.shape)}')
    logits = seg_logits.float()
    if logits.shape[0] == 1:
        return logits[0].sigmoid()
    return logits.softmax(dim=0)[1]


def probability_histograms(prob: torch.Tensor, gt: torch.Tensor, bins: int,
                           ignore_index: int = 255) -> np.ndarray:
    """Counts of changed / unchanged pixels per probability bin, ``(2, bins)`` int64.

    Bin ``k`` holds probabilities in ``[k / bins, (k + 1) / bins)`` (1 goes to the last bin);
    row 0 counts gt-changed pixels, row 1 gt-unchanged ones; ignored pixels are skipped.
    """
    if prob.shape != gt.shape:
        raise ValueError(f'change probability shape {tuple(prob.shape)} != ground truth shape '
                         f'{tuple(gt.shape)}')
    valid = gt != ignore_index
    index = (prob[valid] * bins).long().clamp_(0, bins - 1)
    positive = gt[valid] == 1
    out = np.zeros((2, bins), dtype=np.int64)
    out[0] = torch.bincount(index[positive], minlength=bins).numpy()
    out[1] = torch.bincount(index[~positive], minlength=bins).numpy()
    return out


def average_precision_from_histograms(hist: np.ndarray) -> float:
    """Average precision (percent) of the changed class from probability histograms.

    Thresholds run over the bin edges from high to low; the pixels of one bin enter together
    (as tied scores do in scikit-learn's ``average_precision_score``), and
    ``AP = sum_k (R_k - R_{k-1}) P_k``. This is the exact AP of the probabilities rounded down
    to the bins; against unrounded probabilities it differs only through the order of pixels
    inside one bin. Without any changed pixel the AP is 0.

    Args:
        hist (np.ndarray): ``(2, bins)`` from :func:`probability_histograms`.

    Returns:
        float: AP in percent.
    """
    pos = hist[0][::-1].astype(np.float64)
    neg = hist[1][::-1].astype(np.float64)
    total_pos = pos.sum()
    if total_pos == 0:
        return 0.0
    tp, fp = np.cumsum(pos), np.cumsum(neg)
    predicted = tp + fp
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    return float(100 * np.sum(pos / total_pos * precision))


@METRICS.register_module()
class ChangeMetric(BaseMetric):
    """Precision / recall / F1 / IoU of the *changed* class, OA, kappa, mIoU and AP.

    The confusion counts are accumulated over the whole split (not averaged per image),
    pixels whose label is ``ignore_index`` are skipped, and the returned keys are flat
    (``F1``, ``IoU``, ...) so that ``CheckpointHook(save_best='F1')`` works.

    ``AP`` is the average precision (percent) of the change probability over the split, a
    ranking measure that does not depend on the argmax threshold: the probability comes from
    the samples' ``seg_logits`` (softmax over 2 classes, sigmoid for 1 channel) and is
    accumulated in a histogram of ``ap_bins`` bins per class, so memory stays ``O(ap_bins)``
    whatever the split size (see :func:`average_precision_from_histograms`). Samples without
    ``seg_logits`` (e.g. predictions read from files) give no AP: the key is then left out.

    Args:
        ignore_index (int): Label value to skip.
        ap_bins (int): Probability bins of the AP histogram.
        collect_device (str): Device used to gather results across ranks.
        prefix (str, optional): Prefix of the returned keys.
    """

    default_prefix: Optional[str] = None

    def __init__(self, ignore_index: int = 255, ap_bins: int = 10000,
                 collect_device: str = 'cpu', prefix: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if isinstance(ap_bins, bool) or not isinstance(ap_bins, int) or ap_bins < 1:
            raise ValueError(f'ChangeMetric: ap_bins must be an int >= 1, got {ap_bins!r}')
        self.ignore_index = ignore_index
        self.ap_bins = ap_bins

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Add one batch of predictions to the split's counts and histograms.

        ``self.results`` holds a single accumulator per process (counts, histograms and the
        number of samples without ``seg_logits``), so its size does not grow with the split.
        """
        if not self.results:
            self.results.append(dict(counts=np.zeros(4, dtype=np.int64),
                                     hist=np.zeros((2, self.ap_bins), dtype=np.int64),
                                     without_logits=0))
        acc = self.results[0]
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze()
            gt = sample['gt_sem_seg']['data'].squeeze().to(pred)
            acc['counts'] += confusion_counts(pred, gt, self.ignore_index)
            logits = sample.get('seg_logits')
            if logits is None:
                acc['without_logits'] += 1
                continue
            prob = change_probability(logits['data']).squeeze()
            acc['hist'] += probability_histograms(prob, gt, self.ap_bins, self.ignore_index)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Scores of the summed counts (and the AP of the summed histograms)."""
        counts = (np.sum([r['counts'] for r in results], axis=0) if results
                  else np.zeros(4, dtype=np.int64))
        scores = change_scores(counts)
        without_logits = sum(r['without_logits'] for r in results)
        if results and without_logits == 0:
            scores['AP'] = average_precision_from_histograms(
                np.sum([r['hist'] for r in results], axis=0))
        logger = MMLogger.get_current_instance()
        note = '' if 'AP' in scores or not results else (
            f'; no AP: {without_logits} sample(s) without seg_logits')
        print_log('change metrics: ' + ', '.join(f'{k} {v:.2f}' for k, v in scores.items()) +
                  f' (tp/fp/fn/tn = {counts.tolist()}){note}', logger=logger)
        return dict(scores)
