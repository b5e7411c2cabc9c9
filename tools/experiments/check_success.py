"""The issue-11 success rule of docs/results.md, applied to the confirmation's results.

Rule (fixed before the confirmation ran): no run of any method ends in the all-"no change"
state (test F1 = 0); in every cell the paired ΔF1 of the chosen HiCD against ``lq`` and against
``ft_lq`` has a 95 % t-interval above 0 (5 seeds, 4 degrees of freedom) and HiCD is ahead on at
least 4 of the 5 seeds. Every expected cell is reported, including those that have not run
(or not completely): the verdict is ``PASS`` only when every cell is complete and passes,
``FAIL`` as soon as a collapse or a complete failing cell exists, ``INCOMPLETE`` otherwise::

    python tools/experiments/check_success.py --variant ca_sched \
        docs/experiments/issue11/conf_*/results.csv

A cell is one (detector, dataset, iterations, setting) group of test-split rows; the
expected cells are :data:`SECTION0_CELLS` (the protocol's core cell and its four breadth
cells) unless ``--cells`` names others of :data:`CELLS` (e.g. the §0f 800-iteration ones). The
rows are read and grouped as the runner's tables do (:func:`tools.experiments.launch.
read_results`, :func:`tools.experiments.summary.collect`), and the paired differences are
theirs (:func:`tools.analysis.report.paired_delta`).
Exit status 0 with a verdict, 2 on bad input (a missing file, validation-split rows).

A later confirmation with its own rule (docs/results.md §0e: the core cell, 17 seeds) is judged
with ``--cells core --seeds 8-24 --min-wins 14``, its breadth follow-up (§0f) with
``--cells changeformer800 fc_res800 fc_blur800 --seeds 25-34 --min-wins 8``; the defaults
are the §0 rule.
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tools.analysis import report  # noqa: E402
from tools.experiments import launch, summary  # noqa: E402

SEEDS = (3, 4, 5, 6, 7)
MIN_WINS = 4
BASELINES = ('lq', 'ft_lq')


class Cell(NamedTuple):
    """One cell of the rule: where the chosen HiCD is compared with its baselines."""
    detector: str
    dataset: str  # the runner's dataset label (``synthetic-cf0.02``: ``--change-fraction 0.02``)
    iters: int
    setting: str


# The confirmation cells by the key --cells takes: the five of docs/results.md section 0 and
# the 800-iteration breadth cells of section 0f.
CELLS = {
    'core': ('core: FC-Siam-diff, multi_deg_x4, 800 it',
             Cell('fc_siam_diff', 'synthetic', 800, 'multi_deg_x4')),
    'fc_res': ('FC-Siam-diff, resolution_x4, 300 it',
               Cell('fc_siam_diff', 'synthetic', 300, 'resolution_x4')),
    'fc_blur': ('FC-Siam-diff, blur, 300 it', Cell('fc_siam_diff', 'synthetic', 300, 'blur')),
    'changeformer': ('ChangeFormer-lite, multi_deg_x4, 300 it',
                     Cell('changeformer', 'synthetic', 300, 'multi_deg_x4')),
    'fc_cf002': ('FC-Siam-diff, multi_deg_x4, 2 % change, 300 it',
                 Cell('fc_siam_diff', 'synthetic-cf0.02', 300, 'multi_deg_x4')),
    'changeformer800': ('ChangeFormer-lite, multi_deg_x4, 800 it',
                        Cell('changeformer', 'synthetic', 800, 'multi_deg_x4')),
    'fc_res800': ('FC-Siam-diff, resolution_x4, 800 it',
                  Cell('fc_siam_diff', 'synthetic', 800, 'resolution_x4')),
    'fc_blur800': ('FC-Siam-diff, blur, 800 it',
                   Cell('fc_siam_diff', 'synthetic', 800, 'blur')),
}
SECTION0_CELLS = ('core', 'fc_res', 'fc_blur', 'changeformer', 'fc_cf002')


class Rule(NamedTuple):
    """Which cells, seeds and wins a confirmation's rule asks for."""
    cells: Sequence[str] = SECTION0_CELLS
    seeds: Sequence[int] = SEEDS
    min_wins: int = MIN_WINS


Scores = Dict[summary.Cell, Dict[int, float]]  # (method, variant) -> seed -> test F1


def cell_scores(groups: dict, cell: Cell) -> Optional[Scores]:
    """The test F1 of every (method, variant) of ``cell`` (``None``: not there).

    Args:
        groups (dict): One results file's rows grouped by :func:`summary.collect`.
        cell (Cell): The cell.

    Raises:
        ValueError: The rows hold the cell more than once (e.g. with two teacher budgets).
    """
    found = [settings[cell.setting] for group, settings in groups.items()
             if (group.detector, group.dataset, group.iters, group.split)
             == (cell.detector, cell.dataset, cell.iters, 'test') and cell.setting in settings]
    if len(found) > 1:
        raise ValueError(f'{cell} appears in {len(found)} groups of one results file')
    return found[0] if found else None


class CellVerdict(NamedTuple):
    """What the rule says of one cell."""
    name: str
    source: Optional[str]
    deltas: Dict[str, Optional[report.PairedDelta]]
    complete: bool
    passed: Optional[bool]  # None while incomplete


def judge_cell(name: str, scores: Optional[Scores], variant: str,
               source: Optional[str], rule: Rule = Rule()) -> CellVerdict:
    """The rule's verdict on one cell.

    Args:
        name (str): How the cell is reported.
        scores (dict, optional): The cell's :func:`cell_scores` (``None``: not run yet).
        variant (str): The chosen HiCD variant.
        source (str, optional): The CSV the scores come from.
        rule (Rule): The seeds and wins asked for.

    Returns:
        CellVerdict: Complete when HiCD and both baselines have every seed of ``rule.seeds``;
        rows of other seeds are left out.
    """
    scores = scores or {}
    seeds = set(rule.seeds)
    hicd = {s: f1 for s, f1 in scores.get(('hicd', variant), {}).items() if s in seeds}
    baselines = {b: {s: f1 for s, f1 in scores.get((b, ''), {}).items() if s in seeds}
                 for b in BASELINES}
    complete = all(seeds <= set(f1) for f1 in (hicd, *baselines.values()))
    deltas = {b: report.paired_delta(hicd, f1) for b, f1 in baselines.items()}
    passed = None
    if complete:
        passed = all(d is not None and d.n == len(seeds) and d.low > 0
                     and d.wins >= rule.min_wins for d in deltas.values())
    return CellVerdict(name, source, deltas, complete, passed)


def parse_seeds(text: str) -> Tuple[int, ...]:
    """``'8-24'`` or ``'3,4,5'`` (or both, comma-separated) as sorted distinct seeds.

    Raises:
        argparse.ArgumentTypeError: Not integers, or an empty or reversed range.
    """
    seeds = set()
    for part in text.split(','):
        first, dash, last = part.strip().partition('-')
        try:
            low, high = int(first), int(last if dash else first)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r}: expected seeds like 3,4,5 or 8-24')
        if high < low:
            raise argparse.ArgumentTypeError(f'{text!r}: range {part.strip()} is reversed')
        seeds.update(range(low, high + 1))
    return tuple(sorted(seeds))


def collapsed_runs(rows: Sequence[Dict[str, str]],
                   seeds: Optional[Sequence[int]] = None) -> List[str]:
    """Every run (any method; of ``seeds`` if given) whose test F1 is 0, as
    ``method[variant] setting seed``."""
    return [f"{r['method']}[{r['variant'] or '-'}] {r['setting']} seed {r['seed']}"
            for r in rows if r['F1'] != '' and float(r['F1']) == 0
            and (seeds is None or int(r['seed']) in seeds)]


def verdict(cells: Sequence[CellVerdict], collapses: Sequence[str]) -> str:
    """``PASS``, ``FAIL`` or ``INCOMPLETE`` (see the module docstring)."""
    if collapses or any(c.passed is False for c in cells):
        return 'FAIL'
    return 'PASS' if all(c.passed for c in cells) else 'INCOMPLETE'


def load(paths: Sequence[str]) -> Dict[str, List[Dict[str, str]]]:
    """Test-split rows per CSV path.

    Raises:
        ValueError: A file is missing, is not a results CSV of the runner, or holds validation
            rows (the rule reads test rows).
    """
    out = {}
    for path in paths:
        if not osp.isfile(path):
            raise ValueError(f'{path}: no such results file')
        rows = launch.read_results(path)
        val = [r for r in rows if r['split'] != 'test']
        if val:
            raise ValueError(f'{path}: {len(val)} row(s) on the {val[0]["split"]} split; the '
                             'rule reads the confirmation (test split) only')
        out[path] = rows
    return out


def judge_all(tables: Dict[str, List[Dict[str, str]]], variant: str,
              rule: Rule = Rule()) -> List[CellVerdict]:
    """Every expected cell of ``rule``, judged from the first CSV that holds it."""
    groups_by_path = {path: summary.collect(rows) for path, rows in tables.items()}
    verdicts = []
    for key in rule.cells:
        name, cell = CELLS[key]
        source = scores = None
        for path, groups in groups_by_path.items():
            scores = cell_scores(groups, cell)
            if scores is not None:
                source = path
                break
        verdicts.append(judge_cell(name, scores, variant, source, rule))
    return verdicts


def markdown(cells: Sequence[CellVerdict], collapses: Sequence[str], variant: str,
             rule: Rule = Rule()) -> str:
    """The report: one row per cell, the collapsed runs, the verdict."""
    header = ['cell', 'ΔF1 vs lq [95 % CI] wins', 'ΔF1 vs ft_lq [95 % CI] wins', 'cell passes']
    rows = []
    for c in cells:
        state = ('not run' if c.source is None else
                 'incomplete' if not c.complete else 'yes' if c.passed else 'no')
        rows.append([c.name] + [report.format_delta(c.deltas.get(b)) for b in BASELINES]
                    + [state])
    lines = [f'Issue-11 success rule, chosen HiCD `{variant}`, seeds {list(rule.seeds)} '
             f'(a cell passes with both intervals above 0 and >= {rule.min_wins} wins each)',
             '']
    lines += report.markdown_table(header, rows, ['l', 'r', 'r', 'l'])
    lines += ['', f'Collapsed runs (test F1 = 0, any method): {len(collapses)}'
              + (': ' + '; '.join(collapses) if collapses else ''),
              '', f'Verdict: {verdict(cells, collapses)}']
    return '\n'.join(lines) + '\n'


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('results', nargs='+', help='results.csv of the confirmation cells')
    parser.add_argument('--variant', required=True, help='the chosen HiCD variant')
    parser.add_argument('--cells', nargs='+', choices=list(CELLS), default=list(SECTION0_CELLS),
                        help='the cells the rule asks for (default: the five of section 0)')
    parser.add_argument('--seeds', type=parse_seeds, default=SEEDS,
                        help='seeds the rule asks for, e.g. 3,4,5 or 8-24 (default: 3-7)')
    parser.add_argument('--min-wins', type=int, default=MIN_WINS,
                        help='seeds HiCD must be ahead on, against each baseline (default: 4)')
    args = parser.parse_args(argv)
    if not 1 <= args.min_wins <= len(args.seeds):
        parser.error(f'--min-wins {args.min_wins}: must be between 1 and the number of seeds '
                     f'({len(args.seeds)})')
    rule = Rule(tuple(args.cells), args.seeds, args.min_wins)
    try:
        tables = load(args.results)
        cells = judge_all(tables, args.variant, rule)
    except (OSError, ValueError) as exc:
        print(f'check_success.py: error: {exc}', file=sys.stderr)
        sys.exit(2)
    collapses = [f'{osp.basename(osp.dirname(path))}: {run}'
                 for path, rows in tables.items() for run in collapsed_runs(rows, rule.seeds)]
    print(markdown(cells, collapses, args.variant, rule), end='')


if __name__ == '__main__':
    main()
