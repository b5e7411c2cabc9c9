from .backbones import *  # noqa: F401,F403
from .change_detectors import *  # noqa: F401,F403
from .data_preprocessor import DualInputSegDataPreProcessor
from .decode_heads import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403

__all__ = ['DualInputSegDataPreProcessor']
