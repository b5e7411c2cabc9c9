from . import hooks
from .hooks import *  # noqa: F401,F403

__all__ = hooks.__all__
