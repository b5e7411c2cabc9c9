"""Recording intermediate tensors of a model by module path, with a per-call buffer."""
import difflib
from typing import Any, List

from torch import nn

RECORD_SOURCES = ('output', 'input')


def get_submodule(model: nn.Module, path: str) -> nn.Module:
    """``model.get_submodule(path)`` with an error that lists the closest existing paths.

    Args:
        model (nn.Module): Model to search.
        path (str): Dotted module path, e.g. ``'decode_head.conv_seg'``.

    Returns:
        nn.Module: The submodule.
    """
    names = [name for name, _ in model.named_modules() if name]
    if path not in names:
        close = difflib.get_close_matches(path, names, n=5, cutoff=0.4)
        raise KeyError(f'module path {path!r} does not exist in {type(model).__name__}; '
                       f'closest matches: {close or names[:5]}')
    return model.get_submodule(path)


class ModuleRecorder:
    """Record what a submodule returns (or receives) each time it is called.

    A siamese backbone is called once per date, so after one forward pass ``buffer[0]`` holds
    the t1 features and ``buffer[1]`` the t2 features. Recording is off unless the recorder is
    used as a context manager; entering it clears the buffer.

    Args:
        model (nn.Module): Model that owns the submodule.
        path (str): Dotted path of the submodule.
        source (str): ``'output'`` (forward hook) or ``'input'`` (first positional input,
            forward pre-hook), e.g. the input of ``decode_head.conv_seg`` is the change feature.
    """

    def __init__(self, model: nn.Module, path: str, source: str = 'output') -> None:
        if source not in RECORD_SOURCES:
            raise ValueError(f'source must be one of {RECORD_SOURCES}, got {source!r}')
        self.path = path
        self.source = source
        self.buffer: List[Any] = []
        self.active = False
        module = get_submodule(model, path)
        if source == 'output':
            self._handle = module.register_forward_hook(self._on_output)
        else:
            self._handle = module.register_forward_pre_hook(self._on_input)

    def _on_output(self, module: nn.Module, args: tuple, output: Any) -> None:
        if self.active:
            self.buffer.append(output)

    def _on_input(self, module: nn.Module, args: tuple) -> None:
        if self.active:
            self.buffer.append(args[0])

    def get(self, call_index: int) -> Any:
        """The record of the ``call_index``-th call (0-based) since the context was entered."""
        if call_index >= len(self.buffer):
            raise RuntimeError(
                f'{self.path!r} ({self.source}) was called {len(self.buffer)} time(s) in this '
                f'forward pass, record {call_index} was requested')
        return self.buffer[call_index]

    def __enter__(self) -> 'ModuleRecorder':
        self.buffer = []
        self.active = True
        return self

    def __exit__(self, *exc) -> None:
        self.active = False

    def remove(self) -> None:
        """Remove the hook from the model."""
        self._handle.remove()
