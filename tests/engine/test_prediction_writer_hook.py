"""CDPredictionWriterHook and the change panels: GT panel, titles, legend, overlay on A."""
import os.path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from hicd_mm.engine import CDPredictionWriterHook
from hicd_mm.visualization import FN_COLOUR, FP_COLOUR, TP_COLOUR, overlay_changes
from hicd_mm.visualization.change_panels import GAP, TITLE_HEIGHT, change_panels


def test_overlay_blends_outcome_colours_over_the_image():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (8, 9, 3), dtype=np.uint8)
    pred = rng.integers(0, 2, (8, 9))
    gt = rng.integers(0, 2, (8, 9))
    gt[0, 0] = 255
    out = overlay_changes(img, pred, gt, opacity=0.25)
    outcomes = ((TP_COLOUR, (pred == 1) & (gt == 1)), (FP_COLOUR, (pred == 1) & (gt == 0)),
                (FN_COLOUR, (pred == 0) & (gt == 1)))
    for colour, where in outcomes:
        expected = np.round(0.75 * img[where] + 0.25 * np.array(colour)).astype(np.uint8)
        np.testing.assert_allclose(out[where], expected, atol=1)
    untouched = ((pred == 0) & (gt == 0)) | (gt == 255)
    np.testing.assert_array_equal(out[untouched], img[untouched])
    with pytest.raises(ValueError, match='opacity'):
        overlay_changes(img, pred, gt, opacity=2)


def test_panels_hold_a_b_gt_prediction_and_overlay_with_titles_and_legend():
    h, w = 16, 20
    img_a = np.full((h, w, 3), 40, np.uint8)
    img_b = np.full((h, w, 3), 90, np.uint8)
    gt = np.zeros((h, w), np.uint8)
    gt[:, :5] = 1
    pred = np.zeros((h, w), np.uint8)
    pred[:, 3:8] = 1
    strip = change_panels(img_a, img_b, pred, gt, opacity=0.5)
    assert strip.shape == (TITLE_HEIGHT + h + TITLE_HEIGHT, 5 * w + 4 * GAP, 3)
    body = strip[TITLE_HEIGHT:TITLE_HEIGHT + h]
    panels = [body[:, i * (w + GAP):i * (w + GAP) + w] for i in range(5)]
    np.testing.assert_array_equal(panels[0], img_a)
    np.testing.assert_array_equal(panels[1], img_b)
    np.testing.assert_array_equal(panels[2][:, :, 0], gt * 255)  # the ground truth panel
    np.testing.assert_array_equal(panels[3][:, :, 0], pred * 255)
    np.testing.assert_array_equal(panels[4], overlay_changes(img_a, pred, gt, 0.5))
    assert strip[:TITLE_HEIGHT].any() and strip[-TITLE_HEIGHT:].any()  # titles and legend
    assert change_panels(img_a, img_b, pred).shape[1] == 4 * w + 3 * GAP  # no GT: no panel


def test_hook_puts_a_relative_show_dir_under_work_dir_and_timestamp(tmp_path):
    hook = CDPredictionWriterHook(show_dir='vis', opacity=0.3)
    logger = SimpleNamespace(info=lambda msg: None)
    runner = SimpleNamespace(work_dir=str(tmp_path), timestamp='20261201_010203', logger=logger)
    hook.before_test(runner)
    show = osp.join(str(tmp_path), '20261201_010203', 'vis')
    assert hook.show_dir == show and osp.isdir(show)
    sample = SegDataSample()
    sample.set_metainfo(dict(img_path=['x/A/p_01.png', 'x/B/p_01.png']))
    sample.pred_sem_seg = PixelData(data=torch.ones(1, 6, 7, dtype=torch.long))
    sample.gt_sem_seg = PixelData(data=torch.zeros(1, 6, 7, dtype=torch.long))
    inputs = torch.randint(0, 256, (6, 6, 7), dtype=torch.uint8)
    hook.after_test_iter(runner, 0, dict(inputs=[inputs]), [sample])
    panel = cv2.imread(osp.join(show, 'p_01.png'))
    assert panel.shape == (6 + 2 * TITLE_HEIGHT, 5 * 7 + 4 * GAP, 3)
