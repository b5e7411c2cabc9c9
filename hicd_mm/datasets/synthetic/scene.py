"""Sampling of one synthetic scene: ground, roads, buildings, trees and the real changes.

A scene holds everything the two dates share, including the change label; how each date looks
(light, season, camera) is sampled and rendered in :mod:`.render`.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import cv2
import numpy as np

from .drawing import (_ONE, _SHIFT, _colour, _draw_polygon, _fixed, _is_free, _polygon_area,
                      _rect_corners, _value_noise)
from .palette import (_CLEARABLE, _CONSTRUCTION_RGB, _COVER_IS_VEGETATION, _COVER_RGB,
                      _COVER_STRIPES, _COVER_TEXTURE_COARSE, _COVER_TEXTURE_FINE, _CROP_GREEN,
                      _CROP_RIPE, _DEMOLISHED_RGB, _FLAT_ROOF_RGB, _ROOF_CDF, _ROOF_RGB,
                      _SCENE_KINDS, _SCENE_NAMES, _SCENE_PROBS, _TREE_RGB)

NO_CHANGE_PROBABILITY = 0.2
# Labelled area of a changed sample, as a fraction of the image (drawn uniformly).
CHANGE_FRACTION_RANGE = (0.02, 0.18)


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


def _sample_scene(size: int, rng: np.random.Generator,
                  no_change_probability: float = NO_CHANGE_PROBABILITY,
                  change_fraction_range: Tuple[float, float] = CHANGE_FRACTION_RANGE
                  ) -> _Scene:
    """Sample one random scene, including the real changes between the dates.

    Args:
        size: Side length of the square scene in pixels.
        rng: Random generator.
        no_change_probability: Probability that the sample has no change at all.
        change_fraction_range: Range of the labelled-area budget of a changed sample, as a
            fraction of the image (drawn uniformly).

    Returns:
        The scene with its change label.
    """
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
    if rng.random() >= no_change_probability:
        budget = rng.uniform(*change_fraction_range) * size * size
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
