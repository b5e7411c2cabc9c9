"""Turning a distiller checkpoint into a plain detector checkpoint."""
from collections import OrderedDict
from typing import Dict

from torch import Tensor

STUDENT_PREFIX = 'student.'


def is_distiller_state(state_dict: Dict[str, Tensor]) -> bool:
    """Whether a state dict belongs to a :class:`HiCDDistiller` (its keys start with
    ``student.``)."""
    return any(key.startswith(STUDENT_PREFIX) for key in state_dict)


def student_state_dict(state_dict: Dict[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """The student's weights of a distiller state dict, with the ``student.`` prefix removed.

    Args:
        state_dict (dict): A distiller state dict (``student.*`` and ``distill_losses.*``).

    Returns:
        OrderedDict: Keys as in the plain detector.
    """
    state = OrderedDict((key[len(STUDENT_PREFIX):], value)
                        for key, value in state_dict.items() if key.startswith(STUDENT_PREFIX))
    if not state:
        raise ValueError('no "student." weights in this state dict: it is not a '
                         'HiCDDistiller checkpoint')
    return state
