"""The one checkpoint loader of hicd_mm: strict loads, distiller students, teacher sanity.

Every place that puts weights into a model goes through :func:`load_weights` (``tools/test.py``,
``tools/infer.py`` via :func:`hicd_mm.apis.init_change_detector`, the robustness report) or
:func:`load_teacher_weights` (the HiCD distiller), and every place that takes the student out of
a distiller checkpoint goes through :func:`student_state_dict` / :func:`save_student_checkpoint`
(``StudentCheckpointHook``, ``tools/export_student.py``, load-time detection). Files are read by
mmengine's :class:`~mmengine.runner.CheckpointLoader` (any mmengine file backend) and keys are
renamed with mmengine's ``revise_keys`` convention (``[(regex, replacement), ...]``); loads are
strict: a checkpoint that does not match the model is an error, never random weights.
"""
import logging
import os.path as osp
import re
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import CheckpointLoader
from torch import Tensor, nn

from .setup_env import register_checkpoint_safe_globals

STUDENT_PREFIX = 'student.'
# The DDP prefix, removed as mmengine's Runner.load_checkpoint does.
DEFAULT_REVISE_KEYS: Sequence[Tuple[str, str]] = ((r'^module\.', ''), )


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or does not match the model it is loaded into."""


def resolve_checkpoint(path: str, role: str = 'checkpoint', hint: str = '') -> str:
    """``path`` itself, or for a work dir the checkpoint its ``last_checkpoint`` file names.

    Args:
        path (str): A checkpoint file or an mmengine work dir.
        role (str): What the checkpoint is for (``'teacher_ckpt'``, ...), named in errors.
        hint (str): Appended to the not-found error (e.g. how to produce the checkpoint).

    Returns:
        str: The checkpoint file.
    """
    if osp.isdir(path):
        pointer = osp.join(path, 'last_checkpoint')
        if not osp.isfile(pointer):
            raise FileNotFoundError(f'{role} {path!r} is a folder without a "last_checkpoint" '
                                    'file; give a checkpoint file')
        with open(pointer) as f:
            path = f.read().strip()
    if not osp.isfile(path):
        where = '' if osp.isabs(path) else \
            f' (relative to the current directory: {osp.abspath(path)!r})'
        suffix = f'; {hint}' if hint else ''
        raise FileNotFoundError(f'{role} not found: {path!r}{where}{suffix}')
    return path


def read_checkpoint(path: str) -> Dict[str, Any]:
    """Read a checkpoint file on the CPU as ``{'state_dict': ..., 'meta': ..., ...}``.

    A bare state dict is wrapped; the DDP ``module.`` prefix is removed.

    Args:
        path (str): The checkpoint file.

    Returns:
        dict: The checkpoint with a ``state_dict`` of tensors.
    """
    register_checkpoint_safe_globals()
    try:
        ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    except FileNotFoundError as exc:
        raise FileNotFoundError(f'checkpoint not found: {path}') from exc
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(f'cannot read checkpoint {path}: {exc}') from exc
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'checkpoint {path}: expected a dict, got {type(ckpt).__name__}')
    state = ckpt.get('state_dict', ckpt)
    if not isinstance(state, dict) or not state or not all(
            isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f'checkpoint {path}: expected a dict of tensors or an mmengine '
                              "checkpoint with a 'state_dict'")
    ckpt = dict(ckpt) if 'state_dict' in ckpt else dict(state_dict=ckpt)
    ckpt['state_dict'] = revise_keys(state, DEFAULT_REVISE_KEYS)
    return ckpt


def revise_keys(state: Dict[str, Tensor],
                rules: Sequence[Tuple[str, str]]) -> 'OrderedDict[str, Tensor]':
    """Rename keys with mmengine's ``revise_keys`` rules (``re.sub(pattern, repl, key)``)."""
    out = OrderedDict()
    for key, value in state.items():
        for pattern, repl in rules:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


def is_distiller_state(state_dict: Dict[str, Tensor]) -> bool:
    """Whether a state dict belongs to a :class:`HiCDDistiller` (keys ``student.*``)."""
    return any(key.startswith(STUDENT_PREFIX) for key in state_dict)


def student_state_dict(state_dict: Dict[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """The student's weights of a distiller state dict, under the plain detector's key names.

    Args:
        state_dict (dict): A distiller state dict (``student.*`` and ``distill_losses.*``).

    Returns:
        OrderedDict: Keys as in the plain detector.
    """
    state = OrderedDict((key[len(STUDENT_PREFIX):], value)
                        for key, value in state_dict.items() if key.startswith(STUDENT_PREFIX))
    if not state:
        raise CheckpointError('no "student." weights in this state dict: it is not a '
                              'HiCDDistiller checkpoint')
    return state


def save_student_checkpoint(distiller_state: Dict[str, Tensor], out: str,
                            meta: Optional[dict] = None) -> int:
    """Write the student of a distiller state dict as a plain detector checkpoint.

    Args:
        distiller_state (dict): The distiller's state dict.
        out (str): Output file.
        meta (dict, optional): Stored as the checkpoint's ``meta``.

    Returns:
        int: The number of tensors written.
    """
    state = student_state_dict(distiller_state)
    torch.save(dict(state_dict=state, meta=dict(meta or {})), out)
    return len(state)


def recorded_metric(ckpt: Dict[str, Any]) -> Optional[str]:
    """The best validation score a checkpoint recorded (mmengine's ``CheckpointHook``), if any.

    Returns:
        str | None: e.g. ``'best F1 71.20'`` or ``None``.
    """
    hub = ckpt.get('message_hub')
    info = hub.get('runtime_info', {}) if isinstance(hub, dict) else {}
    score = info.get('best_score')
    if score is None:
        return None
    ckpt_name = info.get('best_ckpt')
    metric = 'score'
    if isinstance(ckpt_name, str):
        found = re.search(r'best_(.+?)_(?:iter|epoch)_\d+', osp.basename(ckpt_name))
        metric = found.group(1) if found else metric
    return f'best {metric} {float(score):.2f}'


def state_dict_mismatch(own: Dict[str, Tensor], state: Dict[str, Tensor],
                        labels: Tuple[str, str] = ('missing', 'unexpected')) -> List[str]:
    """Descriptions of missing, unexpected and shape-mismatched keys (empty if they match).

    Args:
        own (dict): The state dict of the model that would receive ``state``.
        state (dict): The state dict to load.
        labels (tuple[str, str]): Names of the keys only in ``own`` and only in ``state``.

    Returns:
        list[str]: One line per kind of difference, with up to three example keys (with both
        shapes for shape mismatches).
    """
    only_own = sorted(set(own) - set(state))
    only_state = sorted(set(state) - set(own))
    mismatched = [f'{k}: {tuple(own[k].shape)} vs {tuple(state[k].shape)}'
                  for k in sorted(set(own) & set(state)) if own[k].shape != state[k].shape]
    return [f'{len(keys)} {name} key(s), e.g. {keys[:3]}'
            for name, keys in ((labels[0], only_own), (labels[1], only_state),
                               ('shape-mismatched', mismatched)) if keys]


def _describe(ckpt: Dict[str, Any]) -> str:
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    parts = [f'iter {meta["iter"]}'] if 'iter' in meta else []
    metric = recorded_metric(ckpt)
    if metric:
        parts.append(metric)
    return f' ({", ".join(parts)})' if parts else ''


def load_weights(model: nn.Module, path: str, role: str = 'model',
                 accept_distiller: bool = True) -> Dict[str, Any]:
    """Load a checkpoint into ``model`` strictly; nothing is loaded if it does not match.

    A detector given a HiCD distiller checkpoint gets the distiller's student (and says so); a
    distiller model given a plain detector checkpoint gets it as its student.

    Args:
        model (nn.Module): A detector or a :class:`HiCDDistiller` (model wrappers are
            unwrapped).
        path (str): The checkpoint file.
        role (str): What the model is (``'detector'``, ``'teacher'``), named in logs/errors.
        accept_distiller (bool): Use the student of a distiller checkpoint for a detector
            model; ``False`` refuses such a checkpoint.

    Returns:
        dict: The checkpoint read (``state_dict``, ``meta``, ...).
    """
    ckpt = read_checkpoint(path)
    load_state(model, ckpt, path, role, accept_distiller)
    return ckpt


def load_state(model: nn.Module, ckpt: Dict[str, Any], path: str, role: str = 'model',
               accept_distiller: bool = True) -> None:
    """Put the ``state_dict`` of a checkpoint read by :func:`read_checkpoint` into ``model``.

    Args:
        model (nn.Module): As in :func:`load_weights`.
        ckpt (dict): The checkpoint read from ``path``.
        path (str): Its file, named in logs and errors.
        role (str): As in :func:`load_weights`.
        accept_distiller (bool): As in :func:`load_weights`.
    """
    if is_model_wrapper(model):
        model = model.module
    state = ckpt['state_dict']
    target, own = model, model.state_dict()
    source = 'detector'
    if is_distiller_state(state) and not is_distiller_state(own):
        if not accept_distiller:
            raise CheckpointError(
                f'{role} checkpoint {path} is a HiCD distiller checkpoint (a student trained on '
                'LQ pairs), not a detector checkpoint')
        state, source = student_state_dict(state), 'HiCD distiller checkpoint: its student'
    elif is_distiller_state(own) and not is_distiller_state(state):
        target = model.student
        source = 'detector checkpoint, loaded as the student'
    elif is_distiller_state(own):
        source = 'HiCD distiller checkpoint'
    problems = state_dict_mismatch(target.state_dict(), state)
    if problems:
        raise CheckpointError(
            f'{role} checkpoint {path} does not match the model of the config: '
            + '; '.join(problems) + '. Use the config the checkpoint was trained with')
    target.load_state_dict(state, strict=True)
    print_log(f'{role}: loaded {path} [{source}, {len(state)} tensors]{_describe(ckpt)}',
              logger='current')


def train_teacher_hint(teacher_ckpt: str) -> str:
    """How to produce a missing ``teacher_ckpt`` (named in the not-found error)."""
    name = osp.splitext(osp.basename(osp.normpath(teacher_ckpt)))[0]
    return (f'train the teacher first on HQ pairs: `python tools/train.py '
            f'configs/<detector>/{name}.py`, run from the directory the path is relative to, '
            f'writes work_dirs/{name} (the HiCD config names its teacher config in its first '
            'lines); or set model.teacher_ckpt to an existing checkpoint')


def load_teacher_weights(teacher: nn.Module, teacher_ckpt: str,
                         allow_distiller_teacher: bool = False) -> Dict[str, Any]:
    """Load the HQ teacher of a HiCD distiller, strictly, and log where it came from.

    Args:
        teacher (nn.Module): The teacher detector.
        teacher_ckpt (str): Checkpoint file, or a work dir whose ``last_checkpoint`` names one.
        allow_distiller_teacher (bool): Accept a HiCD distiller checkpoint (whose student was
            trained on LQ pairs) as the teacher; refused by default.

    Returns:
        dict: The checkpoint read.
    """
    path = resolve_checkpoint(teacher_ckpt, 'teacher_ckpt', train_teacher_hint(teacher_ckpt))
    try:
        ckpt = read_checkpoint(path)
    except CheckpointError as exc:
        raise CheckpointError(f'teacher_ckpt: {exc}') from exc
    if is_distiller_state(ckpt['state_dict']) and not allow_distiller_teacher:
        raise CheckpointError(
            f'teacher_ckpt {path!r} is a HiCD distiller checkpoint: its student was trained on '
            'LQ pairs and is not an HQ teacher. Give the checkpoint of a detector trained on HQ '
            'pairs, or set model.allow_distiller_teacher=True if this is intended')
    load_state(teacher, ckpt, path, role='teacher', accept_distiller=True)
    if is_distiller_state(ckpt['state_dict']):
        print_log(f'teacher: {path} is the student of a HiCD distiller '
                  '(allow_distiller_teacher=True)', logger='current', level=logging.WARNING)
    return ckpt
