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
