from . import metrics
from .metrics import *  # noqa: F401,F403

__all__ = metrics.__all__
