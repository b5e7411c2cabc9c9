"""hicd_mm: HiCD (hierarchical correlation distillation) change detection for OpenMMLab.

Every registered component is also importable from the package top level, so that a config of
another codebase (e.g. Open-CD, ``default_scope='opencd'``) reaches it as ``hicd_mm.<Type>``
after ``custom_imports=dict(imports=['hicd_mm'])`` (mmengine resolves a dotted type that is not
a registry scope by importing it).
"""
from .version import __version__
from .datasets import *  # noqa: F401,F403
from .engine import *  # noqa: F401,F403
from .evaluation import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403
from .utils import register_all_modules, register_checkpoint_safe_globals

register_checkpoint_safe_globals()
