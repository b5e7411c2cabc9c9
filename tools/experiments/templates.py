"""The one template source of generated configs.

Used by ``tools/misc/generate_hicd_configs.py`` (the checked-in ``configs/hicd/**`` files) and by
the experiment runner (configs written into its work dir). Every generated config is a thin
child: a detector config + a degradation mixin (the LQ baseline), plus a distillation mixin for
a distilled student, or a child of such a student config that overrides a few model keys
(ablations, ``ft_lq``, variants).

Where the degradation enters a config is :func:`degradation_lines` alone, so a change of that
mechanism is made in one small function: the degradation step is spliced into the host's own
pipelines right before its packer (wrapped in ``hicd_mm.PackHQPair`` for distilled students).
"""
import pprint
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

DETECTORS = ('fc_siam_diff', 'bit', 'changeformer', 'snunet')


def _base_list(paths: Sequence[str]) -> str:
    """``_base_ = [...]``: on one line for up to two files, otherwise up to two per line
    within 100 columns."""
    quoted = [f"'{p}'" for p in paths]
    if len(quoted) <= 2:
        return f"_base_ = [{', '.join(quoted)}]\n"
    rows: List[List[str]] = []
    for item in quoted:
        row = rows[-1] if rows else None
        if row is not None and len(row) < 2 and len(', '.join(row + [item])) + 5 <= 100:
            row.append(item)
        else:
            rows.append([item])
    return '_base_ = [\n' + ',\n'.join(f"    {', '.join(row)}" for row in rows) + '\n]\n'


def degradation_lines(train_degradation: str, hq_pair: bool,
                      separate_test_loader: bool = False) -> str:
    """Config lines that insert the degradation step into the host's pipelines, right before
    the packer: training with the mixin's ``train_degradation`` variable of that name,
    validation and test with its fixed ``test_degradation``.

    Args:
        train_degradation (str): ``'train_degradation'`` (keeps the HQ copy, for distillers)
            or ``'lq_train_degradation'`` (the LQ baseline).
        hq_pair (bool): Wrap the host's packer in ``hicd_mm.PackHQPair`` so the HQ copy
            reaches the distiller as ``inputs_hq`` (distilled students).
        separate_test_loader (bool): Splice the test loader's own pipeline instead of
            ``test_dataloader = val_dataloader`` (hosts whose test set differs from val).

    Returns:
        str: The lines (the degradation mixin must be among the config's ``_base_``).
    """
    packer = ("dict(type='hicd_mm.PackHQPair', "
              'packer=_base_.train_dataloader.dataset.pipeline[-1])'
              if hq_pair else '_base_.train_dataloader.dataset.pipeline[-1]')
    lines = ('train_dataloader = dict(dataset=dict(pipeline=[\n'
             f'    *_base_.train_dataloader.dataset.pipeline[:-1], _base_.{train_degradation},\n'
             f'    {packer}]))\n' + _eval_loader_lines('val'))
    if separate_test_loader:
        return lines + _eval_loader_lines('test')
    return lines + 'test_dataloader = val_dataloader\n'


def _eval_loader_lines(split: str) -> str:
    return (f'{split}_dataloader = dict(dataset=dict(pipeline=[\n'
            f'    *_base_.{split}_dataloader.dataset.pipeline[:-1], _base_.test_degradation,\n'
            f'    _base_.{split}_dataloader.dataset.pipeline[-1]]))\n')


def opencd_lq_config(header: Iterable[str], base_path: str, degradation_path: str) -> str:
    """The LQ baseline of an Open-CD config (``base_path`` may be an expression such as
    ``'{{$OPENCD_ROOT:...}}/configs/x.py'``).

    Args:
        header (iterable[str]): Comment lines (without ``#``).
        base_path (str): The Open-CD config.
        degradation_path (str): The degradation mixin, relative to the generated file.

    Returns:
        str: The config text.
    """
    return (_comment(header) + _base_list([base_path, degradation_path]) + _HICD_IMPORT +
            degradation_lines('lq_train_degradation', hq_pair=False, separate_test_loader=True))


def opencd_distiller_config(header: Iterable[str], base_path: str, degradation_path: str,
                            terms_path: str, preset: str, teacher_ckpt: str) -> str:
    """A HiCD student of an Open-CD config: "the LQ baseline + the distiller".

    Args:
        header (iterable[str]): Comment lines (without ``#``).
        base_path (str): The Open-CD config.
        degradation_path (str): The degradation mixin, relative to the generated file.
        terms_path (str): The distillation mixin (``hicd_terms``), relative to the file.
        preset (str): The distiller's ``feature_preset`` for that detector family.
        teacher_ckpt (str): The teacher's checkpoint or work dir.

    Returns:
        str: The config text.
    """
    return (_comment(header) + _base_list([base_path, degradation_path, terms_path]) +
            _HICD_IMPORT +
            'model = dict(\n'
            '    _delete_=True,\n'
            "    type='hicd_mm.HiCDDistiller',\n"
            '    student=_base_.model,\n'
            f'    feature_preset={preset!r},\n'
            f'    teacher_ckpt={teacher_ckpt!r},\n'
            '    distill_terms=_base_.hicd_terms)\n' +
            degradation_lines('train_degradation', hq_pair=True, separate_test_loader=True))


_HICD_IMPORT = "custom_imports = dict(imports=['hicd_mm'], allow_failed_imports=False)\n"


def lq_config(header: Iterable[str], base_path: str, degradation_path: str) -> str:
    """The LQ baseline: the detector trained and tested on pairs whose B is degraded.

    Args:
        header (iterable[str]): Comment lines (without ``#``).
        base_path (str): The detector config, relative to the generated file.
        degradation_path (str): The degradation mixin, relative to the generated file.

    Returns:
        str: The config text.
    """
    return (_comment(header) + _base_list([base_path, degradation_path]) +
            degradation_lines('lq_train_degradation', hq_pair=False))


def distiller_config(header: Iterable[str], base_path: str, degradation_path: str,
                     terms_path: str, teacher_ckpt: Optional[str]) -> str:
    """A distilled student: ``HiCDDistiller`` around the detector with a mixin's ``hicd_terms``.

    Args:
        header (iterable[str]): Comment lines (without ``#``).
        base_path (str): The detector config, relative to the generated file.
        degradation_path (str): The degradation mixin, relative to the generated file.
        terms_path (str): The distillation mixin (``hicd_terms``), relative to the file.
        teacher_ckpt (str, optional): The teacher's checkpoint (``None``: given at run time
            with ``--cfg-options model.teacher_ckpt=PATH``).

    Returns:
        str: The config text.
    """
    return (_comment(header) + _base_list([base_path, degradation_path, terms_path]) +
            'model = dict(\n'
            '    _delete_=True,\n'
            "    type='HiCDDistiller',\n"
            '    student={{_base_.model}},\n'
            f'    teacher_ckpt={teacher_ckpt!r},\n'
            '    distill_terms={{_base_.hicd_terms}})\n' +
            degradation_lines('train_degradation', hq_pair=True))


def child_config(header: Iterable[str], parent_path: str,
                 overrides: Mapping[str, Any]) -> str:
    """A child of a generated config that overrides top-level keys (merged as mmengine does:
    dicts key by key, anything else replaced; ``_delete_=True`` replaces a dict).

    Args:
        header (iterable[str]): Comment lines (without ``#``).
        parent_path (str): The parent config, relative to the generated file.
        overrides (mapping): Top-level key -> value (plain Python literals).

    Returns:
        str: The config text.
    """
    lines = [f'{key} = {_literal(value)}\n' for key, value in overrides.items()]
    return _comment(header) + _base_list([parent_path]) + ''.join(lines)


def zero_terms(terms: Iterable[str]) -> Dict[str, dict]:
    """``distill_terms`` overrides switching the given terms off (``loss_weight=0``: the
    distiller does not build them)."""
    return {term: dict(loss=dict(loss_weight=0.0)) for term in terms}


def _comment(lines: Iterable[str]) -> str:
    return ''.join(f'# {line}\n' if line else '#\n' for line in lines)


def _literal(value: Any) -> str:
    """A Python literal of ``value`` (dicts with string keys written as ``dict(...)``)."""
    if isinstance(value, Mapping) and all(isinstance(k, str) and k.isidentifier()
                                          for k in value):
        return 'dict(' + ', '.join(f'{k}={_literal(v)}' for k, v in value.items()) + ')'
    if isinstance(value, (list, tuple)):
        items = ', '.join(_literal(v) for v in value)
        if isinstance(value, list):
            return f'[{items}]'
        return f'({items},)' if len(value) == 1 else f'({items})'
    return pprint.pformat(value, width=1000)
