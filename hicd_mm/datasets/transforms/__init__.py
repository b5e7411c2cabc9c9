from .formatting import MultiImgPackSegInputs
from .geometric import (MultiImgRandomCrop, MultiImgRandomFlip, MultiImgRandomRot90,
                        MultiImgRandomRotate, MultiImgResize)
from .hq_pair import DegradeImage, PackHQPair
from .loading import MultiImgLoadAnnotations, MultiImgLoadImageFromFile
from .photometric import MultiImgPhotoMetricDistortion

__all__ = [
    'MultiImgLoadImageFromFile', 'MultiImgLoadAnnotations', 'MultiImgRandomFlip',
    'MultiImgRandomRot90', 'MultiImgRandomRotate', 'MultiImgRandomCrop', 'MultiImgResize',
    'MultiImgPhotoMetricDistortion', 'MultiImgPackSegInputs', 'DegradeImage',
    'PackHQPair'
]
