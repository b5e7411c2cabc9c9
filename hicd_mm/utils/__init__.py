from .setup_env import (register_all_modules, register_checkpoint_safe_globals,
                        setup_cpu_distributed, setup_work_dir)

__all__ = [
    'register_all_modules', 'register_checkpoint_safe_globals', 'setup_cpu_distributed',
    'setup_work_dir'
]
