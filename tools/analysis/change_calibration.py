"""Where a checkpoint's change probabilities lie, and whether its classifier can cross 0.5.

A detector can rank changed pixels above unchanged ones (a fair AP) and still predict "no
change" everywhere (F1 0): every change probability stays below the argmax threshold. This
tool tells the two apart on one split of a config's dataset::

    python tools/analysis/change_calibration.py CONFIG CHECKPOINT --split val \\
        [--max-batches N] [--cfg-options KEY=VALUE ...] [--out result.json]

It prints (and writes with ``--out``) one JSON object:

* ``pixels``, ``change_fraction``: the evaluated pixels and their share of changed ones;
* ``prob_quantiles`` (50/90/99/99.9 %), ``prob_max``, ``mean_prob_changed`` /
  ``mean_prob_unchanged``, ``predicted_change_fraction`` (probability >= 0.5);
* ``F1_argmax``, ``AP``, ``F1_best`` and ``best_threshold``: F1 at 0.5 and at the best
  threshold over the probability bins (a diagnosis, never a reported score: choosing a
  threshold on the split it is measured on flatters it);
* ``classifier``: for a decode head whose ``conv_seg`` is a 1×1 convolution over two classes,
  the number of feature channels that raise the change logit margin (``positive_channels``),
  whether every feature it received was non-negative (``nonnegative_input``, e.g. after a
  ReLU) and, in that case, ``margin_cap_prob``: the largest change probability any
  non-negative feature can give. With no positive channel it is ``sigmoid(b_change - b_no)``,
  reached where the feature is 0; below 0.5 the head cannot predict a change at all.

The checkpoint is required: the tool never reports numbers of random weights. A HiCD config
evaluates its student. See docs/results.md §0c.
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from hicd_mm.apis import init_change_detector  # noqa: E402
from hicd_mm.evaluation.metrics.change_metric import (  # noqa: E402
    average_precision_from_histograms, change_probability, probability_histograms)

QUANTILES = (0.5, 0.9, 0.99, 0.999)


def histogram_summary(hist: np.ndarray) -> Dict[str, float]:
    """Scores read from ``(2, bins)`` change/no-change probability histograms.

    Args:
        hist (np.ndarray): Row 0 counts changed pixels per probability bin, row 1 unchanged
            ones (:func:`probability_histograms`).

    Returns:
        dict: ``pixels``, ``change_fraction``, ``prob_quantiles`` (lower bin edges),
        ``predicted_change_fraction`` (bins from 0.5 up), ``F1_argmax``, ``AP``, ``F1_best``
        and ``best_threshold`` (the lower edge of the bin where thresholding gives the best
        F1), all in percent except the probabilities.
    """
    bins = hist.shape[1]
    pos, neg = hist[0].astype(np.float64), hist[1].astype(np.float64)
    total = pos + neg
    pixels = total.sum()
    if pixels == 0:
        raise ValueError('no valid pixel was evaluated (every label is ignore_index?)')
    cumulative = np.cumsum(total) / pixels
    quantiles = {f'{100 * q:g}': float(np.searchsorted(cumulative, q) / bins) for q in QUANTILES}
    # thresholding at the lower edge of bin k predicts "change" for bins k..bins-1
    tp = np.cumsum(pos[::-1])[::-1]
    predicted = np.cumsum(total[::-1])[::-1]
    f1 = np.divide(2 * tp, predicted + pos.sum(), out=np.zeros_like(tp),
                   where=(predicted + pos.sum()) > 0)
    half = bins // 2
    best = int(np.argmax(f1))
    return dict(pixels=int(pixels), change_fraction=float(100 * pos.sum() / pixels),
                prob_quantiles=quantiles,
                predicted_change_fraction=float(100 * predicted[half] / pixels),
                F1_argmax=float(100 * f1[half]), AP=average_precision_from_histograms(hist),
                F1_best=float(100 * f1[best]), best_threshold=best / bins)


def margin_cap(conv_seg: nn.Module, change_index: int = 1) -> Optional[Dict[str, float]]:
    """How far a 1×1 two-class classifier can raise the change margin over a feature >= 0.

    The change margin is ``m(x) = (w_c - w_n) . x + (b_c - b_n)``. Over non-negative ``x`` it
    is unbounded when some channel has ``w_c - w_n > 0``; otherwise its maximum is the bias
    difference, at ``x = 0``.

    Args:
        conv_seg (nn.Module): The decode head's classifier.
        change_index (int): Class index of "changed".

    Returns:
        dict | None: ``positive_channels`` and ``margin_cap_prob`` (``sigmoid`` of the largest
        margin, 1.0 when unbounded); None when ``conv_seg`` is not a 1×1 convolution to two
        classes.
    """
    if not isinstance(conv_seg, nn.Conv2d) or conv_seg.kernel_size != (1, 1) \
            or conv_seg.out_channels != 2 or conv_seg.groups != 1:
        return None
    weight = conv_seg.weight.detach()[:, :, 0, 0]
    margin_weight = weight[change_index] - weight[1 - change_index]
    bias = conv_seg.bias.detach() if conv_seg.bias is not None else weight.new_zeros(2)
    positive = int((margin_weight > 0).sum())
    bias_margin = float(bias[change_index] - bias[1 - change_index])
    cap = 1.0 if positive else float(torch.sigmoid(torch.tensor(bias_margin)))
    return dict(positive_channels=positive, channels=int(margin_weight.numel()),
                bias_margin=bias_margin, margin_cap_prob=cap)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--split', choices=('val', 'test'), default='val')
    parser.add_argument('--max-batches', type=int, default=None,
                        help='evaluate only the first N batches (default: the whole split)')
    parser.add_argument('--bins', type=int, default=1000)
    parser.add_argument('--out', default=None, help='also write the JSON here (never over a '
                        'file that exists)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    if args.out and osp.exists(args.out):
        raise FileExistsError(f'--out {args.out} exists; not overwriting it')
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    model = init_change_detector(cfg, args.checkpoint)
    loader_cfg = cfg[f'{args.split}_dataloader']
    loader_cfg.num_workers, loader_cfg.persistent_workers = 0, False
    loader = Runner.build_dataloader(loader_cfg)

    head = getattr(model, 'decode_head', None)
    conv_seg = getattr(head, 'conv_seg', None)
    input_min = []
    hook = None
    if isinstance(conv_seg, nn.Module):
        hook = conv_seg.register_forward_hook(
            lambda module, inputs, output: input_min.append(float(inputs[0].min())))
    hist = np.zeros((2, args.bins), dtype=np.int64)
    prob_max = 0.0
    sums = np.zeros(2)  # summed change probability over changed, unchanged pixels
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if args.max_batches is not None and i >= args.max_batches:
                break
            samples = model.test_step(batch)
            for sample in samples:
                prob = change_probability(sample.seg_logits.data).cpu()
                gt = sample.gt_sem_seg.data[0].cpu()
                hist += probability_histograms(prob, gt, args.bins)
                valid = gt != 255
                prob_max = max(prob_max, float(prob[valid].max()) if valid.any() else 0.0)
                sums += [float(prob[valid & (gt == 1)].sum()), float(prob[valid & (gt == 0)].sum())]
    if hook is not None:
        hook.remove()
    result = histogram_summary(hist)
    result.update(prob_max=prob_max,
                  mean_prob_changed=float(sums[0] / max(hist[0].sum(), 1)),
                  mean_prob_unchanged=float(sums[1] / max(hist[1].sum(), 1)),
                  config=args.config, checkpoint=args.checkpoint, split=args.split)
    cap = margin_cap(conv_seg) if conv_seg is not None else None
    if cap is not None:
        cap['nonnegative_input'] = bool(input_min) and min(input_min) >= 0
        if not cap['nonnegative_input']:
            cap.pop('margin_cap_prob')  # the bound holds only over non-negative features
        result['classifier'] = cap
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, 'x') as f:
            f.write(text + '\n')
    return result


if __name__ == '__main__':
    main()
