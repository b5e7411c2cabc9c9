"""Where a detector's per-date encoder features and change feature are taken, and how.

Siamese detectors (hicd_mm's and Open-CD's ``SiamEncoderDecoder``: BIT, ChangeFormer, ...) call
their backbone once per date, so the backbone's outputs of call 0 and call 1 are the t1 and t2
features. Dual-input detectors (Open-CD's ``DIEncoderDecoder`` family) call the backbone once
with both images; their per-date features are found either inside the backbone (modules that
run once per date) or in each stage output, when that is ``[t1 | t2]`` concatenated on channels.
A preset names these feature points for one family; see docs/opencd.md.

How they are recorded: a :class:`ModuleRecorder` hooks one module path and keeps what it
returns (or receives) on every call; a :class:`SemanticRecorder` holds one recorder per
semantic path and splits the records by date (per call, or by channel halves).
"""
import difflib
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

# split='per_call': every path is called once per date (call 0 = t1, call 1 = t2).
# split='channel_halves': every path is called once; each stage map is [t1 | t2] on channels.
SEMANTIC_SPLITS = ('per_call', 'channel_halves')

FEATURE_PRESETS: Dict[str, dict] = dict(
    # hicd_mm detectors and Open-CD SiamEncoderDecoder (BIT, ChangeFormer, FC-Siam, ...)
    siamese=dict(semantic=['backbone'], split='per_call', change='decode_head.conv_seg'),
    # Open-CD Changer family (IA_ResNetV1c, IA_ResNeSt, IA_MixVisionTransformer backbones):
    # each stage returns cat([x_t1, x_t2], dim=1) after the interaction layers.
    changer=dict(semantic=['backbone'], split='channel_halves',
                 change='decode_head.conv_seg'),
    # Open-CD SNUNet_ECAM: the four encoder blocks shared by both dates (conv4_0 only runs on
    # t2 and is left out); the change feature is the FCN head's classifier input.
    snunet_ecam=dict(semantic=[f'backbone.conv{i}_0' for i in range(4)], split='per_call',
                     change='decode_head.conv_seg'),
    # Open-CD TinyCD: the EfficientNet blocks run on each date; the whole decoder lives in the
    # backbone, whose final pixel-wise classifier receives the change feature.
    tinycd=dict(semantic=[f'backbone._backbone.{i}' for i in range(4)], split='per_call',
                change='backbone._classify'),
)


def as_stage_tuple(output) -> Tuple[Tensor, ...]:
    """A module's output as a tuple of stage maps."""
    return tuple(output) if isinstance(output, (list, tuple)) else (output, )


def resolve_feature_points(preset: str, semantic_paths: Union[None, str, Sequence[str]],
                           split: Union[None, str], change_path: Union[None, str]) -> dict:
    """Feature points of one model: a preset, with explicitly given entries taking precedence.

    Args:
        preset (str): A key of :data:`FEATURE_PRESETS`.
        semantic_paths (str | list[str], optional): Module paths of the semantic features.
        split (str, optional): One of :data:`SEMANTIC_SPLITS`.
        change_path (str, optional): Module path whose input is the change feature.

    Returns:
        dict: ``semantic`` (list of paths), ``split`` and ``change``.
    """
    if preset not in FEATURE_PRESETS:
        raise KeyError(f'unknown feature preset {preset!r}; presets: {sorted(FEATURE_PRESETS)}')
    points = dict(FEATURE_PRESETS[preset])
    if semantic_paths is not None:
        points['semantic'] = [semantic_paths] if isinstance(semantic_paths, str) else list(
            semantic_paths)
    if split is not None:
        points['split'] = split
    if change_path is not None:
        points['change'] = change_path
    if points['split'] not in SEMANTIC_SPLITS:
        raise ValueError(f'semantic_feature split must be one of {SEMANTIC_SPLITS}, got '
                         f'{points["split"]!r}')
    return points


RECORD_SOURCES = ('output', 'input')
DROPOUT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                 nn.FeatureAlphaDropout)


def head_dropout(model: nn.Module, classifier_path: str) -> Optional[Tuple[str, nn.Module]]:
    """The dropout layer that mmseg-style heads apply to their classifier's input, if any.

    mmseg's ``BaseDecodeHead.cls_seg`` (inherited by Open-CD's heads) applies ``self.dropout``
    (``nn.Dropout2d`` when ``dropout_ratio > 0``) and then ``conv_seg``.

    Args:
        model (nn.Module): The detector.
        classifier_path (str): Path of the classifier, e.g. ``'decode_head.conv_seg'``.

    Returns:
        tuple[str, nn.Module] | None: Path and module of the classifier's sibling ``dropout``
        when it is a dropout layer that does not work in place (an in-place dropout
        overwrites its input, so the feature before it cannot be kept); else ``None``.
    """
    parent, _, _ = classifier_path.rpartition('.')
    if not parent:
        return None
    dropout = getattr(get_submodule(model, parent), 'dropout', None)
    if not isinstance(dropout, DROPOUT_TYPES) or dropout.inplace:
        return None
    return f'{parent}.dropout', dropout


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


class ChangeFeatureRecorder(ModuleRecorder):
    """Record a classifier's input, taken before the head's dropout when it comes from there.

    The teacher runs in eval mode, so its classifier input carries no dropout; in training the
    student's would, and then not even a student with the teacher's weights could match the
    teacher's correlations. So when the tensor the classifier receives is the very tensor the
    head's dropout layer (:func:`head_dropout`) returned in this pass, the dropout's input is
    recorded instead; any other classifier input (no dropout, or a head that transforms the
    dropout's output first) is recorded as it is. The pairing is by tensor identity, so it
    holds in training mode whatever else the head does with its dropout layer.

    Args:
        model (nn.Module): Model that owns the classifier.
        path (str): Dotted path of the classifier, e.g. ``'decode_head.conv_seg'``.
        before_dropout (bool): Look for the head's dropout at all.
    """

    def __init__(self, model: nn.Module, path: str, before_dropout: bool = True) -> None:
        super().__init__(model, path, 'input')
        found = head_dropout(model, path) if before_dropout else None
        self.dropout_path = found[0] if found else None
        self._dropout_handle = (found[1].register_forward_hook(self._on_dropout)
                                if found else None)
        self._last_dropout = None  # (output, input) of the dropout's latest call in this pass

    def _on_dropout(self, module: nn.Module, args: tuple, output: Tensor) -> None:
        if self.active:
            self._last_dropout = (output, args[0])

    def _on_input(self, module: nn.Module, args: tuple) -> None:
        if self.active:
            x = args[0]
            if self._last_dropout is not None and x is self._last_dropout[0]:
                x = self._last_dropout[1]
            self.buffer.append(x)

    def __exit__(self, *exc) -> None:
        self._last_dropout = None
        super().__exit__(*exc)

    def remove(self) -> None:
        """Remove the hooks from the model."""
        super().remove()
        if self._dropout_handle is not None:
            self._dropout_handle.remove()


class SemanticRecorder:
    """Records the semantic feature paths of one model and splits them by date.

    Args:
        model (nn.Module): The detector.
        paths (list[str]): Module paths whose outputs are semantic features.
        split (str): One of :data:`SEMANTIC_SPLITS`.
        role (str): ``'student'`` or ``'teacher'`` (for messages).
    """

    def __init__(self, model: nn.Module, paths: List[str], split: str, role: str) -> None:
        self.model = model
        self.paths = list(paths)
        self.split = split
        self.role = role
        self.recorders = [ModuleRecorder(model, path, 'output') for path in self.paths]

    def __enter__(self) -> 'SemanticRecorder':
        for rec in self.recorders:
            rec.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for rec in self.recorders:
            rec.__exit__(*exc)

    def per_date(self) -> List[Tuple[Tensor, ...]]:
        """``[t1_stages, t2_stages]``: every path's stage maps, in path order."""
        dates: List[List[Tensor]] = [[], []]
        for rec in self.recorders:
            if self.split == 'per_call':
                for date in (0, 1):
                    dates[date].extend(as_stage_tuple(rec.get(date)))
            else:
                for stage in as_stage_tuple(rec.get(0)):
                    if stage.dim() < 2 or stage.shape[1] % 2:
                        raise ValueError(
                            f'{self.role} semantic feature {rec.path!r} (split='
                            f"'channel_halves') has {stage.shape[1]} channels: not [t1 | t2]")
                    half_t1, half_t2 = torch.chunk(stage, 2, dim=1)
                    dates[0].append(half_t1)
                    dates[1].append(half_t2)
        return [tuple(dates[0]), tuple(dates[1])]

    def check_calls(self, call_counts: Dict[str, int]) -> None:
        """Check that every path ran as often per pass as ``split`` needs.

        Args:
            call_counts (dict): Calls per module path in one forward pass of the model.
        """
        expected = 2 if self.split == 'per_call' else 1
        for rec in self.recorders:
            got = len(rec.buffer)
            if got == expected:
                continue
            scope = rec.path.split('.')[0] + '.'
            twice = [name for name, n in call_counts.items()
                     if n == 2 and name.startswith(scope)]
            twice = sorted(twice, key=lambda name: (name.count('.'), name))[:12]
            if self.split == 'per_call' and got == 1:
                cause = ('it takes both dates in one call (a dual-input detector such as '
                         "Open-CD's DIEncoderDecoder), so its outputs cannot be split by call")
            else:
                cause = f"split={self.split!r} needs {expected} call(s) per pass"
            raise ValueError(
                f'{self.role} semantic feature path {rec.path!r} ran {got} time(s) in one '
                f'forward pass of {type(self.model).__name__}: {cause}. Use a feature preset '
                f'({sorted(FEATURE_PRESETS)}), split=\'channel_halves\' if each stage output is '
                '[t1 | t2] on channels, or name modules that run once per date; modules that '
                f'ran twice per pass: {twice or "none"}')

    def remove(self) -> None:
        """Remove the hooks."""
        for rec in self.recorders:
            rec.remove()


def count_module_calls(model: nn.Module):
    """Register hooks counting calls of every named submodule; returns (counts, handles)."""
    counts: Dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if not name:
            continue

        def hook(mod, args, out, name=name):
            counts[name] = counts.get(name, 0) + 1

        handles.append(module.register_forward_hook(hook))
    return counts, handles
