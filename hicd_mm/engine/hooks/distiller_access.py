"""The distiller behind a runner's model, for the hooks that drive it."""
from mmengine.model import is_model_wrapper


def unwrapped_model(runner):
    """``runner.model`` without its DDP/model wrapper."""
    return runner.model.module if is_model_wrapper(runner.model) else runner.model


def distiller_with(runner, method: str, hook: str):
    """The unwrapped model, which must offer ``method`` (a :class:`HiCDDistiller`).

    Args:
        runner: The mmengine runner.
        method (str): The distiller method the hook calls.
        hook (str): The hook's name, for the error message.

    Raises:
        TypeError: The model has no such method.
    """
    model = unwrapped_model(runner)
    if not hasattr(model, method):
        raise TypeError(f'{hook} needs a model with {method} (a HiCDDistiller), got '
                        f'{type(model).__name__}')
    return model
