"""The development pick (tools/experiments/select_variant.py): the rule of docs/results.md."""
import random

import pytest

from tools.experiments import select_variant as sv


def row(variant, seed, iters, f1, method='hicd', split='val'):
    return dict(method=method, variant=variant, dataset='synthetic', seed=str(seed),
                iters=str(iters), F1=f'{f1:.4f}', split=split)


def test_means_match_a_naive_reference_on_random_rows():
    rng = random.Random(0)
    rows, values = [], {}
    for variant in ('a', 'b', 'c'):
        for seed in (0, 1, 2):
            for iters in (300, 800):
                f1 = rng.uniform(0, 100)
                rows.append(row(variant, seed, iters, f1))
                values.setdefault(variant, []).append(round(f1, 4))
    rows.append(row('', 0, 300, 99.0, method='lq'))  # baselines are not candidates
    rng.shuffle(rows)
    means = sv.variant_means(rows)
    assert set(means) == {'a', 'b', 'c'}
    for variant, f1s in values.items():
        assert means[variant][0] == pytest.approx(sum(f1s) / len(f1s))
        assert means[variant][1] == 6


def test_only_declared_variants_are_candidates():
    rows = [row('a', 0, 300, 40.0), row('a', 0, 800, 42.0), row('side', 0, 300, 90.0)]
    with pytest.raises(ValueError, match='missing cells'):
        sv.variant_means(rows)  # the side check lacks the 800-iteration cell
    means = sv.variant_means(rows, ['a', 'b'])
    assert means == {'a': (41.0, 2)}
    assert sv.pick(means, ['a', 'b']) == 'a'


def test_ties_go_to_the_earlier_variant_and_test_rows_are_refused():
    means = {'late': (50.005, 2), 'early': (50.0, 2), 'low': (49.9, 2)}
    assert sv.pick(means, ['early', 'late', 'low']) == 'early'  # within 0.01
    assert sv.pick(means, ['low', 'late', 'early']) == 'late'  # low is 0.105 below
    with pytest.raises(ValueError, match='val only'):
        sv.variant_means([row('a', 3, 800, 50.0, split='test')])


def test_main_writes_the_chosen_variant(tmp_path, capsys):
    variants = tmp_path / 'variants.py'
    variants.write_text("variants = dict(a=dict(mixins=[]), b=dict(mixins=[], "
                        "cfg_options=['x=1']))\n")
    csv = tmp_path / 'results.csv'
    header = 'method,variant,dataset,seed,iters,F1,split'
    lines = [header] + [','.join(r[k] for k in header.split(',')) for r in (
        row('a', 0, 300, 40.0), row('b', 0, 300, 45.0), row('side', 0, 300, 99.0))]
    csv.write_text('\n'.join(lines) + '\n')
    out = tmp_path / 'chosen.py'
    sv.main([str(variants), str(out), str(csv)])
    assert 'chosen: b' in capsys.readouterr().out
    text = out.read_text()
    assert 'b=dict(' in text and "'x=1'" in text and 'a=dict(' not in text
