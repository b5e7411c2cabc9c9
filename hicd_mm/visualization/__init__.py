from .change_panels import (CHANGE_COLOUR, FN_COLOUR, FP_COLOUR, TP_COLOUR, change_panels,
                            overlay_changes)

__all__ = ['CHANGE_COLOUR', 'FN_COLOUR', 'FP_COLOUR', 'TP_COLOUR', 'change_panels',
           'overlay_changes']
