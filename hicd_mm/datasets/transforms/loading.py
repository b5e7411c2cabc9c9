"""Loading of bi-temporal image pairs and change labels (Open-CD contract)."""
from typing import List, Optional, Sequence

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.fileio import get

from hicd_mm.registry import TRANSFORMS


EIGHT_BIT_HELP = ('hicd_mm reads 8-bit images only and never rescales silently (a bit shift '
                  'would make 11-16-bit imagery almost black): convert the imagery to 8 bits '
                  'first with a stretch you choose, e.g. `gdal_translate -ot Byte -scale MIN '
                  'MAX 0 255 in.tif out.tif` (see docs/inference.md)')
GREY_HELP = ('a grey (1-band) image next to a colour one is replicated to 3 channels, which '
             'the detector reads as a very different image (false changes)')


def check_8bit(img: np.ndarray, path: str) -> None:
    """Refuse images with more than 8 bits per band, with the one message every tool gives.

    Args:
        img (np.ndarray): The decoded image, any number of bands.
        path (str): Its file, named in the error.
    """
    if img.dtype != np.uint8:
        peak = img.max() if img.size else 0
        raise ValueError(f'{path!r} is a {img.dtype} image (largest value {peak}), not 8-bit: '
                         + EIGHT_BIT_HELP)


def to_bgr(img: np.ndarray, path: str, keep_grey: bool = False) -> np.ndarray:
    """An 8-bit decoded image as (H, W, 3) BGR: grey replicated, a 4th band (alpha) dropped.

    Args:
        img (np.ndarray): (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array from OpenCV.
        path (str): Its file, named in errors.
        keep_grey (bool): Return a grey image as (H, W) instead of replicating it.

    Returns:
        np.ndarray: (H, W, 3) uint8 BGR (or (H, W) for a grey image with ``keep_grey``).
    """
    check_8bit(img, path)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return img if keep_grey else np.ascontiguousarray(np.repeat(img[:, :, None], 3, 2))
    if img.ndim == 3 and img.shape[2] in (3, 4):
        return np.ascontiguousarray(img[:, :, :3])
    raise ValueError(f'{path!r}: expected 1 band (grey), 3 (colour) or 4 (colour + alpha), got '
                     f'shape {img.shape}')


def is_grey(img: np.ndarray) -> bool:
    """Whether a decoded image has a single band."""
    return img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1)


def match_bands(imgs: Sequence[np.ndarray], paths: Sequence[str],
                allow_grey_with_colour: bool = False) -> List[np.ndarray]:
    """The two images of a pair as (H, W, 3) BGR, refusing a grey image next to a colour one.

    Args:
        imgs (Sequence[np.ndarray]): The two decoded 8-bit images (grey ones as (H, W)).
        paths (Sequence[str]): Their files, named in errors.
        allow_grey_with_colour (bool): Replicate a grey image next to a colour one instead of
            raising (two grey images are always replicated).

    Returns:
        list[np.ndarray]: Two (H, W, 3) uint8 BGR images.
    """
    grey = [is_grey(img) for img in imgs]
    if grey[0] != grey[1] and not allow_grey_with_colour:
        which = 0 if grey[0] else 1
        raise ValueError(f'{paths[which]!r} is grey (1 band) but {paths[1 - which]!r} is '
                         f'colour: {GREY_HELP}. Give both in colour, or allow it explicitly '
                         '(MultiImgLoadImageFromFile(allow_grey_with_colour=True); '
                         'tools/infer.py --allow-grey)')
    return [to_bgr(img, path) for img, path in zip(imgs, paths)]


def read_image(path: str, flag: str = 'color', backend: str = 'cv2',
               backend_args: Optional[dict] = None) -> np.ndarray:
    """Decode one image file, raising an error that names the file when it cannot be read.

    Args:
        path (str): File path (any mmengine file backend).
        flag (str): ``'color'``: 8-bit only (:func:`check_8bit`), as (H, W, 3) BGR with a grey
            image replicated and a 4th band dropped; ``'color_keep_grey'``: the same but a grey
            image stays (H, W); other mmcv flags (``'grayscale'``, ``'unchanged'``) decode as
            mmcv does.
        backend (str): mmcv decode backend.
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        np.ndarray: The decoded image.
    """
    try:
        img_bytes = get(path, backend_args=backend_args)
    except FileNotFoundError as err:
        raise FileNotFoundError(f'image file not found: {path!r}') from err
    colour = flag in ('color', 'color_keep_grey')
    img = None
    if img_bytes:
        try:
            img = mmcv.imfrombytes(img_bytes, flag='unchanged' if colour else flag,
                                   backend=backend)
        except Exception:  # decoders raise many types on garbage input
            img = None
    if img is None:
        what = 'an empty file' if not img_bytes else 'not an image file (or a corrupt one)'
        raise ValueError(f'cannot decode {path!r}: {what}')
    if colour:
        return to_bgr(img, path, keep_grey=flag == 'color_keep_grey')
    return img


@TRANSFORMS.register_module()
class MultiImgLoadImageFromFile(BaseTransform):
    """Load the two images of a pair; ``results['img']`` becomes a list of two HxWxC arrays.

    Required keys: ``img_path`` (list of two paths). Added keys: ``img``, ``img_shape``,
    ``ori_shape``.

    Args:
        to_float32 (bool): Convert to float32 (default: keep uint8).
        color_type (str): ``'color'`` (8-bit only, 3-channel BGR; the 4th band of 4-band
            files is dropped; a grey pair is replicated to 3 channels) or ``'unchanged'``.
        allow_grey_with_colour (bool): Replicate a grey (1-band) image whose partner is in
            colour; by default such a pair is refused (see :func:`match_bands`).
        imdecode_backend (str): mmcv decode backend.
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self, to_float32: bool = False, color_type: str = 'color',
                 imdecode_backend: str = 'cv2', backend_args: Optional[dict] = None,
                 allow_grey_with_colour: bool = False) -> None:
        self.to_float32 = to_float32
        self.color_type = color_type
        self.allow_grey_with_colour = allow_grey_with_colour
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        paths = results['img_path']
        if not isinstance(paths, (list, tuple)) or len(paths) != 2:
            raise ValueError(f'img_path must be a list of two paths (t1, t2), got {paths!r}')
        flag = 'color_keep_grey' if self.color_type == 'color' else self.color_type
        imgs = [read_image(p, flag, self.imdecode_backend, self.backend_args) for p in paths]
        if self.color_type == 'color':
            imgs = match_bands(imgs, paths, self.allow_grey_with_colour)
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
