from .hicd_distiller import HiCDDistiller, default_hicd_terms
from .recorder import ModuleRecorder
from .student_export import is_distiller_state, student_state_dict

__all__ = [
    'HiCDDistiller', 'ModuleRecorder', 'default_hicd_terms', 'is_distiller_state',
    'student_state_dict'
]
