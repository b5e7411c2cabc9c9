from .hicd_distiller import HiCDDistiller, default_hicd_terms
from .recorder import ModuleRecorder

__all__ = ['HiCDDistiller', 'ModuleRecorder', 'default_hicd_terms']
