from .feature_points import ModuleRecorder
from .hicd_distiller import HiCDDistiller, default_hicd_terms

__all__ = ['HiCDDistiller', 'ModuleRecorder', 'default_hicd_terms']
