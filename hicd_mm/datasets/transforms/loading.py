"""Loading of bi-temporal image pairs and change labels (Open-CD contract)."""
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.fileio import get

from hicd_mm.registry import TRANSFORMS


def read_image(path: str, flag: str = 'color', backend: str = 'cv2',
               backend_args: Optional[dict] = None) -> np.ndarray:
    """Decode one image file, raising an error that names the file when it cannot be read.

    Args:
        path (str): File path (any mmengine file backend).
        flag (str): mmcv colour flag (``'color'``, ``'grayscale'``, ``'unchanged'``).
        backend (str): mmcv decode backend.
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        np.ndarray: The decoded image.
    """
    try:
        img_bytes = get(path, backend_args=backend_args)
    except FileNotFoundError as err:
        raise FileNotFoundError(f'image file not found: {path!r}') from err
    img = None
    if img_bytes:
        try:
            img = mmcv.imfrombytes(img_bytes, flag=flag, backend=backend)
        except Exception:  # decoders raise many types on garbage input
            img = None
    if img is None:
        raise ValueError(f'cannot decode {path!r}: not an image file (or a corrupt one)')
    return img


@TRANSFORMS.register_module()
class MultiImgLoadImageFromFile(BaseTransform):
    """Load the two images of a pair; ``results['img']`` becomes a list of two HxWxC arrays.

    Required keys: ``img_path`` (list of two paths). Added keys: ``img``, ``img_shape``,
    ``ori_shape``.

    Args:
        to_float32 (bool): Convert to float32 (default: keep uint8).
        color_type (str): ``'color'`` (3-channel BGR; grayscale files are expanded, the 4th
            band of 4-band files is dropped by the decoder) or ``'unchanged'``.
        imdecode_backend (str): mmcv decode backend.
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self, to_float32: bool = False, color_type: str = 'color',
                 imdecode_backend: str = 'cv2', backend_args: Optional[dict] = None) -> None:
        self.to_float32 = to_float32
        self.color_type = color_type
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        paths = results['img_path']
        if not isinstance(paths, (list, tuple)) or len(paths) != 2:
            raise ValueError(f'img_path must be a list of two paths (t1, t2), got {paths!r}')
        imgs = [read_image(p, self.color_type, self.imdecode_backend, self.backend_args)
                for p in paths]
        if imgs[0].shape[:2] != imgs[1].shape[:2]:
            raise ValueError(
                f'the two images of a pair differ in size: {paths[0]!r} is '
                f'{imgs[0].shape[1]}x{imgs[0].shape[0]}, {paths[1]!r} is '
                f'{imgs[1].shape[1]}x{imgs[1].shape[0]} (width x height); resample one of '
                'them first (e.g. tools/degrade_dataset.py writes aligned pairs)')
        if self.to_float32:
            imgs = [img.astype(np.float32) for img in imgs]
        results['img'] = imgs
        results['img_shape'] = imgs[0].shape[:2]
        results['ori_shape'] = imgs[0].shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(to_float32={self.to_float32}, '
                f'color_type={self.color_type!r})')


def format_change_label(label: np.ndarray, mode: Optional[str], path: str,
                        ignore_index: int = 255) -> np.ndarray:
    """Map a raw change label to 0 (unchanged), 1 (changed) and ``ignore_index``.

    Args:
        label (np.ndarray): Raw HxW label.
        mode (str | None): ``'to_binary'``: the label must hold only 0/1 or only 0/255;
            ``'threshold'``: >=128 is change (lossy labels); ``None``: already 0/1/ignore.
        path (str): The label's file, named in errors.
        ignore_index (int): Value kept as "ignore" in mode ``None``.

    Returns:
        np.ndarray: uint8 label.
    """
    values = np.unique(label)
    if mode == 'to_binary':
        allowed_sets = ({0, 1}, {0, 255})
        if not any(set(values.tolist()) <= allowed for allowed in allowed_sets):
            raise ValueError(
                f'change label {path!r} holds values {values.tolist()[:10]}; expected only '
                '0/255 (or 0/1). Use format_seg_map="threshold" for lossy (jpg) labels.')
        return (label > 0).astype(np.uint8)
    if mode == 'threshold':
        return (label >= 128).astype(np.uint8)
    if mode is None:
        if not set(values.tolist()) <= {0, 1, ignore_index}:
            raise ValueError(f'change label {path!r} holds values {values.tolist()[:10]}; '
                             f'expected 0/1 and {ignore_index} (ignore)')
        return label.astype(np.uint8)
    raise ValueError(f'unknown format_seg_map {mode!r}')


@TRANSFORMS.register_module()
class MultiImgLoadAnnotations(BaseTransform):
    """Load the binary change label as ``results['gt_seg_map']`` (uint8 0/1/255).

    Required keys: ``seg_map_path``, optional ``format_seg_map`` (default ``'to_binary'``).
    Added keys: ``gt_seg_map``; ``'gt_seg_map'`` is appended to ``seg_fields``.

    Args:
        imdecode_backend (str): mmcv decode backend.
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self, imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None) -> None:
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        path = results.get('seg_map_path')
        if path is None:
            raise KeyError('seg_map_path is None: this sample has no change label '
                           '(remove MultiImgLoadAnnotations from an unlabelled pipeline)')
        raw = read_image(path, 'grayscale', self.imdecode_backend, self.backend_args)
        label = format_change_label(raw, results.get('format_seg_map', 'to_binary'), path,
                                    results.get('ignore_index', 255))
        ori_shape = results.get('ori_shape')
        if ori_shape is not None and tuple(ori_shape[:2]) != label.shape[:2]:
            raise ValueError(
                f'change label {path!r} is {label.shape[1]}x{label.shape[0]} but its images '
                f'are {ori_shape[1]}x{ori_shape[0]} (width x height)')
        results['gt_seg_map'] = label
        results.setdefault('seg_fields', []).append('gt_seg_map')
        return results
