from .degradation import DegradeImage
from .formatting import MultiImgPackSegInputs
from .geometric import (MultiImgRandomCrop, MultiImgRandomFlip, MultiImgRandomRot90,
                        MultiImgRandomRotate, MultiImgResize)
from .loading import MultiImgLoadAnnotations, MultiImgLoadImageFromFile
from .photometric import MultiImgPhotoMetricDistortion
from .hq_packing import PackHQPair

__all__ = [
    'MultiImgLoadImageFromFile', 'MultiImgLoadAnnotations', 'MultiImgRandomFlip',
    'MultiImgRandomRot90', 'MultiImgRandomRotate', 'MultiImgRandomCrop', 'MultiImgResize',
    'MultiImgPhotoMetricDistortion', 'MultiImgPackSegInputs', 'DegradeImage',
    'PackHQPair'
]
