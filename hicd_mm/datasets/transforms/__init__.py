from .degradation import DegradeImage
from .formatting import MultiImgPackSegInputs
from .geometric import (MultiImgRandomCrop, MultiImgRandomFlip, MultiImgRandomRot90,
                        MultiImgRandomRotate, MultiImgResize)
from .loading import MultiImgLoadAnnotations, MultiImgLoadImageFromFile
from .photometric import MultiImgPhotoMetricDistortion

__all__ = [
    'MultiImgLoadImageFromFile', 'MultiImgLoadAnnotations', 'MultiImgRandomFlip',
    'MultiImgRandomRot90', 'MultiImgRandomRotate', 'MultiImgRandomCrop', 'MultiImgResize',
    'MultiImgPhotoMetricDistortion', 'MultiImgPackSegInputs', 'DegradeImage'
]
