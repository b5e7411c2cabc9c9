"""Change detection on whole image pairs of any size: model loading and sliding windows.

The pair is cut into windows of ``window`` pixels, ``stride`` apart, the last window of each row
and column flush with the border, so that every pixel is covered. Windows are run in batches
through the model's data preprocessor and ``encode_decode``; class probabilities (softmax, or
sigmoid for one-channel heads) are summed per pixel, divided by the number of windows that
covered it, and the mask is their argmax (or ``> decode_head.threshold``). An image smaller than
the window along an axis is one window along it, padded by the data preprocessor exactly as in
whole-image testing (to its ``size_divisor``): with ``window`` >= the image size the result is
that of ``model.predict`` on the whole pair.
"""
import os.path as osp
import sys
from typing import Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from torch import Tensor, nn

from hicd_mm.registry import MODELS
from hicd_mm.utils import register_all_modules
from hicd_mm.utils.checkpoint import load_weights

Box = Tuple[int, int, int, int]  # (top, left, height, width)


def window_starts(length: int, window: int, stride: int) -> List[int]:
    """Start offsets of the windows along one axis.

    Args:
        length (int): Image size along the axis.
        window (int): Window size.
        stride (int): Step between windows (``1 <= stride <= window``).

    Returns:
        list[int]: ``0, stride, 2 * stride, ...`` and a last start of ``length - window``
        (flush with the border); ``[0]`` when ``length <= window``.
    """
    if length <= window:
        return [0]
    starts = list(range(0, length - window, stride))
    starts.append(length - window)
    return starts


def tile_boxes(height: int, width: int, window: int, stride: int) -> List[Box]:
    """The windows covering a (height, width) image, row by row.

    Args:
        height (int): Image height.
        width (int): Image width.
        window (int): Window size (windows are ``min(window, height)`` x
            ``min(window, width)``, all of the same size).
        stride (int): Step between windows, ``1 <= stride <= window``.

    Returns:
        list[tuple[int, int, int, int]]: ``(top, left, h, w)`` of each window.
    """
    check_tiling(window, stride)
    tile_h, tile_w = min(window, height), min(window, width)
    return [(top, left, tile_h, tile_w) for top in window_starts(height, window, stride)
            for left in window_starts(width, window, stride)]


def check_tiling(window: int, stride: int, batch_size: int = 1) -> None:
    """Raise a ``ValueError`` for a window, stride or batch size that cannot work."""
    if window < 1:
        raise ValueError(f'window must be >= 1, got {window}')
    if not 1 <= stride <= window:
        raise ValueError(f'stride must be in 1..window ({window}) so that windows leave no '
                         f'gap, got {stride}')
    if batch_size < 1:
        raise ValueError(f'batch size must be >= 1, got {batch_size}')


def _batches(boxes: List[Box], batch_size: int) -> Iterator[List[Box]]:
    for i in range(0, len(boxes), batch_size):
        yield boxes[i:i + batch_size]


def pair_tensor(img_a: np.ndarray, img_b: np.ndarray) -> Tensor:
    """Stack two (H, W, 3) uint8 images into the (6, H, W) uint8 input of a detector."""
    if img_a.shape != img_b.shape or img_a.ndim != 3 or img_a.shape[2] != 3:
        raise ValueError(f'A and B must both be (H, W, 3) images of the same size, got '
                         f'{img_a.shape} and {img_b.shape}')
    return torch.from_numpy(np.concatenate([img_a, img_b], axis=2)).permute(2, 0, 1)


def _tile_probabilities(model: nn.Module, tiles: List[Tensor]) -> Tensor:
    """Class probabilities (N, C, h, w) of equally sized (6, h, w) pair tiles."""
    data = model.data_preprocessor(dict(inputs=tiles), False)
    inputs = data['inputs']
    tile_h, tile_w = tiles[0].shape[-2:]
    metas = [dict(img_shape=(tile_h, tile_w), ori_shape=(tile_h, tile_w),
                  pad_shape=tuple(inputs.shape[-2:]))] * len(tiles)
    logits = model.encode_decode(inputs, metas)[:, :, :tile_h, :tile_w]
    if logits.shape[1] == 1:
        return logits.sigmoid()
    return logits.softmax(dim=1)


@torch.no_grad()
def infer_change_probs(model: nn.Module, img_a: np.ndarray, img_b: np.ndarray,
                       window: int = 256, stride: int = 192, batch_size: int = 4,
                       progress: bool = False) -> Tensor:
    """Per-pixel class probabilities of a pair, averaged over overlapping windows.

    Args:
        model (nn.Module): A change detector in eval mode (``data_preprocessor`` and
            ``encode_decode``, e.g. :class:`SiamEncoderDecoder`).
        img_a (np.ndarray): (H, W, 3) uint8 BGR image of the first date.
        img_b (np.ndarray): (H, W, 3) uint8 BGR image of the second date.
        window (int): Window size in pixels.
        stride (int): Step between windows (``<= window``; overlaps are averaged).
        batch_size (int): Windows per forward pass.
        progress (bool): Show mmengine's progress bar (windows done, elapsed, ETA) on stderr.

    Returns:
        Tensor: (C, H, W) float32 probabilities on the CPU (C = 1 for sigmoid heads).
    """
    check_tiling(window, stride, batch_size)
    pair = pair_tensor(img_a, img_b)
    height, width = pair.shape[-2:]
    probs: Optional[Tensor] = None
    counts = torch.zeros((height, width), dtype=torch.float32)
    boxes_all = tile_boxes(height, width, window, stride)
    bar = ProgressBar(len(boxes_all), file=sys.stderr) if progress else None
    for boxes in _batches(boxes_all, batch_size):
        tiles = [pair[:, t:t + h, l:l + w] for t, l, h, w in boxes]
        batch = _tile_probabilities(model, tiles).float().cpu()
        if probs is None:
            probs = torch.zeros((batch.shape[1], height, width), dtype=torch.float32)
        for (t, l, h, w), tile in zip(boxes, batch):
            probs[:, t:t + h, l:l + w] += tile
            counts[t:t + h, l:l + w] += 1
        if bar is not None:
            bar.update(len(boxes))
    if bar is not None:
        sys.stderr.write('\n')
    return probs / counts


def probs_to_mask(probs: Tensor, threshold: float = 0.5) -> np.ndarray:
    """Class map of (C, H, W) probabilities: argmax, or ``> threshold`` when C = 1.

    Returns:
        np.ndarray: (H, W) uint8 class indices (0 = no change, 1 = change for binary heads).
    """
    if probs.shape[0] == 1:
        return (probs[0] > threshold).numpy().astype(np.uint8)
    return probs.argmax(dim=0).numpy().astype(np.uint8)


def infer_change_mask(model: nn.Module, img_a: np.ndarray, img_b: np.ndarray,
                      window: int = 256, stride: int = 192, batch_size: int = 4,
                      progress: bool = False) -> np.ndarray:
    """Change mask of a pair of any size by batched sliding-window inference.

    Args:
        model (nn.Module): A change detector in eval mode (see :func:`init_change_detector`).
        img_a (np.ndarray): (H, W, 3) uint8 BGR image of the first date.
        img_b (np.ndarray): (H, W, 3) uint8 BGR image of the second date.
        window (int): Window size in pixels.
        stride (int): Step between windows (``<= window``).
        batch_size (int): Windows per forward pass.
        progress (bool): Show a progress bar with ETA on stderr.

    Returns:
        np.ndarray: (H, W) uint8 class indices (0 = no change, 1 = change).
    """
    probs = infer_change_probs(model, img_a, img_b, window, stride, batch_size, progress)
    threshold = getattr(getattr(model, 'decode_head', None), 'threshold', None)
    return probs_to_mask(probs, 0.5 if threshold is None else threshold)


def detector_config(cfg: Config) -> ConfigDict:
    """The detector of a config: ``cfg.model``, or ``cfg.model.student`` for a HiCD config."""
    model_cfg = cfg.model
    if str(model_cfg.get('type', '')).split('.')[-1] == 'HiCDDistiller':
        print_log('HiCD config: building its student detector', logger='current')
        return model_cfg.student
    return model_cfg


def init_change_detector(config: Union[str, Config], checkpoint: Optional[str] = None,
                         device: str = 'cpu') -> nn.Module:
    """Build the detector of a config, load its weights and put it in eval mode.

    Args:
        config (str | Config): Detector or HiCD config (its student is built).
        checkpoint (str, optional): Detector or distiller checkpoint (its student), loaded
            strictly by :func:`hicd_mm.utils.checkpoint.load_weights`; ``None`` keeps the
            initial (random) weights.
        device (str): Torch device, e.g. ``'cpu'`` or ``'cuda:0'``.

    Returns:
        nn.Module: The detector in eval mode on ``device``.
    """
    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config not found: {config}')
        config = Config.fromfile(config)
    register_all_modules(init_default_scope=True)
    model = MODELS.build(detector_config(config))
    if checkpoint is not None:
        load_weights(model, checkpoint, role='detector')
    return model.to(device).eval()
