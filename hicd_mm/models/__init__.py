from . import backbones, change_detectors, decode_heads, distillers, losses, necks
from .backbones import *  # noqa: F401,F403
from .change_detectors import *  # noqa: F401,F403
from .data_preprocessor import DualInputSegDataPreProcessor
from .decode_heads import *  # noqa: F401,F403
from .distillers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403

__all__ = ['DualInputSegDataPreProcessor'] + [
    name for package in (backbones, change_detectors, decode_heads, distillers, losses, necks)
    for name in package.__all__
]
