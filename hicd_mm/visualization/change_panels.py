"""Drawing change masks for people: colour overlays on the image and titled panel strips.

Colour code (BGR), the same in ``tools/test.py --show-dir`` and ``tools/infer.py --overlay``:
true positive white, false positive red, false negative green; without ground truth a change
is red. Colours are blended over image A with an ``opacity`` (mmseg's visualiser convention).
"""
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

TP_COLOUR = (255, 255, 255)
FP_COLOUR = (0, 0, 255)
FN_COLOUR = (0, 255, 0)
CHANGE_COLOUR = (0, 0, 255)
GT_COLOUR = (255, 255, 255)
TITLE_HEIGHT = 22
GAP = 4


def outcome_masks(pred: np.ndarray, gt: Optional[np.ndarray]
                  ) -> List[Tuple[str, Tuple[int, int, int], np.ndarray]]:
    """``(name, BGR colour, boolean mask)`` per outcome (TP/FP/FN, or "change" without GT).

    Pixels labelled 255 (ignore) in ``gt`` are in no mask.
    """
    pred = pred.astype(bool)
    if gt is None:
        return [('change', CHANGE_COLOUR, pred)]
    valid, truth = gt != 255, gt == 1
    return [('TP', TP_COLOUR, pred & truth & valid), ('FP', FP_COLOUR, pred & ~truth & valid),
            ('FN', FN_COLOUR, ~pred & truth & valid)]


def overlay_changes(image: np.ndarray, pred: np.ndarray, gt: Optional[np.ndarray] = None,
                    opacity: float = 0.5) -> np.ndarray:
    """Blend the outcome colours of a prediction over an image.

    Args:
        image (np.ndarray): (H, W, 3) uint8 BGR image.
        pred (np.ndarray): (H, W) prediction, non-zero where changed.
        gt (np.ndarray, optional): (H, W) label: 0/1, 255 ignored.
        opacity (float): Weight of the colours (0: the image, 1: the colours only).

    Returns:
        np.ndarray: (H, W, 3) uint8 BGR image.
    """
    if not 0 <= opacity <= 1:
        raise ValueError(f'opacity must be in [0, 1], got {opacity}')
    out = image.astype(np.float32)
    for _, colour, mask in outcome_masks(pred, gt):
        out[mask] = (1 - opacity) * out[mask] + opacity * np.asarray(colour, np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _text(img: np.ndarray, text: str, origin: Tuple[int, int], scale: float = 0.45) -> None:
    cv2.putText(img, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)


def _titled(panel: np.ndarray, title: str) -> np.ndarray:
    bar = np.zeros((TITLE_HEIGHT, panel.shape[1], 3), np.uint8)
    _text(bar, title, (4, TITLE_HEIGHT - 7))
    return np.concatenate([bar, panel], axis=0)


def _legend(width: int, entries: Sequence[Tuple[str, Tuple[int, int, int]]]) -> np.ndarray:
    bar = np.zeros((TITLE_HEIGHT, width, 3), np.uint8)
    x = 4
    for name, colour in entries:
        cv2.rectangle(bar, (x, 5), (x + 12, TITLE_HEIGHT - 5), colour, -1)
        _text(bar, name, (x + 16, TITLE_HEIGHT - 7))
        x += 24 + 9 * len(name)
    return bar


def change_panels(img_a: np.ndarray, img_b: np.ndarray, pred: np.ndarray,
                  gt: Optional[np.ndarray] = None, opacity: float = 0.5) -> np.ndarray:
    """One strip ``A | B | GT | prediction | outcome over A``, titled, with a legend.

    Args:
        img_a (np.ndarray): (H, W, 3) uint8 BGR image A (as the model saw it).
        img_b (np.ndarray): (H, W, 3) uint8 BGR image B (as the model saw it, e.g. degraded).
        pred (np.ndarray): (H, W) prediction (0/1).
        gt (np.ndarray, optional): (H, W) label (0/1, 255 ignored); the GT panel is left
            out without it.
        opacity (float): Opacity of the outcome colours over A.

    Returns:
        np.ndarray: uint8 BGR strip.
    """
    def mask_image(mask: np.ndarray) -> np.ndarray:
        return np.repeat((mask.astype(np.uint8) * 255)[..., None], 3, axis=2)

    panels = [('A', img_a), ('B (model input)', img_b)]
    if gt is not None:
        panels.append(('ground truth', mask_image(gt == 1)))
    panels.append(('prediction', mask_image(pred > 0)))
    panels.append(('errors over A' if gt is not None else 'change over A',
                   overlay_changes(img_a, pred, gt, opacity)))
    gap = np.zeros((pred.shape[0] + TITLE_HEIGHT, GAP, 3), np.uint8)
    row: List[np.ndarray] = []
    for title, panel in panels:
        row += [_titled(panel, title), gap]
    strip = np.concatenate(row[:-1], axis=1)
    entries = [(name, colour) for name, colour, _ in outcome_masks(pred, gt)]
    return np.concatenate([strip, _legend(strip.shape[1], entries)], axis=0)
