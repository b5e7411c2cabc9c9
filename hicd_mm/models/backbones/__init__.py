from .fc_siam_encoder import FCSiamEncoder
from .snunet import SNUNetEncoder

__all__ = ['FCSiamEncoder', 'SNUNetEncoder']
