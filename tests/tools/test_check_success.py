"""The issue-11 success rule (tools/experiments/check_success.py) on constructed results."""
import csv
import math
import random

import pytest

from tools.experiments import check_success as cs
from tools.experiments.plan import CSV_COLUMNS

T_975_4 = 2.7764451051977987  # two-sided 95 % t quantile, 4 degrees of freedom
T_975_16 = 2.1199052992210112  # the same, 16 degrees of freedom
CELL_LIST = [cs.CELLS[key] for key in cs.SECTION0_CELLS]  # (name, cell) in the §0 rule's order


def rows_of(cell, method, f1_by_seed, variant=''):
    return [dict(detector=cell.detector, dataset=cell.dataset, setting=cell.setting,
                 method=method, variant=variant, seed=str(seed), iters=str(cell.iters),
                 teacher_iters='800', split='test', F1=f'{f1:.4f}')
            for seed, f1 in f1_by_seed.items()]


def cell_rows(cell, hicd_minus_lq, hicd_minus_ft, rng):
    """Rows of one complete cell: HiCD = baseline + the given per-seed differences."""
    lq = {s: rng.uniform(40, 50) for s in cs.SEEDS}
    ft = {s: rng.uniform(40, 50) for s in cs.SEEDS}
    hicd = {s: lq[s] + d for s, d in zip(cs.SEEDS, hicd_minus_lq)}
    ft = {s: hicd[s] - d for s, d in zip(cs.SEEDS, hicd_minus_ft)}
    return (rows_of(cell, 'lq', lq) + rows_of(cell, 'ft_lq', ft)
            + rows_of(cell, 'hicd', hicd, 'ca_sched')
            + rows_of(cell, 'hicd_no_sem_self', {s: 1.0 for s in cs.SEEDS}, 'ca_sched'))


def write_csv(path, rows):
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS), restval='')
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


GOOD = (1.0, 2.0, 1.5, 2.5, 0.8)


def all_cells(rng, overrides=None):
    overrides = overrides or {}
    return {name: cell_rows(cell, *overrides.get(name, (GOOD, GOOD)), rng)
            for name, cell in CELL_LIST}


def judge(tables):
    cells = cs.judge_all(tables, 'ca_sched')
    collapses = [run for rows in tables.values() for run in cs.collapsed_runs(rows)]
    return cells, collapses, cs.verdict(cells, collapses)


def test_deltas_match_a_naive_t_interval_and_all_good_cells_pass():
    rng = random.Random(0)
    rows = all_cells(rng)
    tables = {'core.csv': rows[CELL_LIST[0][0]], 'rest.csv': sum(
        (rows[name] for name, _ in CELL_LIST[1:]), [])}
    cells, collapses, verdict = judge(tables)
    assert verdict == 'PASS' and not collapses
    assert [c.source for c in cells] == ['core.csv'] + ['rest.csv'] * 4
    mean = sum(GOOD) / 5
    sd = math.sqrt(sum((d - mean) ** 2 for d in GOOD) / 4)
    for c in cells:
        for base in cs.BASELINES:
            d = c.deltas[base]
            assert d.mean == pytest.approx(mean, abs=1e-3)
            assert d.low == pytest.approx(mean - T_975_4 * sd / math.sqrt(5), abs=1e-3)
            assert d.wins == 5 and d.n == 5


@pytest.mark.parametrize('diffs, reason', [
    ((3.0, 2.0, 2.5, -0.5, -0.2), 'three wins'),  # only 3 wins (and the interval reaches 0)
    ((9.0, 0.5, 0.4, 0.3, -0.1), 'interval'),  # four wins, interval reaches below 0
    ((-1.0, -2.0, -1.5, -2.5, -0.8), 'worse'),
])
def test_a_failing_cell_fails_the_rule(diffs, reason):
    rng = random.Random(1)
    name = CELL_LIST[3][0]
    rows = all_cells(rng, {name: (GOOD, diffs)})
    tables = {f'{i}.csv': r for i, r in enumerate(rows.values())}
    cells, _, verdict = judge(tables)
    assert verdict == 'FAIL', reason
    assert [c.passed for c in cells] == [True, True, True, False, True]
    d = cells[3].deltas['ft_lq']
    assert d.low <= 0 or d.wins < cs.MIN_WINS


def test_a_collapse_anywhere_fails_and_missing_seeds_or_cells_are_incomplete():
    rng = random.Random(2)
    rows = all_cells(rng)
    tables = {f'{i}.csv': r for i, r in enumerate(rows.values())}
    tables['0.csv'][0]['F1'] = '0.0000'  # the core cell's lq, seed 3: collapsed
    cells, collapses, verdict = judge(tables)
    assert verdict == 'FAIL' and collapses == ['lq[-] multi_deg_x4 seed 3']
    # No collapse, one seed of one cell missing, one cell not run at all: incomplete.
    rows = all_cells(rng)
    tables = {f'{i}.csv': r for i, r in enumerate(rows.values())}
    tables['1.csv'] = [r for r in tables['1.csv'] if not (r['method'] == 'hicd'
                                                          and r['seed'] == '7')]
    del tables['4.csv']
    cells, collapses, verdict = judge(tables)
    assert verdict == 'INCOMPLETE' and not collapses
    assert [c.complete for c in cells] == [True, False, True, True, False]
    assert cells[4].source is None and cells[1].deltas['lq'].n == 4


def test_cli_reports_every_cell_and_rejects_bad_input(tmp_path, capsys):
    rng = random.Random(3)
    rows = all_cells(rng)
    paths = [write_csv(tmp_path / f'c{i}.csv', r) for i, r in enumerate(rows.values())]
    cs.main(['--variant', 'ca_sched', *paths[:4]])
    out = capsys.readouterr().out
    assert out.count('| yes |') == 4 and out.count('| not run |') == 1  # the five §0 cells
    assert out.strip().endswith('Verdict: INCOMPLETE')
    with pytest.raises(SystemExit) as exc:
        cs.main(['--variant', 'ca_sched', str(tmp_path / 'missing.csv')])
    assert exc.value.code == 2
    assert 'no such results file' in capsys.readouterr().err
    val = [dict(r, split='val') for r in rows[CELL_LIST[0][0]]]
    with pytest.raises(SystemExit):
        cs.main(['--variant', 'ca_sched', write_csv(tmp_path / 'val.csv', val)])
    assert 'val split' in capsys.readouterr().err


def test_a_later_rule_judges_its_own_cells_seeds_and_wins(tmp_path, capsys):
    """The §0e rule: the core cell alone, seeds 8-24, 14 wins; rows of other seeds (and a
    collapse among them) are not read."""
    name, cell = cs.CELLS['core']
    rng = random.Random(4)
    seeds = list(range(8, 25))
    diffs = [rng.uniform(0.5, 3.0) for _ in seeds]
    diffs[:3] = [-0.4, -0.2, -0.1]  # 14 wins of 17
    lq = {s: rng.uniform(40, 50) for s in seeds}
    ft = {s: rng.uniform(40, 50) for s in seeds}
    hicd = {s: lq[s] + d for s, d in zip(seeds, diffs)}
    ft = {s: hicd[s] - d for s, d in zip(seeds, diffs)}
    rows = (rows_of(cell, 'lq', {**lq, 3: 0.0}) + rows_of(cell, 'ft_lq', ft)
            + rows_of(cell, 'hicd', {**hicd, 3: 50.0}, 'ca_sched'))
    rule = cs.Rule(('core', ), cs.parse_seeds('8-24'), 14)
    [verdict] = cs.judge_all({'r3.csv': rows}, 'ca_sched', rule)
    mean = sum(diffs) / 17
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 16)
    for base in cs.BASELINES:
        d = verdict.deltas[base]
        assert d.n == 17 and d.wins == 14
        assert d.low == pytest.approx(mean - T_975_16 * sd / math.sqrt(17), abs=1e-3)
    assert verdict.complete and verdict.passed
    assert cs.collapsed_runs(rows, rule.seeds) == [] and len(cs.collapsed_runs(rows)) == 1
    strict = cs.Rule(('core', ), rule.seeds, 15)
    assert cs.judge_all({'r3.csv': rows}, 'ca_sched', strict)[0].passed is False
    # one seed short: incomplete, whatever the rest says
    short = [r for r in rows if not (r['method'] == 'ft_lq' and r['seed'] == '24')]
    assert cs.judge_all({'r3.csv': short}, 'ca_sched', rule)[0].complete is False
    path = write_csv(tmp_path / 'r3.csv', rows)
    cs.main(['--variant', 'ca_sched', '--cells', 'core', '--seeds', '8-24', '--min-wins', '14',
             path])
    out = capsys.readouterr().out
    assert out.count('| core: ') == 1 and '14/17' in out and 'seeds [8, 9,' in out
    assert 'Collapsed runs (test F1 = 0, any method): 0' in out


@pytest.mark.parametrize('text, seeds', [('8-10', (8, 9, 10)), ('3,5,4', (3, 4, 5)),
                                         ('1-2,7', (1, 2, 7)), ('5', (5, ))])
def test_seed_lists_and_ranges(text, seeds):
    assert cs.parse_seeds(text) == seeds


@pytest.mark.parametrize('argv, message', [
    (['--seeds', '9-8'], 'reversed'), (['--seeds', 'a-b'], 'expected seeds'),
    (['--seeds', '3-7', '--min-wins', '6'], 'between 1 and the number of seeds'),
    (['--cells', 'nope'], 'invalid choice')])
def test_bad_rule_options_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cs.main(['--variant', 'ca_sched', *argv, 'x.csv'])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_the_breadth_rule_reads_800_iteration_cells_only(tmp_path, capsys):
    """The §0f rule: three 800-it breadth cells, seeds 25-34, 8 wins; the 300-it rows of the
    same detectors and settings in the same file are not read."""
    rng = random.Random(7)
    seeds = list(range(25, 35))

    def breadth_rows(cell, diffs_ft):
        lq = {s: rng.uniform(40, 50) for s in seeds}
        hicd = {s: lq[s] + rng.uniform(0.5, 3.0) for s in seeds}
        ft = {s: hicd[s] - d for s, d in zip(seeds, diffs_ft)}
        return (rows_of(cell, 'lq', lq) + rows_of(cell, 'ft_lq', ft)
                + rows_of(cell, 'hicd', hicd, 'ca_sched'))

    good = [rng.uniform(0.5, 3.0) for _ in seeds]
    seven_wins = [-0.3, -0.2, -0.1] + good[3:]
    keys = ('changeformer800', 'fc_res800', 'fc_blur800')
    rows = []
    for key in keys:
        rows += breadth_rows(cs.CELLS[key][1], seven_wins if key == 'fc_blur800' else good)
    for key in ('changeformer', 'fc_res', 'fc_blur'):  # 300 it: all lost, must not count
        rows += breadth_rows(cs.CELLS[key][1], [-5.0] * 10)
    rule = cs.Rule(keys, cs.parse_seeds('25-34'), 8)
    verdicts = cs.judge_all({'r3b.csv': rows}, 'ca_sched', rule)
    assert [v.passed for v in verdicts] == [True, True, False]
    assert [v.deltas['ft_lq'].wins for v in verdicts] == [10, 10, 7]
    assert cs.verdict(verdicts, []) == 'FAIL'
    cs.main(['--variant', 'ca_sched', '--cells', *keys, '--seeds', '25-34', '--min-wins', '8',
             write_csv(tmp_path / 'r3b.csv', rows)])
    out = capsys.readouterr().out
    assert out.count(', 800 it |') == 3 and ', 300 it' not in out and 'Verdict: FAIL' in out
