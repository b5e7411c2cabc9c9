"""Registries of hicd_mm.

Every registry is a child of MMSegmentation's registry of the same kind (which in turn is a child
of MMEngine's root), so a config with ``default_scope='hicd_mm'`` resolves our types first and
falls back to mmseg / mmengine types (``CrossEntropyLoss``, ``AdamW``, ...). From another
codebase (e.g. an Open-CD config with ``default_scope='opencd'``) our components are reachable as
``hicd_mm.<Type>`` once ``custom_imports=dict(imports=['hicd_mm'])`` has been executed.

Every registry mmengine searches while building a runner is declared here, also those hicd_mm
does not register into (optimizers, schedulers, visualisers, ...): mmengine looks a type up in
the registry of the default scope and warns ("Failed to search registry with scope hicd_mm")
when that scope has no registry of the kind.
"""
from mmengine.registry import Registry
from mmseg.registry import DATA_SAMPLERS as MMSEG_DATA_SAMPLERS
from mmseg.registry import DATASETS as MMSEG_DATASETS
from mmseg.registry import EVALUATOR as MMSEG_EVALUATOR
from mmseg.registry import HOOKS as MMSEG_HOOKS
from mmseg.registry import INFERENCERS as MMSEG_INFERENCERS
from mmseg.registry import LOG_PROCESSORS as MMSEG_LOG_PROCESSORS
from mmseg.registry import LOOPS as MMSEG_LOOPS
from mmseg.registry import METRICS as MMSEG_METRICS
from mmseg.registry import MODEL_WRAPPERS as MMSEG_MODEL_WRAPPERS
from mmseg.registry import MODELS as MMSEG_MODELS
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMSEG_OPTIM_WRAPPER_CONSTRUCTORS
from mmseg.registry import OPTIM_WRAPPERS as MMSEG_OPTIM_WRAPPERS
from mmseg.registry import OPTIMIZERS as MMSEG_OPTIMIZERS
from mmseg.registry import PARAM_SCHEDULERS as MMSEG_PARAM_SCHEDULERS
from mmseg.registry import RUNNER_CONSTRUCTORS as MMSEG_RUNNER_CONSTRUCTORS
from mmseg.registry import RUNNERS as MMSEG_RUNNERS
from mmseg.registry import TASK_UTILS as MMSEG_TASK_UTILS
from mmseg.registry import TRANSFORMS as MMSEG_TRANSFORMS
from mmseg.registry import VISBACKENDS as MMSEG_VISBACKENDS
from mmseg.registry import VISUALIZERS as MMSEG_VISUALIZERS
from mmseg.registry import WEIGHT_INITIALIZERS as MMSEG_WEIGHT_INITIALIZERS

DATASETS = Registry(
    'dataset', parent=MMSEG_DATASETS, scope='hicd_mm', locations=['hicd_mm.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMSEG_DATA_SAMPLERS, scope='hicd_mm',
    locations=['hicd_mm.datasets'])
TRANSFORMS = Registry(
    'transform', parent=MMSEG_TRANSFORMS, scope='hicd_mm',
    locations=['hicd_mm.datasets.transforms'])
MODELS = Registry(
    'model', parent=MMSEG_MODELS, scope='hicd_mm', locations=['hicd_mm.models'])
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMSEG_MODEL_WRAPPERS, scope='hicd_mm',
    locations=['hicd_mm.models'])
WEIGHT_INITIALIZERS = Registry(
    'weight initializer', parent=MMSEG_WEIGHT_INITIALIZERS, scope='hicd_mm',
    locations=['hicd_mm.models'])
TASK_UTILS = Registry(
    'task util', parent=MMSEG_TASK_UTILS, scope='hicd_mm', locations=['hicd_mm.models'])
METRICS = Registry(
    'metric', parent=MMSEG_METRICS, scope='hicd_mm', locations=['hicd_mm.evaluation'])
HOOKS = Registry(
    'hook', parent=MMSEG_HOOKS, scope='hicd_mm', locations=['hicd_mm.engine'])
LOOPS = Registry(
    'loop', parent=MMSEG_LOOPS, scope='hicd_mm', locations=['hicd_mm.engine'])

# Declared so that mmengine finds a registry of every kind under the hicd_mm scope; the types
# themselves come from mmseg / mmengine.
RUNNERS = Registry('runner', parent=MMSEG_RUNNERS, scope='hicd_mm')
RUNNER_CONSTRUCTORS = Registry(
    'runner constructor', parent=MMSEG_RUNNER_CONSTRUCTORS, scope='hicd_mm')
OPTIMIZERS = Registry('optimizer', parent=MMSEG_OPTIMIZERS, scope='hicd_mm')
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMSEG_OPTIM_WRAPPERS, scope='hicd_mm')
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor', parent=MMSEG_OPTIM_WRAPPER_CONSTRUCTORS, scope='hicd_mm')
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMSEG_PARAM_SCHEDULERS, scope='hicd_mm')
EVALUATOR = Registry('evaluator', parent=MMSEG_EVALUATOR, scope='hicd_mm')
VISUALIZERS = Registry('visualizer', parent=MMSEG_VISUALIZERS, scope='hicd_mm')
VISBACKENDS = Registry('vis_backend', parent=MMSEG_VISBACKENDS, scope='hicd_mm')
LOG_PROCESSORS = Registry('log_processor', parent=MMSEG_LOG_PROCESSORS, scope='hicd_mm')
INFERENCERS = Registry('inferencer', parent=MMSEG_INFERENCERS, scope='hicd_mm')


def build_in_hicd_scope(registry: Registry, cfg: dict, **default_args):
    """Build ``cfg`` from ``registry`` with unprefixed types resolved in hicd_mm's scope.

    hicd_mm builds some components itself (correlation losses, degradation transforms); their
    types are written without a scope prefix in our mixins. mmengine resolves unprefixed types in
    the *default scope* of the running config, which is e.g. ``opencd`` for an Open-CD config, so
    they are built under hicd_mm's scope here. Components the user's own config names (the
    student detector, the host pipeline) are not built through this function and keep resolving
    in the config's default scope.

    Args:
        registry (Registry): One of the registries of this module.
        cfg (dict): Config with a ``type``.
        **default_args: Passed to ``registry.build``.

    Returns:
        The built object.
    """
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('hicd_mm'):
        return registry.build(cfg, default_args=default_args or None)
