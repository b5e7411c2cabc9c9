import numpy as np
import pytest
import torch

from hicd_mm.evaluation import ChangeMetric


def reference(preds, gts, ignore=255):
    """Plain numpy reference over the concatenation of all pixels."""
    p = np.concatenate([x.ravel() for x in preds])
    g = np.concatenate([x.ravel() for x in gts])
    keep = g != ignore
    p, g = p[keep], g[keep]
    tp = np.sum((p == 1) & (g == 1))
    fp = np.sum((p == 1) & (g == 0))
    fn = np.sum((p == 0) & (g == 1))
    tn = np.sum((p == 0) & (g == 0))
    n = tp + fp + fn + tn
    prec, rec = tp / (tp + fp), tp / (tp + fn)
    oa = (tp + tn) / n
    pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / n**2
    iou1, iou0 = tp / (tp + fp + fn), tn / (tn + fp + fn)
    return dict(Precision=100 * prec, Recall=100 * rec, F1=100 * 2 * prec * rec / (prec + rec),
                IoU=100 * iou1, OA=100 * oa, Kappa=100 * (oa - pe) / (1 - pe),
                mIoU=50 * (iou0 + iou1))


def run_metric(preds, gts):
    metric = ChangeMetric()
    for p, g in zip(preds, gts):
        sample = dict(pred_sem_seg=dict(data=torch.from_numpy(p)[None]),
                      gt_sem_seg=dict(data=torch.from_numpy(g)[None]))
        metric.process({}, [sample])
    return metric.compute_metrics(metric.results)


@pytest.mark.parametrize('seed', range(4))
def test_matches_numpy_reference(seed):
    rng = np.random.default_rng(seed)
    preds, gts = [], []
    for _ in range(5):
        shape = tuple(rng.integers(5, 40, 2))
        preds.append(rng.integers(0, 2, shape))
        g = rng.integers(0, 2, shape)
        g[rng.random(shape) < 0.1] = 255
        gts.append(g)
    got = run_metric(preds, gts)
    want = reference(preds, gts)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9), key


def test_accumulates_over_split_not_per_image():
    # image 1: perfect on a big change; image 2: all wrong on a tiny one
    p1 = np.ones((10, 10), np.int64)
    g1 = np.ones((10, 10), np.int64)
    p2 = np.zeros((2, 2), np.int64)
    g2 = np.ones((2, 2), np.int64)
    got = run_metric([p1, p2], [g1, g2])
    assert got['Recall'] == pytest.approx(100 * 100 / 104)


def test_degenerate_split_is_finite():
    z = np.zeros((4, 4), np.int64)
    got = run_metric([z], [z])
    assert all(np.isfinite(v) for v in got.values())
    assert got['OA'] == 100 and got['F1'] == 0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match='shape'):
        run_metric([np.zeros((3, 3), np.int64)], [np.zeros((3, 4), np.int64)])


# ------------------------------------------------------------------------------ AP
def naive_average_precision(prob, gt):
    """Exact AP in percent (scikit-learn's step rule; tied scores enter together)."""
    order = np.argsort(-prob, kind='stable')
    p, g = prob[order], gt[order]
    total_pos = g.sum()
    ap, tp, fp, i = 0.0, 0, 0, 0
    while i < len(p):
        j = i
        while j < len(p) and p[j] == p[i]:
            j += 1
        new_tp = int(g[i:j].sum())
        tp += new_tp
        fp += (j - i) - new_tp
        ap += new_tp / total_pos * tp / (tp + fp)
        i = j
    return 100 * ap


def run_metric_with_logits(logits_list, gts, **kwargs):
    metric = ChangeMetric(**kwargs)
    for logits, g in zip(logits_list, gts):
        z = torch.from_numpy(logits)
        pred = (z.argmax(0) if z.shape[0] == 2 else (z[0] > 0).long())[None]
        sample = dict(pred_sem_seg=dict(data=pred), seg_logits=dict(data=z),
                      gt_sem_seg=dict(data=torch.from_numpy(g)[None]))
        metric.process({}, [sample])
    return metric.compute_metrics(metric.results)


@pytest.mark.parametrize('channels', [1, 2])
@pytest.mark.parametrize('seed', range(3))
def test_ap_matches_exact_average_precision(channels, seed):
    """Histogram AP (10000 bins) vs the exact AP of the unrounded probabilities: within 0.05
    percentage points on random, partly informative scores (a few hundred thousand pixels)."""
    rng = np.random.default_rng(seed)
    logits_list, gts, probs, labels = [], [], [], []
    for _ in range(4):
        shape = tuple(rng.integers(60, 200, 2))
        g = (rng.random(shape) < 0.1).astype(np.int64)
        margin = rng.normal(0, 2, shape) + 1.5 * g - 2
        g_ignored = g.copy()
        g_ignored[rng.random(shape) < 0.05] = 255
        if channels == 2:
            logits = np.stack([np.zeros(shape), margin]).astype(np.float32)
            prob = torch.from_numpy(logits).softmax(0)[1].numpy()
        else:
            logits = margin[None].astype(np.float32)
            prob = torch.from_numpy(logits[0]).sigmoid().numpy()
        keep = g_ignored != 255
        probs.append(prob[keep])
        labels.append(g[keep])
        logits_list.append(logits)
        gts.append(g_ignored)
    got = run_metric_with_logits(logits_list, gts)
    want = naive_average_precision(np.concatenate(probs).astype(np.float64),
                                   np.concatenate(labels))
    assert 10 < want < 90
    assert got['AP'] == pytest.approx(want, abs=0.05)
    # F1 etc. are unaffected by the AP bookkeeping.
    assert got['F1'] == pytest.approx(run_metric(
        [(lg.argmax(0) if channels == 2 else (lg[0] > 0)).astype(np.int64)
         for lg in logits_list], gts)['F1'])


def test_ap_exact_for_probabilities_on_bin_centres():
    """Probabilities that fall on distinct bins (with ties inside a bin) give the exact AP."""
    rng = np.random.default_rng(7)
    bins = 50
    prob = (rng.integers(0, bins, (40, 40)) + 0.5) / bins
    g = (rng.random((40, 40)) < prob).astype(np.int64)
    logits = np.log(prob / (1 - prob))[None].astype(np.float64)
    got = run_metric_with_logits([logits], [g], ap_bins=bins)
    assert got['AP'] == pytest.approx(naive_average_precision(prob.ravel(), g.ravel()),
                                      rel=1e-9)


def test_ap_ranking_and_degenerate_cases():
    g = np.array([[1, 0, 1, 0]], np.int64)
    perfect = np.stack([np.zeros((1, 4)), np.array([[3.0, -3, 2, -2]])])
    worst = np.stack([np.zeros((1, 4)), np.array([[-3.0, 3, -2, 2]])])
    assert run_metric_with_logits([perfect], [g])['AP'] == pytest.approx(100)
    assert run_metric_with_logits([worst], [g])['AP'] == pytest.approx(100 * (1 / 3 + 2 / 4) / 2)
    no_change = run_metric_with_logits([perfect], [np.zeros((1, 4), np.int64)])
    assert no_change['AP'] == 0 and np.isfinite(list(no_change.values())).all()
    # Without seg_logits there is no AP key (and no error).
    assert 'AP' not in run_metric([np.zeros((2, 2), np.int64)], [np.zeros((2, 2), np.int64)])
    with pytest.raises(ValueError, match='seg_logits'):
        run_metric_with_logits([np.zeros((3, 2, 2), np.float32)],
                               [np.zeros((2, 2), np.int64)])
    with pytest.raises(ValueError, match='ap_bins'):
        ChangeMetric(ap_bins=0)


def test_metric_memory_does_not_grow_with_the_split():
    metric = ChangeMetric(ap_bins=100)
    z = torch.zeros(2, 4, 4)
    for _ in range(20):
        metric.process({}, [dict(pred_sem_seg=dict(data=torch.zeros(1, 4, 4, dtype=torch.long)),
                                 seg_logits=dict(data=z),
                                 gt_sem_seg=dict(data=torch.zeros(1, 4, 4, dtype=torch.long)))])
    assert len(metric.results) == 1
    assert metric.results[0]['counts'].sum() == 20 * 16
