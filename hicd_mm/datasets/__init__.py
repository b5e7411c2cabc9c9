from . import transforms
from .bandon import BANDONDataset
from .base_cd import BaseCDDataset
from .folder_cd import CDFolderDataset
from .levir_cd import LEVIRCDDataset
from .samplers import ChangeBalancedSampler
from .svcd import SVCDDataset
from .transforms import *  # noqa: F401,F403

__all__ = ['BaseCDDataset', 'ChangeBalancedSampler', 'LEVIRCDDataset', 'SVCDDataset',
           'BANDONDataset', 'CDFolderDataset'] + transforms.__all__
