"""Pick ONE HiCD variant from a development run, by the rule fixed in docs/results.md.

Rule: among the ``hicd`` rows of the development CSV (``--split val``) of the variants declared
in the variants file (rows of other variants, e.g. a side check run in the same work dir, are
not candidates), the variant with the highest mean val F1 (best-on-val checkpoint) over every
(seed, iterations) cell it was run in; a variant missing any cell that another variant has is
not eligible. Ties (within 0.01 F1)
go to the variant listed first in the variants file. The pick is written as a variants file
holding only that variant (same mixins and options), for the confirmation run::

    python tools/experiments/select_variant.py configs/_base_/hicd/dev_variants.py \
        work_dirs/dev/chosen_variant.py work_dirs/dev300/results.csv work_dirs/dev800/results.csv

Exit status 2 on bad input (missing file, no ``hicd`` rows, test-split rows).
"""
import argparse
import os.path as osp
import sys
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tools.analysis.report import read_csv  # noqa: E402
from tools.experiments.plan import Variant, load_variants_file  # noqa: E402

TIE = 0.01


def variant_means(rows: Sequence[Dict[str, str]],
                  candidates: Sequence[str] = None) -> Dict[str, Tuple[float, int]]:
    """Variant -> (mean val F1, number of cells) over its ``hicd`` rows.

    Args:
        rows: Rows of the development CSV(s).
        candidates: The variants considered (default: every variant in the rows).

    Raises:
        ValueError: A row was evaluated on the test split, or a variant lacks a cell that
            another variant has (a comparison on unequal cells would not be fair).
    """
    cells: Dict[str, Dict[Tuple[str, str, str], float]] = defaultdict(dict)
    for row in rows:
        if row['method'] != 'hicd':
            continue
        if candidates is not None and row['variant'] not in candidates:
            continue
        if row.get('split', 'val') != 'val':
            raise ValueError(f'row {row["variant"]} seed {row["seed"]} is on the '
                             f'{row["split"]} split: variants are chosen on val only')
        if row['F1'] == '':
            continue
        key = (row['dataset'], row['seed'], row['iters'])
        cells[row['variant']][key] = float(row['F1'])
    if not cells:
        raise ValueError('no hicd rows with an F1')
    every = set().union(*(set(c) for c in cells.values()))
    incomplete = {v: sorted(every - set(c)) for v, c in cells.items() if set(c) != every}
    if incomplete:
        raise ValueError(f'variants missing cells (dataset, seed, iters): {incomplete}')
    return {v: (sum(c.values()) / len(c), len(c)) for v, c in cells.items()}


def pick(means: Dict[str, Tuple[float, int]], order: Sequence[str]) -> str:
    """The variant with the highest mean; ties within ``TIE`` go to the earlier in ``order``."""
    best = max(m for m, _ in means.values())
    for name in order:
        if name in means and means[name][0] >= best - TIE:
            return name
    raise ValueError(f'no variant of {list(order)} in the results {sorted(means)}')


def variants_file_text(variant: Variant) -> str:
    """A ``--variants`` file holding ``variant`` alone (absolute mixin paths)."""
    return (f'# Chosen by tools/experiments/select_variant.py (rule: docs/results.md).\n'
            f'variants = dict({variant.name}=dict(mixins={list(variant.mixins)!r}, '
            f'cfg_options={list(variant.cfg_options)!r}))\n')


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('variants', help='the --variants file of the development run')
    parser.add_argument('out', help='variants file to write with the chosen variant')
    parser.add_argument('results', nargs='+', help='results.csv file(s) of the development run')
    args = parser.parse_args(argv)
    try:
        rows = []
        for path in args.results:
            if not osp.isfile(path):
                raise ValueError(f'{path}: no such results file')
            rows += read_csv(path, ('method', 'variant', 'seed', 'iters', 'F1'))[1]
        variants = load_variants_file(args.variants)
        names = [v.name for v in variants]
        means = variant_means(rows, names)
        chosen = pick(means, names)
    except (OSError, ValueError) as exc:
        print(f'select_variant.py: error: {exc}', file=sys.stderr)
        sys.exit(2)
    for name, (mean, n) in sorted(means.items(), key=lambda kv: -kv[1][0]):
        print(f'{name:24s} mean val F1 {mean:6.2f} over {n} cells')
    print(f'chosen: {chosen}')
    with open(args.out, 'w') as f:
        f.write(variants_file_text(next(v for v in variants if v.name == chosen)))


if __name__ == '__main__':
    main()
