"""Colours and scene kinds of the synthetic aerial scenes (data only).

Colours are RGB (converted to BGR at the very end of rendering).
"""
from typing import Dict

import numpy as np

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
