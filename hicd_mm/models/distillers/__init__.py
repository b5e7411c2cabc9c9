from .feature_points import ModuleRecorder
from .hicd_distiller import HiCDDistiller, HQPairDataPreprocessor, default_hicd_terms

__all__ = ['HiCDDistiller', 'HQPairDataPreprocessor', 'ModuleRecorder', 'default_hicd_terms']
