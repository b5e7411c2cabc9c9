from .bit_head import BITHead
from .changeformer_head import ChangeFormerHead
from .fc_siam_diff_head import FCSiamDiffHead
from .snunet_head import SNUNetECAMHead

__all__ = ['BITHead', 'ChangeFormerHead', 'FCSiamDiffHead', 'SNUNetECAMHead']
