from .fc_siam_encoder import FCSiamEncoder

__all__ = ['FCSiamEncoder']
