"""``results.md`` and ``results_f1.png`` of the experiment runner, from ``results.csv``.

Per group (detector, dataset, iterations, teacher iterations, evaluated split) and setting,
one row per (method, variant): F1 and AP mean ± sd over seeds, the best-on-val F1, the
number of collapsed runs (F1 = 0: nothing or nothing right predicted as change) and the paired
differences in F1 against the LQ baseline and against ``ft_lq`` (mean, 95 % t-interval, wins).
The CSV, table and plot primitives are :mod:`tools.analysis.report`.
"""
import math
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from tools.analysis import report

from .launch import row_key
from .plan import CLEAN, METHODS, SETTINGS, method_label

BASELINES = (('lq', 'LQ baseline'), ('ft_lq', 'ft_lq'))


class GroupKey(NamedTuple):
    """Rows that are compared with each other."""
    detector: str
    dataset: str
    iters: int
    teacher_iters: int
    split: str


Cell = Tuple[str, str]  # (method, variant)


def collect(rows: Iterable[Dict[str, str]], metric: str = 'F1'
            ) -> Dict[GroupKey, Dict[str, Dict[Cell, Dict[int, float]]]]:
    """``metric`` per seed: ``{group: {setting: {(method, variant): {seed: value}}}}``.

    A key that appears more than once counts once (its last row); empty cells (e.g. ``AP``
    before the metric reported it) are left out.
    """
    out: Dict[GroupKey, Dict[str, Dict[Cell, Dict[int, float]]]] = {}
    for row in rows:
        key = row_key(row)
        text = row.get(metric, '')
        if text in ('', None):
            continue
        group = GroupKey(key.detector, key.dataset, key.iters, key.teacher_iters, key.split)
        cells = out.setdefault(group, {}).setdefault(key.setting, {})
        cells.setdefault((key.method, key.variant), {})[key.seed] = float(text)
    return out


def _ordered(names: Iterable[str], order: Sequence[str]) -> List[str]:
    names = set(names)
    return [n for n in order if n in names] + sorted(names - set(order))


def _ordered_cells(cells: Iterable[Cell]) -> List[Cell]:
    rank = {m: i for i, m in enumerate(METHODS)}
    return sorted(set(cells), key=lambda c: (rank.get(c[0], len(rank)), c[0], c[1]))


def setting_table(f1: Dict[Cell, Dict[int, float]], ap: Dict[Cell, Dict[int, float]],
                  val_f1: Dict[Cell, Dict[int, float]]) -> List[str]:
    """Markdown lines of one setting's table (see the module docstring)."""
    header = ['method', 'variant', 'F1', 'AP', 'best val F1', 'collapsed']
    header += [f'ΔF1 vs {label} [95 % CI] wins' for _, label in BASELINES]
    rows = []
    for cell in _ordered_cells(f1):
        values = f1[cell]
        deltas = [report.format_delta(report.paired_delta(values, f1[(base, '')]))
                  if (base, '') in f1 and cell != (base, '') else '–'
                  for base, _ in BASELINES]
        rows.append([method_label(cell[0]), cell[1] or '–',
                     report.format_summary(report.summarize(list(values.values()))),
                     _summary_of(ap.get(cell)), _summary_of(val_f1.get(cell)),
                     f'{sum(v == 0 for v in values.values())}/{len(values)}', *deltas])
    return report.markdown_table(header, rows, ['l', 'l'] + ['r'] * (len(header) - 2))


def _summary_of(values: Optional[Dict[int, float]]) -> str:
    return report.format_summary(report.summarize(list(values.values())) if values else None)


def markdown_report(rows: List[Dict[str, str]]) -> str:
    """``results.md``: one table per group and setting."""
    f1, ap, val_f1 = collect(rows, 'F1'), collect(rows, 'AP'), collect(rows, 'val_F1')
    parts = [
        '# Experiment results', '',
        'Changed-class scores in percent on the evaluated split, each run at its best-on-val '
        'checkpoint; mean ± sample standard deviation over seeds (n = seeds). `best val F1` is '
        'the validation F1 that chose the checkpoint (an optimistic number: the maximum over '
        'the validations). `collapsed`: runs with F1 = 0. ΔF1: paired by seed, mean [two-sided '
        '95 % t-interval] and the number of seeds where the method is ahead. `teacher on HQ` is '
        'evaluated on the clean split, every other method on the setting\'s fixed degraded '
        'split (seed 0). Written by `tools/run_experiments.py` from `results.csv`.'
    ]
    for group in sorted(f1):
        title = (f'{group.detector} on {group.dataset}, {group.iters} iterations (teacher '
                 f'{group.teacher_iters}), {group.split} split')
        for setting in _ordered(f1[group], (CLEAN, *SETTINGS)):
            parts += ['', f'## {title}: {setting}', '']
            parts += setting_table(f1[group][setting], ap.get(group, {}).get(setting, {}),
                                   val_f1.get(group, {}).get(setting, {}))
    if not f1:
        parts += ['', 'No results yet.']
    return '\n'.join(parts) + '\n'


def plot_f1(rows: List[Dict[str, str]], path: str) -> None:
    """Grouped bars of F1 (mean, sd as error bar): groups = settings, bars = methods and
    variants; one panel per group."""
    f1 = collect(rows, 'F1')
    if not f1:
        raise ValueError('no results to plot')
    plt = report.pyplot()
    fig, axes = plt.subplots(len(f1), 1, figsize=(11, 3.6 * len(f1)), squeeze=False)
    for ax, group in zip(axes[:, 0], sorted(f1)):
        settings = _ordered(f1[group], (CLEAN, *SETTINGS))
        cells = _ordered_cells(c for s in settings for c in f1[group][s])
        colors = {c: f'C{i % 10}' for i, c in enumerate(cells)}
        width = 0.8 / max(len(f1[group][s]) for s in settings)
        labelled = set()
        for j, setting in enumerate(settings):
            present = _ordered_cells(f1[group][setting])
            for i, cell in enumerate(present):
                s = report.summarize(list(f1[group][setting][cell].values()))
                label = None if cell in labelled else method_label(*cell)
                labelled.add(cell)
                ax.bar(j + (i - (len(present) - 1) / 2) * width, s.mean, width,
                       yerr=0.0 if math.isnan(s.std) else s.std, capsize=2,
                       color=colors[cell], label=label)
        ax.set_xticks(range(len(settings)))
        ax.set_xticklabels(settings, fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_ylabel('F1 (%)')
        ax.set_title(f'{group.detector} on {group.dataset}, {group.iters} it (teacher '
                     f'{group.teacher_iters}), {group.split} split: mean ± sd over seeds',
                     fontsize=9)
        ax.legend(ncol=4, fontsize=7, loc='upper right')
    report.save_figure(fig, path)


def write_reports(csv_path: str, md_path: str, png_path: Optional[str] = None) -> None:
    """Rewrite ``results.md`` (and the plot, if a path is given) from the CSV."""
    from .launch import read_results
    rows = read_results(csv_path)
    report.write_text(md_path, markdown_report(rows))
    if png_path is not None and rows:
        plot_f1(rows, png_path)
