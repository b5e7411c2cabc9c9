"""Inference on whole bi-temporal image pairs (any size, PNG/JPG or GeoTIFF)."""
from .image_io import (GeoReference, InferenceInputError, check_output_path,
                       check_same_georeference, load_pair, read_image, write_mask)
from .inference import (infer_change_mask, infer_change_probs, init_change_detector,
                        tile_boxes, window_starts)

__all__ = [
    'GeoReference', 'InferenceInputError', 'check_output_path', 'check_same_georeference',
    'infer_change_mask', 'infer_change_probs', 'init_change_detector', 'load_pair', 'read_image',
    'tile_boxes', 'window_starts', 'write_mask'
]
