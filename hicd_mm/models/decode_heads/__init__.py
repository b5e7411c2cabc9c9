from .fc_siam_diff_head import FCSiamDiffHead

__all__ = ['FCSiamDiffHead']
