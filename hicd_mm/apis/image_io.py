"""Reading bi-temporal pairs and writing change masks: PNG/JPG (OpenCV) and GeoTIFF (tifffile).

Images are returned as (H, W, 3) ``uint8`` arrays in BGR order, what ``cv2.imread`` gives for a
PNG and what the detectors' data preprocessors expect. TIFF bands are taken as R, G, B (the
GeoTIFF convention) and reversed to BGR. GeoTIFF support needs ``tifffile``; the six
georeference tags (:data:`GEO_TAG_NAMES`) are read from the first image of the file and copied
unchanged into the output mask, which lies on the grid of image A.
"""
import logging
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from hicd_mm.datasets.transforms.loading import check_8bit, match_bands, to_bgr

TIFF_EXTENSIONS = ('.tif', '.tiff')
MASK_EXTENSIONS = ('.png', ) + TIFF_EXTENSIONS
GEO_TAG_NAMES = {
    33550: 'ModelPixelScaleTag',
    33922: 'ModelTiepointTag',
    34264: 'ModelTransformationTag',
    34735: 'GeoKeyDirectoryTag',
    34736: 'GeoDoubleParamsTag',
    34737: 'GeoAsciiParamsTag',
}
GDAL_NODATA_TAG = 42113
# Value of the nodata pixels in a GeoTIFF mask (0 and 1 are "no change" and "change").
MASK_NODATA = 255
CRS_TAGS = (34735, 34736, 34737)
TRANSFORM_TAGS = (33550, 33922, 34264)
# Two grids agree when their corners are closer than this fraction of A's pixel size.
GRID_TOLERANCE = 1e-3


class InferenceInputError(ValueError):
    """An input of the inference (image, pair, checkpoint, output path) is not usable."""


@dataclass
class GeoReference:
    """The georeference tags of a GeoTIFF.

    Args:
        tags (dict): Tag code -> ``(tiff_dtype, count, value)`` as read by tifffile.
        nodata_mask (np.ndarray, optional): (H, W) bool, the pixels that hold the file's
            ``GDAL_NODATA`` value in every band (``None`` without such a value).
    """
    tags: Dict[int, Tuple[int, int, Any]] = field(default_factory=dict)
    nodata_mask: Optional[np.ndarray] = field(default=None, compare=False, repr=False)

    def crs(self) -> Tuple[Any, ...]:
        """The values of the CRS tags (GeoKey directory, double and ASCII parameters)."""
        return tuple(_plain(self.tags[c][2]) if c in self.tags else None for c in CRS_TAGS)

    def raw_transform(self) -> Tuple[Any, ...]:
        """The values of the pixel-to-model transform tags (scale, tiepoints, matrix)."""
        return tuple(_plain(self.tags[c][2]) if c in self.tags else None
                     for c in TRANSFORM_TAGS)

    def affine(self) -> Optional[np.ndarray]:
        """The (2, 3) pixel-to-model affine ``[[a, b, c], [d, e, f]]`` (x = a*i + b*j + c).

        Returns:
            np.ndarray | None: From ``ModelTransformationTag``, or from ``ModelPixelScaleTag``
            and a single ``ModelTiepointTag``; ``None`` for other layouts (e.g. ground control
            points only).
        """
        if 34264 in self.tags:
            m = np.asarray(self.tags[34264][2], dtype=np.float64)
            return np.array([[m[0], m[1], m[3]], [m[4], m[5], m[7]]])
        if 33550 in self.tags and 33922 in self.tags and len(self.tags[33922][2]) == 6:
            sx, sy = np.asarray(self.tags[33550][2], dtype=np.float64)[:2]
            i, j, _, x, y, _ = np.asarray(self.tags[33922][2], dtype=np.float64)
            return np.array([[sx, 0.0, x - i * sx], [0.0, -sy, y + j * sy]])
        return None

    def extratags(self) -> list:
        """The tags in the form of ``tifffile.imwrite(extratags=...)``."""
        return [(code, dtype, count, value, True)
                for code, (dtype, count, value) in sorted(self.tags.items())]


def _plain(value: Any) -> Any:
    """A tag value as a hashable, comparable Python value."""
    if isinstance(value, (str, bytes)):
        return value
    return tuple(np.asarray(value).ravel().tolist())


def is_tiff(path: str) -> bool:
    """Whether ``path`` has a TIFF extension (``.tif``/``.tiff``, any case)."""
    return osp.splitext(path)[1].lower() in TIFF_EXTENSIONS


def import_tifffile(path: str):
    """Import tifffile, or explain that the GeoTIFF ``path`` needs it.

    Args:
        path (str): The TIFF file that is read or written (named in the error).

    Returns:
        module: ``tifffile``.
    """
    try:
        import tifffile
    except ImportError as exc:
        raise ImportError(f'{path}: reading and writing GeoTIFF needs tifffile: '
                          'pip install tifffile') from exc
    return tifffile


def _bands_last(arr: np.ndarray, axes: str, path: str) -> np.ndarray:
    """A TIFF page as (H, W, bands), whatever its planar configuration."""
    if arr.ndim == 2:
        return arr[:, :, None]
    if arr.ndim == 3 and axes.endswith('YXS'):
        return arr
    if arr.ndim == 3 and axes.endswith('SYX'):
        return np.moveaxis(arr, 0, -1)
    raise InferenceInputError(f'{path}: expected a single image of (H, W), (H, W, bands) or '
                              f'(bands, H, W), got shape {arr.shape} (axes {axes!r})')


def _to_bgr(arr: np.ndarray, path: str) -> np.ndarray:
    """(H, W, bands) uint8 TIFF data (R, G, B, ...) -> (H, W, 3) BGR, or (H, W) if grey."""
    try:
        check_8bit(arr, path)
    except ValueError as exc:
        raise InferenceInputError(str(exc)) from exc
    bands = arr.shape[2]
    if bands == 1:
        return np.ascontiguousarray(arr[:, :, 0])
    if bands == 2:
        raise InferenceInputError(f'{path}: expected 1 band (grey) or at least 3 bands '
                                  '(R, G, B, ...), got 2')
    if bands > 3:
        print_log(f'{path} has {bands} bands: using the first 3 as R, G, B',
                  logger='current', level=logging.WARNING)
    return np.ascontiguousarray(arr[:, :, 2::-1])


def read_tiff(path: str) -> Tuple[np.ndarray, Optional[GeoReference]]:
    """Read the first image of a (Geo)TIFF and its georeference tags.

    Args:
        path (str): An existing TIFF file.

    Returns:
        tuple: (H, W, 3) uint8 BGR image ((H, W) if grey), and its :class:`GeoReference`
        (``None`` when the file has none of the georeference tags).
    """
    tifffile = import_tifffile(path)
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            arr = page.asarray()
            axes = page.axes
            tags = {tag.code: (int(tag.dtype), tag.count, tag.value)
                    for tag in page.tags.values() if tag.code in GEO_TAG_NAMES}
            nodata = page.tags.get(GDAL_NODATA_TAG)
            nodata = None if nodata is None else nodata.value
    except (tifffile.TiffFileError, OSError, ValueError, IndexError) as exc:
        raise InferenceInputError(f'cannot read TIFF image {path}: {exc}') from exc
    bands = _bands_last(arr, axes, path)
    img = _to_bgr(bands, path)
    if not tags:
        return img, None
    return img, GeoReference(tags, _nodata_mask(bands, nodata, path))


def _nodata_mask(bands: np.ndarray, nodata: Any, path: str) -> Optional[np.ndarray]:
    """Pixels equal to the ``GDAL_NODATA`` value in every band (``None`` without a value)."""
    if nodata is None:
        return None
    try:
        value = float(str(nodata).strip().rstrip('\x00'))
    except ValueError:
        print_log(f'{path}: GDAL_NODATA {nodata!r} is not a number; ignored', logger='current',
                  level=logging.WARNING)
        return None
    return np.all(bands == value, axis=2)


def read_image(path: str) -> Tuple[np.ndarray, Optional[GeoReference]]:
    """Read one image of a pair.

    Args:
        path (str): PNG/JPG/... (OpenCV) or TIFF (tifffile); 8-bit only
            (:func:`hicd_mm.datasets.transforms.loading.check_8bit`, as in training).

    Returns:
        tuple: (H, W, 3) uint8 BGR image ((H, W) if grey; see :func:`load_pair`) and its
        :class:`GeoReference` (``None`` for non-TIFF files and TIFFs without georeference).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path}')
    if is_tiff(path):
        return read_tiff(path)
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InferenceInputError(f'cannot read image {path}: OpenCV could not decode it '
                                  '(expected a PNG, JPG or another format OpenCV reads)')
    try:
        return to_bgr(img, path, keep_grey=True), None
    except ValueError as exc:
        raise InferenceInputError(str(exc)) from exc


def _corners(affine: np.ndarray, height: int, width: int) -> np.ndarray:
    """Model coordinates (4, 2) of the outer corners of a (height, width) grid."""
    pixels = np.array([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]],
                      dtype=np.float64)
    return pixels @ affine.T


def check_same_georeference(path_a: str, geo_a: Optional[GeoReference], shape_a: Sequence[int],
                            path_b: str, geo_b: Optional[GeoReference],
                            shape_b: Sequence[int]) -> None:
    """Check that two GeoTIFFs share CRS and extent (so that their pixels correspond).

    The CRS tags must be identical (nothing is reprojected). With equal sizes the pixel grids
    must coincide; with different sizes (``--resample``) the images must cover the same
    extent, i.e. B resized to A's size lies on A's grid. Grids are compared at their corners,
    to :data:`GRID_TOLERANCE` of A's pixel size. A pair of which only one image is georeferenced
    passes with a warning.

    Args:
        path_a (str): File of image A (named in errors).
        geo_a (GeoReference | None): Georeference of A.
        shape_a (Sequence[int]): (H, W, ...) of A.
        path_b (str): File of image B.
        geo_b (GeoReference | None): Georeference of B.
        shape_b (Sequence[int]): (H, W, ...) of B.
    """
    if geo_a is None and geo_b is None:
        return
    if geo_a is None or geo_b is None:
        missing, other = (path_a, path_b) if geo_a is None else (path_b, path_a)
        print_log(f'{missing} has no georeference but {other} has: the pair is assumed to be '
                  'co-registered' + ('' if geo_a is not None else
                                     '; the output mask will not be georeferenced'),
                  logger='current', level=logging.WARNING)
        return
    if geo_a.crs() != geo_b.crs():
        raise InferenceInputError(
            f'{path_a} and {path_b} have different coordinate reference systems (GeoKey '
            'tags); reproject one onto the other first (nothing is reprojected here)')
    aff_a, aff_b = geo_a.affine(), geo_b.affine()
    if aff_a is None or aff_b is None:
        if geo_a.raw_transform() != geo_b.raw_transform() or shape_a[:2] != shape_b[:2]:
            raise InferenceInputError(
                f'{path_a} and {path_b} have different or non-affine georeferencing '
                '(tiepoints/pixel scale/transformation); the pair must lie on the same grid')
        return
    pixel = min(np.hypot(aff_a[0, 0], aff_a[1, 0]), np.hypot(aff_a[0, 1], aff_a[1, 1]))
    gap = np.abs(_corners(aff_a, *shape_a[:2]) - _corners(aff_b, *shape_b[:2])).max()
    if gap > GRID_TOLERANCE * pixel:
        what = 'grid' if tuple(shape_a[:2]) == tuple(shape_b[:2]) else 'extent'
        raise InferenceInputError(
            f'{path_a} and {path_b} are not on the same {what}: their corners differ by up to '
            f'{gap:.6g} model units (pixel size of A: {pixel:.6g}); crop/reproject them onto '
            'the same grid first')


def load_pair(path_a: str, path_b: str, resample: bool = False, allow_grey: bool = False
              ) -> Tuple[np.ndarray, np.ndarray, Optional[GeoReference]]:
    """Read a bi-temporal pair and check that its images correspond pixel by pixel.

    Bands are handled as in training (:func:`hicd_mm.datasets.transforms.loading.match_bands`):
    a grey pair is replicated to 3 channels, a grey image next to a colour one is refused
    unless ``allow_grey``.

    Args:
        path_a (str): Image A (first date); the output lies on its grid.
        path_b (str): Image B (second date).
        resample (bool): Resize B to the size of A (bilinear) when their sizes differ,
            instead of raising an error.
        allow_grey (bool): Replicate a grey image whose partner is in colour.

    Returns:
        tuple: A and B as (H, W, 3) uint8 BGR arrays of the same size, and the georeference of
        A (``None`` if it has none).
    """
    img_a, geo_a = read_image(path_a)
    img_b, geo_b = read_image(path_b)
    try:
        img_a, img_b = match_bands((img_a, img_b), (path_a, path_b), allow_grey)
    except ValueError as exc:
        raise InferenceInputError(str(exc)) from exc
    size_a, size_b = img_a.shape[:2], img_b.shape[:2]
    if size_a != size_b and not resample:
        raise InferenceInputError(
            f'A and B differ in size: {path_a} is {size_a[1]}x{size_a[0]} (WxH), {path_b} is '
            f'{size_b[1]}x{size_b[0]}; pass --resample to resize B to A')
    check_same_georeference(path_a, geo_a, img_a.shape, path_b, geo_b, img_b.shape)
    nodata_b = geo_b.nodata_mask if geo_b is not None else None
    if size_a != size_b:
        print_log(f'resampling {path_b} from {size_b[1]}x{size_b[0]} to the size of {path_a}, '
                  f'{size_a[1]}x{size_a[0]} (WxH, bilinear)', logger='current',
                  level=logging.WARNING)
        img_b = cv2.resize(img_b, (size_a[1], size_a[0]), interpolation=cv2.INTER_LINEAR)
        if nodata_b is not None:
            nodata_b = cv2.resize(nodata_b.astype(np.uint8), (size_a[1], size_a[0]),
                                  interpolation=cv2.INTER_NEAREST).astype(bool)
    if geo_a is not None and nodata_b is not None:
        own = geo_a.nodata_mask
        geo_a.nodata_mask = nodata_b if own is None else own | nodata_b
    return img_a, img_b, geo_a


def check_output_path(out: str, overwrite: bool = False, inputs: Sequence[str] = ()) -> None:
    """Refuse an output path that would lose data or could not hold a binary mask.

    Args:
        out (str): The mask file to write (``.png``, ``.tif`` or ``.tiff``).
        overwrite (bool): Allow replacing an existing file.
        inputs (Sequence[str]): Input files, which are never overwritten.
    """
    if osp.splitext(out)[1].lower() not in MASK_EXTENSIONS:
        raise InferenceInputError(f'output {out}: expected a .png, .tif or .tiff file (a lossy '
                                  'format would corrupt the binary mask)')
    for path in inputs:
        if osp.exists(path) and osp.exists(out) and osp.samefile(path, out):
            raise InferenceInputError(f'output {out} is the input {path}; choose another OUT')
    if osp.isdir(out):
        raise InferenceInputError(f'output {out} is a folder; give a file name')
    if osp.exists(out) and not overwrite:
        raise FileExistsError(f'output {out} exists; pass --overwrite to replace it')


def write_mask(path: str, mask: np.ndarray, geo: Optional[GeoReference] = None) -> None:
    """Write a binary change mask.

    PNG: 8-bit grey, 0 (no change) / 255 (change). TIFF: uint8 0 / 1, zlib-compressed, with the
    georeference tags of ``geo`` copied unchanged (the mask is on the grid of the image they
    came from); the pixels of ``geo.nodata_mask`` are :data:`MASK_NODATA` (255), the mask's
    ``GDAL_NODATA``.

    Args:
        path (str): Output file (``.png``, ``.tif`` or ``.tiff``); its folder is created.
        mask (np.ndarray): (H, W) array, non-zero where changed.
        geo (GeoReference, optional): Georeference to copy (TIFF only).
    """
    binary = (np.asarray(mask) > 0).astype(np.uint8)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    nodata = geo.nodata_mask if geo is not None else None
    if is_tiff(path):
        tifffile = import_tifffile(path)
        extratags = geo.extratags() if geo is not None else []
        if nodata is not None:
            binary[nodata] = MASK_NODATA
            extratags.append((GDAL_NODATA_TAG, 's', 0, str(MASK_NODATA), True))
        tifffile.imwrite(path, binary, photometric='minisblack', compression='zlib',
                         extratags=extratags)
        return
    if geo is not None:
        print_log(f'{path} is not a GeoTIFF: the georeference of A is not kept' +
                  (' and its nodata pixels are written as 0 (no change)'
                   if nodata is not None and nodata.any() else ''),
                  logger='current', level=logging.WARNING)
    if not cv2.imwrite(path, binary * 255):
        raise InferenceInputError(f'cannot write the mask to {path}')
