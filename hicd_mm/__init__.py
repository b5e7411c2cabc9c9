"""hicd_mm: HiCD (hierarchical correlation distillation) change detection for OpenMMLab."""
from .version import __version__
from . import datasets, engine, evaluation, models  # noqa: F401  (registers the components)
from .utils import register_checkpoint_safe_globals

register_checkpoint_safe_globals()

__all__ = ['__version__', 'register_checkpoint_safe_globals']
