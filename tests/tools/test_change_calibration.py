"""tools/analysis/change_calibration.py: probability summaries and the classifier's margin cap."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn

from hicd_mm.apis import init_change_detector
from hicd_mm.evaluation.metrics.change_metric import probability_histograms
from tests.conftest import TINY_CFG, load_tool, make_levir_split

tool = load_tool('tools/analysis/change_calibration.py')


def naive_f1(prob, gt, threshold):
    pred = prob >= threshold
    tp = np.sum(pred & (gt == 1))
    denom = pred.sum() + (gt == 1).sum()
    return 100 * 2 * tp / denom if denom else 0.0


def test_histogram_summary_matches_naive_scores():
    rng = np.random.default_rng(0)
    gt = (rng.random(5000) < 0.1).astype(np.int64)
    prob = np.clip(rng.beta(2, 5, 5000) + 0.3 * gt, 0, 1)
    bins = 100
    prob = np.floor(prob * bins) / bins + 0.5 / bins  # bin centres: thresholds at edges are exact
    prob = np.minimum(prob, 1 - 0.5 / bins)
    hist = probability_histograms(torch.from_numpy(prob), torch.from_numpy(gt), bins)
    out = tool.histogram_summary(hist)
    assert out['pixels'] == 5000
    assert out['change_fraction'] == pytest.approx(100 * gt.mean())
    assert out['F1_argmax'] == pytest.approx(naive_f1(prob, gt, 0.5))
    assert out['predicted_change_fraction'] == pytest.approx(100 * np.mean(prob >= 0.5))
    edges = np.arange(bins) / bins
    f1s = [naive_f1(prob, gt, t) for t in edges]
    assert out['F1_best'] == pytest.approx(max(f1s))
    assert out['best_threshold'] == pytest.approx(edges[int(np.argmax(f1s))])
    for key, q in (('50', 0.5), ('99', 0.99)):
        # the lower edge of the bin that holds the q-quantile
        assert out['prob_quantiles'][key] == pytest.approx(
            np.floor(np.quantile(prob, q, method='inverted_cdf') * bins) / bins)


def test_histogram_summary_refuses_empty():
    with pytest.raises(ValueError, match='no valid pixel'):
        tool.histogram_summary(np.zeros((2, 10), dtype=np.int64))


def classifier(margin_weights, bias_margin):
    conv = nn.Conv2d(len(margin_weights), 2, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[1, :, 0, 0] = torch.tensor(margin_weights)
        conv.bias.copy_(torch.tensor([0.3, 0.3 + bias_margin]))
    return conv


def test_margin_cap_bounds_every_nonnegative_feature():
    conv = classifier([-0.5, -1.0, 0.0, -2.0], -0.2)
    cap = tool.margin_cap(conv)
    assert cap['positive_channels'] == 0 and cap['channels'] == 4
    assert cap['margin_cap_prob'] == pytest.approx(float(torch.sigmoid(torch.tensor(-0.2))))
    x = torch.rand(64, 4, 1, 1) * 5
    x[0] = 0  # the maximiser
    prob = conv(x).softmax(1)[:, 1].flatten().detach().numpy()
    assert prob.max() <= cap['margin_cap_prob'] + 1e-6
    assert prob[0] == pytest.approx(cap['margin_cap_prob'], abs=1e-6)


def test_margin_cap_unbounded_with_a_positive_channel():
    cap = tool.margin_cap(classifier([-0.5, 0.1], -3.0))
    assert cap['positive_channels'] == 1 and cap['margin_cap_prob'] == 1.0
    assert tool.margin_cap(nn.Conv2d(4, 2, 3)) is None
    assert tool.margin_cap(nn.Conv2d(4, 3, 1)) is None


def test_tool_reports_the_cap_of_a_collapsed_head(tmp_path):
    root = str(tmp_path / 'levir')
    make_levir_split(root, 'val', 2, seed=3)
    torch.manual_seed(0)
    model = init_change_detector(TINY_CFG)
    conv = model.decode_head.conv_seg
    with torch.no_grad():  # the collapsed state: no channel raises the change margin
        conv.weight[1] = conv.weight[0] - conv.weight[0].abs() - 0.01
        conv.bias.copy_(torch.tensor([0.0, -0.2]))
    ckpt = str(tmp_path / 'collapsed.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    out_json = str(tmp_path / 'calib.json')
    result = tool.main([TINY_CFG, ckpt, '--split', 'val', '--out', out_json, '--cfg-options',
                        f'val_dataloader.dataset.data_root={root}'])
    assert result['pixels'] == 2 * 64 * 64
    cls = result['classifier']
    assert cls['positive_channels'] == 0 and cls['nonnegative_input'] is True
    assert result['prob_max'] <= cls['margin_cap_prob'] + 1e-6 < 0.5
    assert result['F1_argmax'] == 0.0 and result['predicted_change_fraction'] == 0.0
    with open(out_json) as f:
        assert json.load(f)['prob_max'] == pytest.approx(result['prob_max'])
    with pytest.raises(FileExistsError, match='not overwriting'):
        tool.main([TINY_CFG, ckpt, '--out', out_json])
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        tool.main([TINY_CFG, osp.join(str(tmp_path), 'missing.pth')])
