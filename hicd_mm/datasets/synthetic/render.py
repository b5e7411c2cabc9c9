"""Rendering of one date of a synthetic scene: acquisition conditions (pseudo-changes), layers."""
from dataclasses import dataclass
from typing import Tuple, Union

import cv2
import numpy as np

from .drawing import (_ONE, _SHIFT, _blend, _colour, _draw_polygon, _fixed, _rect_corners,
                      _value_noise)
from .palette import (_CAR_RGB, _COVER_GREENNESS, _COVER_RGB, _GREENING_RGB, _HAZE_RGB,
                      _YELLOWING_RGB)
from .scene import _Building, _grown, _roof_halves, _Scene, _Tree

MAX_MISREGISTRATION_PX = 2.0


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


def _season_shift(season: float) -> np.ndarray:
    """RGB shift of fully green vegetation for a season in [-1 (lush), +1 (dry)]."""
    return (season * _YELLOWING_RGB if season > 0 else -season * _GREENING_RGB).astype(np.float32)


def _present(item: Union['_Building', '_Tree'], date: str) -> bool:
    """Whether a building or tree stands at date ``'a'`` or ``'b'``."""
    return item.in_a if date == 'a' else item.in_b


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
