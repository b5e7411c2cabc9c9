"""Procedural synthetic bi-temporal change-detection data that looks like aerial imagery.

Each sample is a random scene seen at two dates (image A and image B) plus a binary change
label. A scene (suburban, rural or industrial) is built from what a LEVIR-CD-like aerial
tile shows:

* the ground: a rotated grid of agricultural parcels and lots, each with a land cover
  (green crop, ripe crop, grass, dry grass, bare soil, forest, pavement), a colour,
  multi-octave value-noise texture, darker field margins and, for crops, row stripes;
* roads along some parcel borders (asphalt grey, width 5-13 px, centre dashes on wide
  roads, cars), sometimes a curved dirt track, and concrete driveways;
* buildings in rows along the roads: rotated rectangles and L-shapes with gable roofs (two
  halves shaded by the sun) or flat roofs with a parapet, in tile/metal/concrete colours,
  each casting a shadow in the scene's sun direction;
* trees (dark green blobs with a sunlit side) in lots and fields and along field borders,
  with shadows.

Real changes (label 255, in the geometry of image A):

* new buildings in B (built on empty lots that were grass, field or bare soil in A): the
  building footprint is labelled, its shadow and its new driveway are not (as in LEVIR-CD);
* demolished buildings (present in A; soil, sand, rubble or lawn in B): the footprint;
* cleared ground (green vegetation turned into a construction site with vehicle tracks in B):
  the cleared area plus the crowns of the trees cut down with it.

About 20 % of the pairs have no change; changed pairs get 2-18 % of their pixels changed.

Pseudo-changes (never labelled): per-date illumination, contrast, colour balance, saturation,
haze and gamma; the season of the vegetation (greener vs. yellower) and the crop phenology of
whole parcels; partly re-drawn vegetation texture; sun elevation and azimuth (shadow length
and direction); cars; a sub-pixel misregistration of B of at most 2 px (applied to B only);
different blur and sensor noise.

Images are ``uint8`` BGR (OpenCV order), labels ``uint8`` with values 0/255. Only numpy and
OpenCV are used; a 256x256 pair takes about 30 ms on one core.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import re
import shutil
import time
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import cv2
import numpy as np

GENERATOR_VERSION = '1.0'
MIN_SIZE = 32
MAX_MISREGISTRATION_PX = 2.0
NO_CHANGE_PROBABILITY = 0.2
# Labelled area of a changed sample, as a fraction of the image (drawn uniformly).
CHANGE_FRACTION_RANGE = (0.02, 0.18)
META_FILE = 'meta.json'
SUBFOLDERS = ('A', 'B', 'label')

_SHIFT = 3  # fractional bits of the sub-pixel coordinates given to cv2 drawing functions
_ONE = 1 << _SHIFT
_SPLIT_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')

# ----------------------------------------------------------------------------------------
# Land cover of the parcels. Colours are RGB (converted to BGR at the very end).
# ----------------------------------------------------------------------------------------
_CROP_GREEN, _CROP_RIPE, _GRASS, _DRY_GRASS, _BARE_SOIL, _FOREST, _PAVED = range(7)
_COVER_RGB = np.array([[88, 112, 60], [170, 156, 104], [104, 124, 76], [150, 144, 108],
                       [150, 132, 102], [58, 80, 48], [148, 148, 144]], np.float32)
_COVER_STRIPES = np.array([[0.06, 0.16], [0.05, 0.12], [0.0, 0.0], [0.0, 0.03],
                           [0.03, 0.10], [0.0, 0.0], [0.0, 0.0]], np.float32)
_COVER_TEXTURE_COARSE = np.array([0.08, 0.07, 0.12, 0.10, 0.10, 0.10, 0.04], np.float32)
_COVER_TEXTURE_FINE = np.array([0.04, 0.04, 0.06, 0.06, 0.06, 0.34, 0.03], np.float32)
_COVER_IS_VEGETATION = np.array([True, True, True, True, False, True, False])
# How strongly the season (green <-> yellow) moves the colour of each cover.
_COVER_GREENNESS = np.array([1.0, 0.4, 1.0, 0.5, 0.0, 0.6, 0.0], np.float32)
_YELLOWING_RGB = np.array([30, 12, -6], np.float32)  # season +1: dry, yellow vegetation
_GREENING_RGB = np.array([-10, 6, -8], np.float32)   # season -1: lush, green vegetation

_ROOF_RGB = np.array([[160, 84, 64], [126, 66, 54], [134, 134, 138], [84, 84, 90],
                      [96, 110, 130], [212, 212, 206], [188, 174, 150], [122, 98, 80]],
                     np.float32)
_ROOF_CDF = np.cumsum([0.18, 0.12, 0.2, 0.16, 0.06, 0.1, 0.1, 0.08])
_FLAT_ROOF_RGB = np.array([[222, 222, 218], [184, 186, 188], [140, 142, 146], [112, 128, 146]],
                          np.float32)
# Ground left after a demolition: bare soil, sand, rubble or a new lawn.
_DEMOLISHED_RGB = np.array([[150, 128, 100], [190, 168, 136], [166, 150, 130], [112, 128, 80]],
                           np.float32)
# Land covers that can be cleared for construction (green vegetation).
_CLEARABLE = np.array([True, False, True, False, False, True, False])
_CONSTRUCTION_RGB = np.array([198, 172, 134], np.float32)
_TREE_RGB = np.array([46, 70, 40], np.float32)
_HAZE_RGB = np.array([196, 200, 206], np.float32)
_CAR_RGB = np.array([[230, 230, 228], [40, 40, 44], [150, 152, 156], [190, 190, 194],
                     [150, 40, 36], [40, 60, 120]], np.float32)

# Scene kinds: land cover mix, parcel grid, road density, buildings and trees (pixels).
_SCENE_KINDS: Dict[str, dict] = {
    'suburban': dict(
        prob=0.45, cover_probs=[0.02, 0.02, 0.56, 0.16, 0.2, 0.04, 0.0],
        band=(45, 85), split=(30, 90), road_prob=0.75, cross_roads=(1, 3), curved_prob=0.0,
        building=dict(lot=(21, 34), width=(12, 20), depth=(10, 16), setback=(5, 10),
                      height=(4, 7), l_shape=0.3, gable=0.8, driveway=0.7),
        density=(0.5, 0.95), trees=(25, 70), hedgerow=0.1),
    'rural': dict(
        prob=0.35, cover_probs=[0.3, 0.2, 0.15, 0.1, 0.18, 0.07, 0.0],
        band=(40, 120), split=(30, 140), road_prob=0.35, cross_roads=(0, 2), curved_prob=0.35,
        building=dict(lot=(26, 60), width=(13, 32), depth=(10, 22), setback=(5, 14),
                      height=(4, 8), l_shape=0.25, gable=0.65, driveway=0.3),
        density=(0.1, 0.35), trees=(5, 30), hedgerow=0.4),
    'industrial': dict(
        prob=0.2, cover_probs=[0.0, 0.0, 0.35, 0.15, 0.2, 0.0, 0.3],
        band=(60, 110), split=(50, 120), road_prob=0.8, cross_roads=(1, 2), curved_prob=0.0,
        building=dict(lot=(44, 90), width=(30, 80), depth=(24, 50), setback=(6, 14),
                      height=(7, 14), l_shape=0.2, gable=0.1, driveway=0.0),
        density=(0.3, 0.8), trees=(5, 25), hedgerow=0.05),
}
_SCENE_NAMES = tuple(_SCENE_KINDS)
_SCENE_PROBS = np.array([_SCENE_KINDS[k]['prob'] for k in _SCENE_NAMES])


# ----------------------------------------------------------------------------------------
# Scene description
# ----------------------------------------------------------------------------------------
@dataclass(eq=False)
class _Slot:
    """An empty lot beside a road where a building may stand."""
    centre: np.ndarray               # centre of the main building part (x, y)
    along: np.ndarray                # unit vector along the road
    away: np.ndarray                 # unit vector from the road towards the lot
    width: float                     # building extent along the road
    depth: float                     # building extent away from the road
    road_gap: float                  # distance from the front wall to the road edge


@dataclass(eq=False)
class _Building:
    """A building: one or two rectangular parts (an L-shape has two)."""
    quads: List[np.ndarray]          # per part: (4, 2) corners (x, y) of [u0,u1] x [v0,v1]
    ridge_along_u: List[bool]        # per part: gable ridge along the road (else across)
    along: np.ndarray                # unit vector u of the building frame (along the road)
    away: np.ndarray                 # unit vector v (from the road to the building)
    roof_rgb: np.ndarray
    gable: bool
    height: float                    # in pixels; shadow length = height * shadow factor
    driveway: Optional[np.ndarray]   # (4, 2) or None
    driveway_grey: float
    clearance: List[np.ndarray]      # polygons that must be free to place the building
    ground_after: np.ndarray         # colour of the ground at date B if demolished
    in_a: bool = True
    in_b: bool = True


@dataclass(eq=False)
class _Tree:
    """A tree crown made of a few overlapping discs ``(cx, cy, r)``."""
    blobs: np.ndarray
    rgb: np.ndarray
    height: float
    in_a: bool = True
    in_b: bool = True


@dataclass(eq=False)
class _Scene:
    """Everything that is shared by the two dates of one sample."""
    size: int
    kind: str
    axis_u: np.ndarray               # unit vector of the parcel grid
    parcel_id: np.ndarray            # (S, S) int32
    cover_a: np.ndarray              # (K,) land cover per parcel at date A
    cover_b: np.ndarray              # (K,) at date B (crop phenology may differ)
    parcel_rgb: np.ndarray           # (K, 3) colour of each parcel (before season)
    ground_shade: np.ndarray         # (S, S) crop rows and field margins (multiplicative)
    texture_coarse: np.ndarray       # (S, S) per-pixel amplitude of the coarse texture
    texture_fine: np.ndarray         # (S, S) per-pixel amplitude of the fine texture
    vegetation: np.ndarray           # (S, S) bool, vegetated ground
    noise_coarse: np.ndarray         # (S, S) unit noise, large features
    noise_fine: np.ndarray           # (S, S) unit noise, small features
    road_rgb: np.ndarray             # (S, S, 3) colour of roads and driveways
    road_alpha: np.ndarray           # (S, S) uint8 coverage of roads and driveways
    occupied: np.ndarray             # (S, S) uint8, roads/buildings/driveways with margins
    label: np.ndarray                # (S, S) uint8 0/255
    lanes: List[Tuple[np.ndarray, np.ndarray, float]]  # (origin, direction, width) of roads
    buildings: List[_Building] = field(default_factory=list)
    trees: List[_Tree] = field(default_factory=list)
    cleared: Optional[np.ndarray] = None      # (S, S) bool, construction site at date B
    cleared_rgb: Optional[np.ndarray] = None  # (S, S, 3)


@dataclass(eq=False)
class _DateLook:
    """Acquisition conditions of one date (all of them are pseudo-changes)."""
    season: float                    # -1 lush green ... +1 dry/yellow
    to_sun: np.ndarray               # unit vector (x, y) pointing towards the sun
    shadow_factor: float             # shadow length per pixel of height (1 / tan(elevation))
    shadow_tint: np.ndarray          # RGB factor inside shadows
    gain: np.ndarray                 # per-channel gain (colour balance x brightness)
    contrast: float
    saturation: float
    haze: float
    gamma: float
    blur_sigma: float
    noise_sigma: float
    shift: Tuple[float, float]       # misregistration (dx, dy) in pixels
    noise_coarse: np.ndarray         # ground texture of this date (vegetation re-drawn in B)
    noise_fine: np.ndarray


# ----------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------
def _fixed(points) -> np.ndarray:
    """Convert float (x, y) points to the int32 fixed-point form used with ``shift=_SHIFT``."""
    return np.rint(np.asarray(points, np.float64) * _ONE).astype(np.int32)


def _colour(rgb) -> Tuple[float, float, float]:
    """A colour as the tuple that cv2 drawing functions expect."""
    return tuple(float(c) for c in rgb)


def _value_noise(size: int, rng: np.random.Generator, feature_px: float, octaves: int,
                 persistence: float = 0.5) -> np.ndarray:
    """Multi-octave value noise with zero mean and unit standard deviation.

    The octaves are summed on a canvas with about two pixels per cell of the finest octave
    and the sum is then resized to ``size`` (much cheaper than resizing every octave).

    Args:
        size: Side of the square output.
        rng: Random generator.
        feature_px: Size in pixels of the largest features (first octave).
        octaves: Number of octaves; each halves the feature size.
        persistence: Amplitude ratio between consecutive octaves.

    Returns:
        ``(size, size)`` float32 array.
    """
    finest_px = feature_px / 2 ** (octaves - 1)
    work = int(min(size, max(16, np.ceil(size * 2 / finest_px))))
    out = np.zeros((work, work), np.float32)
    amplitude = 1.0
    for octave in range(octaves):
        cells = max(3, int(round(size / (feature_px / 2 ** octave))))
        grid = rng.random((cells + 2, cells + 2), dtype=np.float32)
        # Resize one extra cell on every side and crop, so that the borders are not flat.
        big = int(np.ceil(work * (cells + 2) / cells))
        off = (big - work) // 2
        layer = cv2.resize(grid, (big, big), interpolation=cv2.INTER_CUBIC)
        out += amplitude * layer[off:off + work, off:off + work]
        amplitude *= persistence
    if work != size:
        out = cv2.resize(out, (size, size), interpolation=cv2.INTER_CUBIC)
    mean, std = cv2.meanStdDev(out)
    out -= float(mean[0, 0])
    return out / float(std[0, 0]) if std[0, 0] > 1e-6 else out


def _season_shift(season: float) -> np.ndarray:
    """RGB shift of fully green vegetation for a season in [-1 (lush), +1 (dry)]."""
    return (season * _YELLOWING_RGB if season > 0 else -season * _GREENING_RGB).astype(np.float32)


def _rect_corners(centre: np.ndarray, axis_u: np.ndarray, axis_v: np.ndarray,
                  u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
    """Corners of the rectangle ``[u0, u1] x [v0, v1]`` of a local frame, as (4, 2) (x, y)."""
    us = np.array([u0, u1, u1, u0])
    vs = np.array([v0, v0, v1, v1])
    return centre + us[:, None] * axis_u + vs[:, None] * axis_v


def _draw_polygon(image: np.ndarray, polygon: np.ndarray, value) -> None:
    """Fill a polygon (float (x, y) vertices) with the rule that is also used for labels."""
    cv2.fillPoly(image, [_fixed(polygon)], value, cv2.LINE_8, _SHIFT)


def _polygon_area(size: int, polygons: List[np.ndarray]) -> int:
    """Number of pixels the polygons cover (as rasterised into the label)."""
    mask = np.zeros((size, size), np.uint8)
    for poly in polygons:
        _draw_polygon(mask, poly, 1)
    return int(cv2.countNonZero(mask))


def _is_free(occupied: np.ndarray, polygon: np.ndarray) -> bool:
    """Whether a polygon lies (at least partly) in the image and overlaps no occupied pixel."""
    size = occupied.shape[0]
    points = _fixed(polygon)
    x, y, w, h = cv2.boundingRect(points)
    x0, y0 = max((x >> _SHIFT) - 1, 0), max((y >> _SHIFT) - 1, 0)
    x1, y1 = min(((x + w) >> _SHIFT) + 2, size), min(((y + h) >> _SHIFT) + 2, size)
    if x0 >= x1 or y0 >= y1:
        return False
    window = occupied[y0:y1, x0:x1]
    if not cv2.countNonZero(window):
        return True
    patch = np.zeros_like(window)
    cv2.fillPoly(patch, [points - np.int32([x0 << _SHIFT, y0 << _SHIFT])], 1, cv2.LINE_8, _SHIFT)
    return not cv2.countNonZero(patch & window)


def _present(item: Union['_Building', '_Tree'], date: str) -> bool:
    """Whether a building or tree stands at date ``'a'`` or ``'b'``."""
    return item.in_a if date == 'a' else item.in_b


# ----------------------------------------------------------------------------------------
# Scene sampling: ground, roads, buildings, trees, changes
# ----------------------------------------------------------------------------------------
def _sample_cuts(rng: np.random.Generator, lo: float, hi: float, step: Tuple[int, int],
                 forced: Tuple[float, ...] = ()) -> np.ndarray:
    """Sorted cut positions covering ``[lo, hi]`` with random spacing in ``step``."""
    cuts = [lo + rng.uniform(0, step[1])]
    while cuts[-1] < hi:
        cuts.append(cuts[-1] + rng.uniform(*step))
    return np.sort(np.concatenate([cuts, forced]))


def _sample_ground(size: int, spec: dict, rng: np.random.Generator) -> dict:
    """Rotated parcel grid, land cover per parcel and the straight roads along parcel borders.

    Returns:
        Dict with ``axis_u``, ``parcel_id``, ``cover``, ``parcel_rgb``, ``stripes`` and the
        straight ``roads`` and ``hedges`` (field borders) as ``(origin, direction, normal)``.
    """
    angle = rng.uniform(-np.pi / 4, np.pi / 4) if rng.random() < 0.7 else rng.normal(0, 0.05)
    e_u = np.array([np.cos(angle), np.sin(angle)])
    e_v = np.array([-np.sin(angle), np.cos(angle)])
    centre = np.array([size / 2.0, size / 2.0])
    reach = size * 0.72
    n_cross = rng.integers(spec['cross_roads'][0], spec['cross_roads'][1] + 1)
    cross_u = tuple(rng.uniform(-size * 0.4, size * 0.4, n_cross))
    band_edges = _sample_cuts(rng, -reach, reach, spec['band'])
    split_edges = [_sample_cuts(rng, -reach, reach, spec['split'], cross_u)
                   for _ in range(len(band_edges) + 1)]

    coords = np.arange(size, dtype=np.float32) - np.float32(size / 2.0)
    xs, ys = coords[None, :], coords[:, None]
    wobble = _value_noise(size, rng, 96, 2) * np.float32(rng.uniform(0.0, 1.5))
    u = xs * np.float32(e_u[0]) + ys * np.float32(e_u[1])
    v = xs * np.float32(e_v[0]) + ys * np.float32(e_v[1])
    band = np.searchsorted(band_edges.astype(np.float32), v + wobble)
    # One search for all bands: the cuts of band b are offset by b * stride, so that the
    # number of cuts below ``b * stride + u`` is (cuts of the earlier bands) + column.
    stride = np.float32(4 * size + 2 * spec['split'][1])  # > span of the cuts of one band
    all_cuts = np.concatenate([b * stride + e for b, e in enumerate(split_edges)])
    parcel_id = np.searchsorted(all_cuts.astype(np.float32), band * stride + (u + wobble))
    parcel_id = (parcel_id + band).astype(np.int32)  # band b holds len(cuts_b) + 1 parcels
    n_parcels = len(all_cuts) + len(split_edges)

    cover = rng.choice(len(_COVER_RGB), size=n_parcels, p=spec['cover_probs'])
    brightness = rng.uniform(0.86, 1.14, (n_parcels, 1))
    parcel_rgb = _COVER_RGB[cover] * brightness + rng.normal(0, 4, (n_parcels, 3))

    stripe_amp = rng.uniform(_COVER_STRIPES[cover, 0], _COVER_STRIPES[cover, 1])
    stripe_freq = 2 * np.pi / rng.uniform(3.0, 7.0, n_parcels)
    stripe_phase = rng.uniform(0, 2 * np.pi, n_parcels)
    along_u = rng.random(n_parcels) < 0.5
    coordinate = np.where(np.take(along_u, parcel_id), u, v)
    stripes = np.take(stripe_amp.astype(np.float32), parcel_id) * np.sin(
        coordinate * np.take(stripe_freq.astype(np.float32), parcel_id)
        + np.take(stripe_phase.astype(np.float32), parcel_id))

    roads, hedges = [], []
    for edge in band_edges:
        line = (centre + edge * e_v, e_u, e_v)
        (roads if rng.random() < spec['road_prob'] else hedges).append(line)
    for cu in cross_u:
        roads.append((centre + cu * e_u, e_v, e_u))
    return dict(axis_u=e_u, parcel_id=parcel_id, cover=cover,
                parcel_rgb=parcel_rgb.astype(np.float32), stripes=stripes,
                roads=roads, hedges=hedges)


def _ground_texture_maps(parcel_id: np.ndarray, cover: np.ndarray, stripes: np.ndarray
                         ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel shading (crop rows, darker field margins) and texture amplitudes."""
    border = np.zeros(parcel_id.shape, bool)
    border[:, 1:] |= parcel_id[:, 1:] != parcel_id[:, :-1]
    border[1:, :] |= parcel_id[1:, :] != parcel_id[:-1, :]
    shade = 1.0 + stripes
    shade[border] *= 0.9
    coarse = np.take(_COVER_TEXTURE_COARSE[cover], parcel_id)
    fine = np.take(_COVER_TEXTURE_FINE[cover], parcel_id)
    vegetation = np.take(_COVER_IS_VEGETATION[cover], parcel_id)
    return shade, coarse, fine, vegetation


def _draw_roads(size: int, spec: dict, roads: list, rng: np.random.Generator, noise: np.ndarray
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, List[float]]:
    """Rasterise straight roads (and maybe a curved dirt track).

    Returns:
        ``(road_rgb, road_alpha, occupied, road_widths)``.
    """
    colour = np.zeros((size, size, 3), np.float32)
    alpha = np.zeros((size, size), np.uint8)
    occupied = np.zeros((size, size), np.uint8)
    widths = []
    far = size * 1.5
    for origin, direction, _ in roads:
        width = rng.uniform(5, 13)
        widths.append(width)
        asphalt = rng.uniform(96, 140)
        rgb = (asphalt * 0.98, asphalt, asphalt * rng.uniform(1.0, 1.05))
        p0, p1 = _fixed(origin - far * direction), _fixed(origin + far * direction)
        thick = max(1, int(round(width)))
        cv2.line(colour, p0, p1, rgb, thick + 2, cv2.LINE_8, _SHIFT)  # covers the AA rim
        cv2.line(alpha, p0, p1, 255, thick, cv2.LINE_AA, _SHIFT)
        cv2.line(occupied, p0, p1, 1, thick + 2, cv2.LINE_8, _SHIFT)
        if width > 9.5 and rng.random() < 0.6:  # dashed centre line
            dash, gap = rng.uniform(4, 7), rng.uniform(5, 9)
            for s in np.arange(-far, far, dash + gap):
                a = _fixed(origin + s * direction)
                b = _fixed(origin + (s + dash) * direction)
                cv2.line(colour, a, b, (200, 200, 190), 1, cv2.LINE_8, _SHIFT)
    if rng.random() < spec['curved_prob']:
        _draw_curved_track(size, rng, colour, alpha, occupied)
    colour *= (1.0 + 0.05 * noise)[..., None]
    return colour, alpha, occupied, widths


def _draw_curved_track(size: int, rng: np.random.Generator, colour: np.ndarray,
                       alpha: np.ndarray, occupied: np.ndarray) -> None:
    """A gently curved dirt track crossing the image."""
    start = np.array([-10.0, rng.uniform(0, size)])
    heading = rng.uniform(-0.6, 0.6)
    if rng.random() < 0.5:  # cross vertically instead
        start = start[::-1].copy()
        heading += np.pi / 2
    headings = heading + np.cumsum(rng.normal(0, 0.12, int(size * 1.3 / 12)))
    steps = 12 * np.column_stack([np.cos(headings), np.sin(headings)])
    points = _fixed(np.vstack([start, start + np.cumsum(steps, axis=0)]))[None]
    width = int(rng.integers(3, 6))
    rgb = _colour(rng.uniform(0.9, 1.05) * np.array([168, 152, 126]))
    cv2.polylines(colour, points, False, rgb, width + 2, cv2.LINE_8, _SHIFT)
    cv2.polylines(alpha, points, False, 255, width, cv2.LINE_AA, _SHIFT)
    cv2.polylines(occupied, points, False, 1, width + 4, cv2.LINE_8, _SHIFT)


def _road_slots(size: int, spec: dict, roads: list, widths: List[float],
                rng: np.random.Generator) -> List[List[_Slot]]:
    """Lots in rows along both sides of every straight road.

    Returns:
        One list per road side, ordered along the road (neighbours are adjacent lots).
    """
    rows = []
    bspec = spec['building']
    for (origin, direction, normal), road_width in zip(roads, widths):
        for side in (-1.0, 1.0):
            away = normal * side
            lot = rng.uniform(*bspec['lot'])
            setback = rng.uniform(*bspec['setback'])
            depth = rng.uniform(*bspec['depth'])
            positions = np.arange(-size * 0.75 + rng.uniform(0, lot), size * 0.75, lot)
            positions = positions + rng.uniform(-0.08, 0.08, positions.size) * lot
            row = []
            for s in positions:
                width = min(rng.uniform(*bspec['width']), lot - 6)
                d = depth * rng.uniform(0.85, 1.15)
                gap = setback * rng.uniform(0.8, 1.2)
                centre = origin + s * direction + away * (road_width / 2 + gap + d / 2)
                if -width < centre[0] < size + width and -width < centre[1] < size + width:
                    row.append(_Slot(centre, direction, away, width, d, gap))
            rows.append(row)
    return rows


def _make_building(slot: _Slot, spec: dict, flat_palette: bool,
                   rng: np.random.Generator) -> _Building:
    """A house/hall on a lot: rectangle or L-shape, gable or flat roof, maybe a driveway.

    Args:
        slot: The lot (position, orientation and size of the main part).
        spec: Building parameters of the scene kind.
        flat_palette: Use the palette of industrial (flat) roofs.
        rng: Random generator.

    Returns:
        The building (present at both dates until a change is assigned).
    """
    centre, along, away, width, depth = slot.centre, slot.along, slot.away, slot.width, slot.depth
    r = rng.random(12)  # all random numbers of one building at once (fast)
    rects = [(-width / 2, width / 2, -depth / 2, depth / 2)]
    if r[0] < spec['l_shape']:
        wing = width * (0.35 + 0.2 * r[1])
        extent = depth * (0.4 + 0.4 * r[2])
        u0 = width / 2 - wing if r[3] < 0.5 else -width / 2
        rects.append((u0, u0 + wing, depth / 2 - 0.5, depth / 2 + extent))
    quads = [_rect_corners(centre, along, away, *rect) for rect in rects]
    ridges = [(u1 - u0) >= (v1 - v0) for u0, u1, v0, v1 in rects]
    gable = bool(r[4] < spec['gable'])
    if gable or not flat_palette:
        roof = _ROOF_RGB[min(int(np.searchsorted(_ROOF_CDF, r[5])), len(_ROOF_RGB) - 1)]
    else:
        roof = _FLAT_ROOF_RGB[int(r[5] * len(_FLAT_ROOF_RGB))]
    roof = np.clip(roof * (0.88 + 0.24 * r[6]) + (r[7:10] - 0.5) * 16, 0, 255)
    height = spec['height'][0] + (spec['height'][1] - spec['height'][0]) * r[10]
    clearance = [_rect_corners(centre, along, away, u0 - 2, u1 + 2, v0 - 2, v1 + 2)
                 for u0, u1, v0, v1 in rects]
    driveway = None
    if r[11] < spec['driveway']:
        offset = (r[1] - 0.5) * 0.6 * width
        half_w = 1.6 + 0.8 * r[2]
        front = -depth / 2
        driveway = _rect_corners(centre, along, away, offset - half_w, offset + half_w,
                                 front - slot.road_gap - 1.5, front)
        if slot.road_gap > 4:  # the end touching the road may overlap the road's margin
            clearance.append(_rect_corners(centre, along, away, offset - half_w,
                                           offset + half_w, front - slot.road_gap + 3, front))
    ground_after = _DEMOLISHED_RGB[int(r[9] * len(_DEMOLISHED_RGB))] * (0.9 + 0.2 * r[8])
    return _Building(quads, ridges, along, away, roof.astype(np.float32), gable, float(height),
                     driveway, float(160 + 30 * r[3]), clearance, ground_after)


def _roof_halves(building: _Building, quad: np.ndarray, ridge_along_u: bool
                 ) -> Tuple[Tuple[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]:
    """The two halves of a gable roof and the in-plane direction each half faces."""
    c0, c1, c2, c3 = quad
    if ridge_along_u:
        m0, m1 = (c0 + c3) / 2, (c1 + c2) / 2
        return (np.array([c0, c1, m1, m0]), -building.away), (np.array([m0, m1, c2, c3]),
                                                              building.away)
    m0, m1 = (c0 + c1) / 2, (c3 + c2) / 2
    return (np.array([c0, m0, m1, c3]), -building.along), (np.array([m0, c1, c2, m1]),
                                                           building.along)


def _grown(quad: np.ndarray, margin: float) -> np.ndarray:
    """A quadrilateral grown by about ``margin`` pixels around its centroid."""
    centre = quad.mean(0)
    offsets = quad - centre
    lengths = np.maximum(np.linalg.norm(offsets, axis=1), 1e-6)
    return centre + offsets * (1 + margin / lengths)[:, None]


def _try_place(occupied: np.ndarray, building: _Building) -> bool:
    """Place a building if its footprint (plus margin) and driveway are free; mark them."""
    if not all(_is_free(occupied, p) for p in building.clearance):
        return False
    for p in building.clearance:
        _draw_polygon(occupied, p, 1)
    if building.driveway is not None:
        _draw_polygon(occupied, building.driveway, 1)
    return True


def _place_buildings(scene: _Scene, spec: dict, rows: List[List[_Slot]], budget_new: float,
                     budget_demolish: float, rng: np.random.Generator) -> float:
    """Fill lots with existing buildings, then add new ones (B only) and demolish some (A only).

    Args:
        scene: Scene to add the buildings to (its ``occupied`` mask is updated).
        spec: Scene kind parameters.
        rows: Lots along the roads (from :func:`_road_slots`).
        budget_new: Labelled area (pixels) to spend on new buildings.
        budget_demolish: Labelled area (pixels) to spend on demolished buildings.
        rng: Random generator.

    Returns:
        The part of the two budgets that could not be spent.
    """
    bspec = spec['building']
    flat = scene.kind == 'industrial'
    density = rng.uniform(*spec['density'])
    free_rows = []
    for row in rows:
        free = []
        for slot in row:
            building = _make_building(slot, bspec, flat, rng) if rng.random() < density else None
            if building is not None and _try_place(scene.occupied, building):
                scene.buildings.append(building)
            else:
                free.append(slot)
        free_rows.append(free)
    # New construction: runs of neighbouring free lots on one road side (a new development).
    attempts = 0
    while budget_new > 30 and attempts < 12:
        attempts += 1
        candidates = [r for r in free_rows if r]
        if not candidates:
            break
        row = candidates[rng.integers(len(candidates))]
        start = int(rng.integers(len(row)))
        for slot in row[start:start + int(rng.integers(1, 7))]:
            if budget_new <= 30:
                break
            row.remove(slot)
            building = _make_building(slot, bspec, flat, rng)
            if _try_place(scene.occupied, building):
                building.in_a = False
                scene.buildings.append(building)
                budget_new -= _polygon_area(scene.size, building.quads)
    # Demolition of existing buildings.
    existing = [b for b in scene.buildings if b.in_a]
    for index in rng.permutation(len(existing)):
        if budget_demolish <= 30:
            break
        existing[index].in_b = False
        budget_demolish -= _polygon_area(scene.size, existing[index].quads)
    return max(budget_new, 0.0) + max(budget_demolish, 0.0)


def _draw_driveways(scene: _Scene) -> None:
    """Concrete driveways of the buildings standing at date A (kept after a demolition).

    Driveways of new buildings are drawn at date B only (see :func:`_render`): like new
    roads in LEVIR-CD they are a real but unlabelled change.
    """
    for building in scene.buildings:
        if building.driveway is not None and building.in_a:
            grey = building.driveway_grey
            _draw_polygon(scene.road_rgb, building.driveway, (grey, grey, grey * 0.98))
            _draw_polygon(scene.road_alpha, building.driveway, 255)


def _sample_trees(scene: _Scene, spec: dict, hedges: list, rng: np.random.Generator) -> None:
    """Trees scattered in lots and fields and along some field borders (hedgerows)."""
    size = scene.size
    n_scattered = int(rng.integers(*spec['trees']) * (size / 256.0) ** 2)
    centres = list(rng.uniform(0, size, (n_scattered, 2)))
    for origin, direction, _ in hedges:
        if rng.random() < spec['hedgerow']:
            steps = rng.uniform(3, 9, int(size * 1.5 / 3))
            s = -size * 0.75 + np.cumsum(steps)
            s = s[(s < size * 0.75) & (rng.random(s.size) < 0.8)]
            centres.extend(origin + s[:, None] * direction + rng.normal(0, 1.0, (s.size, 2)))
    occupied = scene.occupied
    for c in centres:
        if not (-4 < c[0] < size + 4 and -4 < c[1] < size + 4):
            continue
        radius = rng.uniform(2.5, 6.0)
        x0, y0 = np.maximum(np.floor(c - radius - 1).astype(int), 0)
        x1, y1 = np.maximum(np.ceil(c + radius + 2).astype(int), 0)
        if occupied[y0:y1, x0:x1].any():
            continue
        k = int(rng.integers(1, 4))
        offsets = rng.normal(0, radius * 0.35, (k, 2))
        offsets[0] = 0
        radii = radius * rng.uniform(0.65, 1.0, k)
        radii[0] = radius
        green = _TREE_RGB * rng.uniform(0.8, 1.25) + rng.normal(0, 4, 3)
        scene.trees.append(_Tree(np.column_stack([c + offsets, radii]),
                                 green.astype(np.float32), float(rng.uniform(5, 12))))


def _clearing_polygon(scene: _Scene, centre: Tuple[int, int], radius: float,
                      rng: np.random.Generator) -> np.ndarray:
    """Outline of a cleared area: a lot aligned with the parcel grid or an irregular patch."""
    cx, cy = centre
    if rng.random() < 0.5:
        axis_u = scene.axis_u
        axis_v = np.array([-axis_u[1], axis_u[0]])
        half_u, half_v = radius * rng.uniform(0.7, 1.3), radius * rng.uniform(0.6, 1.1)
        return _rect_corners(np.array([cx, cy], float), axis_u, axis_v,
                             -half_u, half_u, -half_v, half_v)
    angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(6, 10))))
    radii = radius * rng.uniform(0.6, 1.0, angles.size)
    stretch = rng.uniform(0.6, 1.4)
    return np.column_stack([cx + radii * np.cos(angles) * stretch,
                            cy + radii * np.sin(angles) / stretch])


def _clear_ground(scene: _Scene, budget: float, rng: np.random.Generator) -> None:
    """Turn vegetated areas into construction sites at date B (a labelled change)."""
    size = scene.size
    clearable = np.take(_CLEARABLE[scene.cover_a], scene.parcel_id)
    clearable = (clearable & (scene.occupied == 0)).view(np.uint8)  # 0/1
    candidates = np.flatnonzero(clearable)
    cleared = np.zeros((size, size), np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    attempts = 0
    while budget > 60 and candidates.size and attempts < 6:
        attempts += 1
        seed = int(candidates[rng.integers(candidates.size)])
        cy, cx = divmod(seed, size)
        radius = float(np.clip(np.sqrt(budget) / 2 * rng.uniform(0.9, 1.3), 6, size * 0.22))
        region = np.zeros((size, size), np.uint8)
        _draw_polygon(region, _clearing_polygon(scene, (cx, cy), radius, rng), 1)
        region &= clearable & (scene.parcel_id == scene.parcel_id.flat[seed]).view(np.uint8)
        region = cv2.morphologyEx(region, cv2.MORPH_OPEN, kernel) & ~cleared & 1
        area = cv2.countNonZero(region)
        if area < 60:
            continue
        budget -= area
        cleared |= region
    if not cleared.any():
        return
    scene.cleared = cleared.astype(bool)
    # Trees standing in the cleared area are cut down; their crowns are part of the change.
    for tree in scene.trees:
        xs = np.clip(tree.blobs[:, 0].astype(int), 0, size - 1)
        ys = np.clip(tree.blobs[:, 1].astype(int), 0, size - 1)
        if scene.cleared[ys, xs].any():
            tree.in_b = False
            for cx_, cy_, r in tree.blobs:
                cv2.circle(scene.label, tuple(_fixed((cx_, cy_))), int(round(r * _ONE)), 255,
                           -1, cv2.LINE_8, _SHIFT)
    scene.label[scene.cleared] = 255
    scene.cleared_rgb = _construction_site_texture(scene, rng)


def _construction_site_texture(scene: _Scene, rng: np.random.Generator) -> np.ndarray:
    """Sandy/grey soil with curved pairs of vehicle tracks and a few heaps."""
    size = scene.size
    base = _CONSTRUCTION_RGB * rng.uniform(0.85, 1.08) + rng.normal(0, 3, 3)
    marks = np.zeros((size, size), np.float32)
    ys, xs = np.nonzero(scene.cleared)
    for _ in range(int(rng.integers(2, 6))):
        i = rng.integers(xs.size)
        headings = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.25, 8))
        steps = 6 * np.column_stack([np.cos(headings), np.sin(headings)])
        path = np.vstack([[xs[i], ys[i]], [xs[i], ys[i]] + np.cumsum(steps, axis=0)])
        normal = np.array([-np.sin(headings[0]), np.cos(headings[0])])
        depth = float(rng.uniform(0.08, 0.16))
        for side in (-1.3, 1.3):
            cv2.polylines(marks, _fixed(path + side * normal)[None], False, depth, 1,
                          cv2.LINE_AA, _SHIFT)
    for _ in range(int(rng.integers(0, 4))):
        i = rng.integers(xs.size)
        cv2.circle(marks, (int(xs[i]), int(ys[i])), int(rng.integers(2, 5)),
                   float(rng.uniform(-0.15, 0.15)), -1, cv2.LINE_AA)
    shade = 1.0 + 0.08 * scene.noise_coarse + 0.07 * scene.noise_fine - marks
    return base.astype(np.float32) * shade[..., None]


def _sample_scene(size: int, rng: np.random.Generator) -> _Scene:
    """Sample one random scene, including the real changes between the dates."""
    kind = _SCENE_NAMES[rng.choice(len(_SCENE_NAMES), p=_SCENE_PROBS)]
    spec = _SCENE_KINDS[kind]
    noise_coarse = _value_noise(size, rng, 64, 4)
    noise_fine = _value_noise(size, rng, 8, 2)
    ground = _sample_ground(size, spec, rng)
    road_rgb, road_alpha, occupied, widths = _draw_roads(size, spec, ground['roads'], rng,
                                                         noise_fine)
    cover = ground['cover']
    # Crop phenology between the dates (a pseudo-change): green <-> ripe crops.
    cover_b = cover.copy()
    flip = (rng.random(cover.size) < 0.15) & np.isin(cover, (_CROP_GREEN, _CROP_RIPE))
    cover_b[flip] = np.where(cover[flip] == _CROP_GREEN, _CROP_RIPE, _CROP_GREEN)
    shade, tex_coarse, tex_fine, vegetation = _ground_texture_maps(ground['parcel_id'], cover,
                                                                   ground['stripes'])
    scene = _Scene(size, kind, ground['axis_u'], ground['parcel_id'], cover, cover_b,
                   ground['parcel_rgb'], shade, tex_coarse, tex_fine, vegetation, noise_coarse,
                   noise_fine, road_rgb, road_alpha, occupied,
                   label=np.zeros((size, size), np.uint8),
                   lanes=[(o, d, w) for (o, d, _), w in zip(ground['roads'], widths)])

    budget = 0.0
    if rng.random() >= NO_CHANGE_PROBABILITY:
        budget = rng.uniform(*CHANGE_FRACTION_RANGE) * size * size
    share_new, share_demolish, share_clear = rng.dirichlet([4.0, 1.2, 1.5]) * budget
    rows = _road_slots(size, spec, ground['roads'], widths, rng)
    left = _place_buildings(scene, spec, rows, share_new, share_demolish, rng)
    for building in scene.buildings:
        if building.in_a != building.in_b:
            for quad in building.quads:
                _draw_polygon(scene.label, quad, 255)
    _draw_driveways(scene)
    _sample_trees(scene, spec, ground['hedges'], rng)
    _clear_ground(scene, share_clear + left, rng)
    return scene


# ----------------------------------------------------------------------------------------
# Rendering of one date
# ----------------------------------------------------------------------------------------
def _sample_looks(scene: _Scene, rng: np.random.Generator) -> Tuple[_DateLook, _DateLook]:
    """Acquisition conditions of dates A and B; B is misregistered by at most 2 px."""
    size = scene.size
    azimuth = rng.uniform(0, 2 * np.pi)
    season_a = rng.uniform(-1, 1)
    season_b = float(np.clip(season_a + rng.choice([-1, 1]) * rng.uniform(0.3, 1.2), -1, 1))
    looks = []
    for date in ('a', 'b'):
        az = azimuth + (rng.normal(0, 0.12) if date == 'b' else 0.0)
        elevation = np.deg2rad(rng.uniform(35, 70))
        if date == 'a':
            coarse, fine = scene.noise_coarse, scene.noise_fine
            shift = (0.0, 0.0)
        else:  # vegetation texture partly re-drawn
            keep = np.float32(rng.uniform(0.2, 0.7))
            redraw = np.float32(np.sqrt(1 - keep ** 2))
            coarse = np.where(scene.vegetation, keep * scene.noise_coarse
                              + redraw * _value_noise(size, rng, 64, 3), scene.noise_coarse)
            fine = np.where(scene.vegetation, keep * scene.noise_fine
                            + redraw * _value_noise(size, rng, 8, 2), scene.noise_fine)
            radius = MAX_MISREGISTRATION_PX * np.sqrt(rng.random())
            theta = rng.uniform(0, 2 * np.pi)
            shift = (float(radius * np.cos(theta)), float(radius * np.sin(theta)))
        haze = float(rng.uniform(0.0, 0.1))
        looks.append(_DateLook(
            season=season_a if date == 'a' else season_b,
            to_sun=np.array([np.cos(az), np.sin(az)]),
            shadow_factor=float(1 / np.tan(elevation)),
            shadow_tint=np.array([0.42, 0.46, 0.56], np.float32) * (1 + haze),
            gain=rng.uniform(0.95, 1.05, 3) * rng.uniform(0.85, 1.12),
            contrast=float(rng.uniform(0.85, 1.15)), saturation=float(rng.uniform(0.8, 1.12)),
            haze=haze, gamma=float(rng.uniform(0.88, 1.12)),
            blur_sigma=float(rng.uniform(0.3, 0.65)), noise_sigma=float(rng.uniform(1.0, 3.0)),
            shift=shift, noise_coarse=coarse, noise_fine=fine))
    return looks[0], looks[1]


def _render_ground(scene: _Scene, look: _DateLook, date: str) -> np.ndarray:
    """Parcels with seasonal colour, texture and crop rows (float32 RGB)."""
    cover = scene.cover_a if date == 'a' else scene.cover_b
    rgb = scene.parcel_rgb.copy()
    if date == 'b':  # parcels whose crop ripened/was re-sown take the other crop's colour
        changed = cover != scene.cover_a
        rgb[changed] += _COVER_RGB[cover[changed]] - _COVER_RGB[scene.cover_a[changed]]
    rgb += _COVER_GREENNESS[cover, None] * _season_shift(look.season)
    shade = scene.ground_shade + scene.texture_coarse * look.noise_coarse \
        + scene.texture_fine * look.noise_fine
    return np.take(rgb, scene.parcel_id, axis=0) * shade[..., None]


def _paint_demolished(scene: _Scene, building: _Building, image: np.ndarray) -> None:
    """Textured soil/rubble/lawn on the footprint of a demolished building (date B)."""
    mask = np.zeros(scene.label.shape, np.uint8)
    for quad in building.quads:
        _draw_polygon(mask, quad, 1)
    inside = mask.view(bool)
    shade = 1.0 + 0.06 * scene.noise_coarse[inside] + 0.08 * scene.noise_fine[inside]
    image[inside] = building.ground_after * shade[:, None]


def _blend(image: np.ndarray, layer: np.ndarray, alpha_u8: np.ndarray) -> np.ndarray:
    """``image * (1 - alpha) + layer * alpha`` with ``alpha = alpha_u8 / 255``."""
    alpha = alpha_u8.astype(np.float32) * np.float32(1.0 / 255)
    return cv2.blendLinear(image, layer, 1.0 - alpha, alpha)


def _draw_cars(scene: _Scene, image: np.ndarray, rng: np.random.Generator) -> None:
    """Cars in the lanes of the wider roads, placed anew at every date (a pseudo-change)."""
    size = scene.size
    for origin, direction, width in scene.lanes:
        if width < 7:
            continue
        normal = np.array([-direction[1], direction[0]])
        n_cars = rng.poisson(size / 45)
        positions = rng.uniform(-size * 0.75, size * 0.75, n_cars)
        lanes = rng.choice([-0.25, 0.25], n_cars) * width
        colours = _CAR_RGB[rng.integers(len(_CAR_RGB), size=n_cars)]
        for s, lane, rgb in zip(positions, lanes, colours):
            centre = origin + s * direction + lane * normal
            if -4 < centre[0] < size + 4 and -4 < centre[1] < size + 4:
                car = _rect_corners(centre, direction, normal, -2.3, 2.3, -1.0, 1.0)
                _draw_polygon(image, car, _colour(rgb))


def _draw_shadows(scene: _Scene, look: _DateLook, date: str, image: np.ndarray) -> np.ndarray:
    """Darken the ground behind the buildings and trees standing at this date."""
    size = scene.size
    mask = np.zeros((size, size), np.uint8)
    away = -look.to_sun * look.shadow_factor
    for building in scene.buildings:
        if _present(building, date):
            offset = away * building.height
            for quad in building.quads:
                hull = cv2.convexHull(_fixed(np.vstack([quad, quad + offset])))
                cv2.fillPoly(mask, [hull], 255, cv2.LINE_AA, _SHIFT)
    for tree in scene.trees:
        if _present(tree, date):
            centres = _fixed(tree.blobs[:, :2] + away * tree.height)
            for (cx, cy), r in zip(centres, tree.blobs[:, 2]):
                cv2.circle(mask, (int(cx), int(cy)), int(round(r * _ONE)), 255, -1,
                           cv2.LINE_AA, _SHIFT)
    mask = cv2.GaussianBlur(mask, (0, 0), 0.8)
    shadowed = image * look.shadow_tint
    return _blend(image, shadowed, mask)


def _draw_buildings(scene: _Scene, look: _DateLook, date: str, image: np.ndarray) -> None:
    """Roofs: gable roofs as two halves lit by the sun, flat roofs with a parapet."""
    for building in scene.buildings:
        if not _present(building, date):
            continue
        roof = building.roof_rgb
        for quad, ridge in zip(building.quads, building.ridge_along_u):
            if building.gable:
                for half, facing in _roof_halves(building, quad, ridge):
                    _draw_polygon(image, half, _colour(roof * (1 + 0.22 * (facing @ look.to_sun))))
            else:
                _draw_polygon(image, quad, _colour(roof * 0.8))
                _draw_polygon(image, _grown(quad, -1.5), _colour(roof))
            cv2.polylines(image, [_fixed(quad)], True, _colour(roof * 0.7), 1, cv2.LINE_8,
                          _SHIFT)


def _draw_trees(scene: _Scene, look: _DateLook, date: str, image: np.ndarray) -> np.ndarray:
    """Tree crowns with a brighter sunlit side and leafy texture."""
    trees = [t for t in scene.trees if _present(t, date)]
    if not trees:
        return image
    size = scene.size
    alpha = np.zeros((size, size), np.uint8)
    light = np.zeros((size, size), np.uint8)
    colour = np.zeros((size, size, 3), np.float32)
    season = 0.5 * _season_shift(look.season)
    lit_offset = 0.35 * look.to_sun
    for tree in trees:
        rgb = _colour(tree.rgb + season)
        centres = _fixed(tree.blobs[:, :2])
        lit = _fixed(tree.blobs[:, :2] + lit_offset * tree.blobs[:, 2:])
        for (cx, cy), (lx, ly), r in zip(centres, lit, tree.blobs[:, 2]):
            radius = int(round(r * _ONE))
            cv2.circle(alpha, (int(cx), int(cy)), radius, 255, -1, cv2.LINE_AA, _SHIFT)
            cv2.circle(colour, (int(cx), int(cy)), radius + _ONE, rgb, -1, cv2.LINE_8, _SHIFT)
            cv2.circle(light, (int(lx), int(ly)), int(0.6 * radius), 255, -1, cv2.LINE_AA,
                       _SHIFT)
    light_f = cv2.GaussianBlur(light, (0, 0), 1.2).astype(np.float32) * np.float32(0.55 / 255)
    leaves = light_f + 0.7 + 0.18 * look.noise_fine
    return _blend(image, colour * leaves[..., None], alpha)


def _colour_matrix(image: np.ndarray, look: _DateLook) -> np.ndarray:
    """3x4 affine colour transform (RGB in, BGR out): gain, contrast, saturation, haze."""
    mean = np.array(cv2.mean(image)[:3])
    gain = np.diag(look.gain)
    saturate = look.saturation * np.eye(3) + (1 - look.saturation) / 3 * np.ones((3, 3))
    linear = (1 - look.haze) * look.contrast * saturate @ gain
    offset = (1 - look.haze) * (1 - look.contrast) * saturate @ gain @ mean \
        + look.haze * _HAZE_RGB
    to_bgr = np.eye(3)[::-1]
    return np.column_stack([to_bgr @ linear, to_bgr @ offset]).astype(np.float32)


def _apply_camera(image: np.ndarray, look: _DateLook, rng: np.random.Generator) -> np.ndarray:
    """Illumination/colour/haze, blur, misregistration, sensor noise; returns uint8 BGR."""
    image = cv2.transform(image, _colour_matrix(image, look))
    image = cv2.GaussianBlur(image, (0, 0), look.blur_sigma)
    dx, dy = look.shift
    if dx or dy:
        matrix = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
        image = cv2.warpAffine(image, matrix, image.shape[1::-1], flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)
    # Uniform sensor noise from random bytes (std of a uniform int8 is about 73.9).
    noise = np.frombuffer(rng.bytes(image.size), np.int8).reshape(image.shape)
    image = cv2.addWeighted(image, 1.0, noise.astype(np.float32), look.noise_sigma / 73.9, 0.0,
                            dtype=cv2.CV_8U)
    lut = np.rint(np.linspace(0, 1, 256) ** look.gamma * 255).astype(np.uint8)
    return cv2.LUT(image, lut)


def _render(scene: _Scene, look: _DateLook, date: str, rng: np.random.Generator) -> np.ndarray:
    """Render the scene as seen at one date (``'a'`` or ``'b'``) as a uint8 BGR image."""
    image = _render_ground(scene, look, date)
    if date == 'b':
        if scene.cleared is not None:
            image[scene.cleared] = scene.cleared_rgb[scene.cleared]
        for building in scene.buildings:
            if building.in_a and not building.in_b:  # demolished: soil, rubble or lawn
                _paint_demolished(scene, building, image)
    image = _blend(image, scene.road_rgb, scene.road_alpha)
    for building in scene.buildings:
        if date == 'b' and building.driveway is not None and not building.in_a:
            grey = building.driveway_grey
            _draw_polygon(image, building.driveway, (grey, grey, grey * 0.98))
    _draw_cars(scene, image, rng)
    image = _draw_shadows(scene, look, date, image)
    _draw_buildings(scene, look, date, image)
    image = _draw_trees(scene, look, date, image)
    return _apply_camera(image, look, rng)


# ----------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------
def _check_size(size: int) -> None:
    """Raise if ``size`` is not an int of at least ``MIN_SIZE``."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f'size must be an int, got {type(size).__name__}')
    if size < MIN_SIZE:
        raise ValueError(f'size must be at least {MIN_SIZE} pixels, got {size}')


def make_synthetic_pair(size: int, rng: np.random.Generator
                        ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate one bi-temporal pair of a random aerial-looking scene and its change label.

    Args:
        size: Side length in pixels of the square images (at least 32).
        rng: Random generator; the output is a deterministic function of its state.

    Returns:
        ``(img_a, img_b, label)``: two ``(size, size, 3)`` uint8 images in BGR order and a
        ``(size, size)`` uint8 label with 0 = unchanged and 255 = changed. The label is in the
        geometry of ``img_a``; ``img_b`` is misregistered by at most 2 pixels.
    """
    _check_size(size)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f'rng must be a numpy.random.Generator, got {type(rng).__name__}')
    size = int(size)
    scene = _sample_scene(size, rng)
    look_a, look_b = _sample_looks(scene, rng)
    img_a = _render(scene, look_a, 'a', rng)
    img_b = _render(scene, look_b, 'b', rng)
    return img_a, img_b, scene.label


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of sample ``index`` of split ``split``.

    It depends only on ``(seed, split name, index)``, so one sample never depends on how many
    samples or which other splits are generated.

    Args:
        seed: Dataset seed (non-negative int).
        split: Split name.
        index: Index of the sample within the split.

    Returns:
        A freshly seeded ``numpy.random.Generator``.
    """
    split_key = zlib.crc32(split.encode('utf-8'))
    return np.random.default_rng(np.random.SeedSequence([int(seed), split_key, int(index)]))


def sample_name(split: str, index: int, count: int) -> str:
    """File stem of a sample, e.g. ``train_0007`` (at least 4 digits, zero padded).

    Args:
        split: Split name.
        index: Sample index.
        count: Number of samples in the split (sets the number of digits).

    Returns:
        The stem without extension.
    """
    digits = max(4, len(str(max(count - 1, 0))))
    return f'{split}_{index:0{digits}d}'


def _check_splits(splits: Dict[str, int]) -> None:
    """Raise if a split name is not a plain folder name or a count is not an int >= 0."""
    if not isinstance(splits, dict) or not splits:
        raise ValueError(f'splits must be a non-empty dict of name -> count, got {splits!r}')
    for name, count in splits.items():
        if not isinstance(name, str) or not _SPLIT_NAME.match(name) or name in ('.', '..'):
            raise ValueError(f'split name {name!r} is not a valid folder name (use letters, '
                             f'digits, "_", "-" or "." and start with a letter or digit)')
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
            raise TypeError(f'count of split {name!r} must be an int, got {count!r}')
        if count < 0:
            raise ValueError(f'count of split {name!r} must be >= 0, got {count}')


def _existing_dataset_parts(out_dir: str, splits: Dict[str, int]) -> List[str]:
    """Paths below ``out_dir`` that belong to a previously written dataset."""
    found = []
    meta_path = osp.join(out_dir, META_FILE)
    names = set(splits)
    if osp.lexists(meta_path):
        found.append(meta_path)
        try:
            with open(meta_path, encoding='utf-8') as f:
                names |= set(json.load(f).get('splits', {}))
        except (OSError, ValueError):
            pass
    for name in sorted(names):
        if not isinstance(name, str) or not _SPLIT_NAME.match(name):
            continue  # never follow odd names from a foreign meta.json
        for sub in SUBFOLDERS:
            path = osp.join(out_dir, name, sub)
            if osp.lexists(path):
                found.append(path)
    return found


def _remove_dataset_parts(out_dir: str, parts: List[str]) -> None:
    """Delete the given dataset files/folders; they all lie inside ``out_dir``."""
    root = osp.realpath(out_dir)
    for path in parts:
        if osp.commonpath([root, osp.realpath(osp.dirname(path))]) != root:
            raise RuntimeError(f'refusing to delete {path!r}: it is outside {out_dir!r}')
        if osp.islink(path) or osp.isfile(path):
            os.remove(path)
        else:
            shutil.rmtree(path)
        parent = osp.dirname(path)
        if parent != out_dir and osp.isdir(parent) and not os.listdir(parent):
            os.rmdir(parent)


def _write_png(path: str, image: np.ndarray) -> None:
    """Write a png file; raise instead of failing silently."""
    if not cv2.imwrite(path, image):
        raise OSError(f'could not write {path}')


def write_synthetic_dataset(out_dir: str, splits: Dict[str, int], size: int = 256,
                            seed: int = 0, overwrite: bool = False,
                            progress: bool = True) -> dict:
    """Write a synthetic change-detection dataset in the LEVIR-CD folder layout.

    Files: ``out_dir/{split}/A/{split}_{i:04d}.png``, ``.../B/...`` and ``.../label/...``
    (labels 0/255) plus ``out_dir/meta.json`` describing the parameters. Sample ``i`` of
    split ``s`` is generated from :func:`sample_rng` ``(seed, s, i)`` only.

    Args:
        out_dir: Output folder (created if needed).
        splits: Split name -> number of samples, e.g. ``{'train': 800, 'val': 100}``. Names
            must be valid folder names.
        size: Side length of the square images in pixels (>= 32).
        seed: Dataset seed (non-negative int).
        overwrite: Replace a dataset already written in ``out_dir``. Only the dataset's own
            ``{split}/A|B|label`` folders and ``meta.json`` are deleted.
        progress: Print progress lines.

    Returns:
        Summary dict with ``out_dir``, ``size``, ``seed``, ``generator_version``,
        ``elapsed_s`` and ``splits``: per split ``count``, ``changed_fraction`` (changed
        pixels / all pixels) and ``unchanged_samples`` (samples without any change).

    Raises:
        FileExistsError: ``out_dir`` already holds a dataset and ``overwrite`` is False.
        ValueError, TypeError: Invalid arguments.
    """
    _check_size(size)
    _check_splits(splits)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}')
    out_dir = osp.abspath(out_dir)
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise FileExistsError(f'{out_dir} exists and is not a folder')
    existing = _existing_dataset_parts(out_dir, splits) if osp.isdir(out_dir) else []
    if existing and not overwrite:
        raise FileExistsError(
            f'{out_dir} already contains a dataset ({", ".join(existing[:3])}'
            f'{", ..." if len(existing) > 3 else ""}); pass overwrite=True (--overwrite) to '
            f'replace it or choose another folder')
    if existing:
        _remove_dataset_parts(out_dir, existing)

    start = time.perf_counter()
    stats = {split: _write_split(out_dir, split, count, size, seed, progress)
             for split, count in splits.items()}
    _write_meta(out_dir, size, seed, stats)
    return dict(out_dir=out_dir, size=int(size), seed=int(seed),
                generator_version=GENERATOR_VERSION,
                elapsed_s=round(time.perf_counter() - start, 3), splits=stats)


def _write_split(out_dir: str, split: str, count: int, size: int, seed: int,
                 progress: bool) -> dict:
    """Generate and write the samples of one split; returns its statistics."""
    folders = [osp.join(out_dir, split, sub) for sub in SUBFOLDERS]
    for folder in folders:
        os.makedirs(folder, exist_ok=True)
    changed_pixels, unchanged_samples = 0, 0
    step = max(1, count // 10)
    start = time.perf_counter()
    for i in range(count):
        img_a, img_b, label = make_synthetic_pair(size, sample_rng(seed, split, i))
        name = sample_name(split, i, count) + '.png'
        for folder, array in zip(folders, (img_a, img_b, label)):
            _write_png(osp.join(folder, name), array)
        n_changed = cv2.countNonZero(label)
        changed_pixels += n_changed
        unchanged_samples += n_changed == 0
        if progress and ((i + 1) % step == 0 or i + 1 == count):
            print(f'[synthetic] {split}: {i + 1}/{count} pairs '
                  f'({time.perf_counter() - start:.1f} s)', flush=True)
    return dict(count=int(count),
                changed_fraction=changed_pixels / (count * size * size) if count else 0.0,
                unchanged_samples=int(unchanged_samples))


def _write_meta(out_dir: str, size: int, seed: int, stats: Dict[str, dict]) -> None:
    """Write ``meta.json``: generator, parameters and per-split statistics."""
    meta = dict(
        generator='hicd_mm.datasets.synthetic', generator_version=GENERATOR_VERSION,
        seed=int(seed), size=int(size), splits=stats,
        layout='LEVIR-CD: {split}/A, {split}/B, {split}/label, png files',
        labels='0 = unchanged, 255 = changed (new or demolished building footprint, cleared '
               'ground); shadows and pseudo-changes are not labelled',
        geometry=f'labels are aligned with A; B is misregistered by at most '
                 f'{MAX_MISREGISTRATION_PX:g} px',
        sample_seed='numpy SeedSequence([seed, crc32(split name), index])')
    with open(osp.join(out_dir, META_FILE), 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=2)
