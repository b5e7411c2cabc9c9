"""The term sets that tools/benchmark/bench_distill_overhead.py times (no timing here)."""
import argparse
import os.path as osp
import sys

import pytest

from tests.conftest import REPO_ROOT

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'benchmark'))
import bench_distill_overhead as bench  # noqa: E402

from hicd_mm.models.distillers import default_hicd_terms  # noqa: E402


def args(**kwargs):
    values = dict(terms_config=None, pool_size=None, gram_dtype=None)
    values.update(kwargs)
    return argparse.Namespace(**values)


def pools(terms):
    return {name: term['loss']['pool_size'] for name, term in terms.items()}


def test_default_terms_unless_a_mixin_is_given():
    assert bench.distill_terms(args()) == default_hicd_terms()
    terms = bench.distill_terms(args(terms_config='configs/_base_/hicd/hicd_chg_pool32.py'))
    assert pools(terms) == dict(sem_self=64, sem_cross=64, sem_global=64, chg_self=32,
                                chg_global=32)
    assert {n: t['loss']['type'] for n, t in terms.items()} == \
        {n: t['loss']['type'] for n, t in default_hicd_terms().items()}


def test_overrides_reach_every_term_and_a_config_without_terms_is_refused():
    terms = bench.distill_terms(args(terms_config='configs/_base_/hicd/hicd_change_aware.py',
                                     pool_size=16, gram_dtype='float64'))
    assert set(pools(terms).values()) == {16}
    assert {t['loss']['gram_dtype'] for t in terms.values()} == {'float64'}
    assert terms['chg_self']['loss']['class_balance'] == 'rows'  # the mixin's own change kept
    with pytest.raises(SystemExit, match='no hicd_terms'):
        bench.distill_terms(args(terms_config='configs/_base_/hicd/from_teacher.py'))


@pytest.mark.parametrize('fraction', [0.0, 0.02, 0.08, 0.3])
def test_benchmark_labels_are_change_blobs(fraction):
    """Rectangles covering at least the fraction asked (and not far above it), the same labels
    on every call; a feature grid four times coarser sees a boundary in a minority of its
    cells (i.i.d. random pixels would put one in nearly all of them)."""
    import torch
    import torch.nn.functional as F
    from bench_detectors import make_samples
    samples = make_samples(4, 64, fraction)
    labels = torch.stack([s.gt_sem_seg.data for s in samples]).float()
    assert set(labels.unique().tolist()) <= {0.0, 1.0}
    per_sample = labels.mean((1, 2, 3))
    assert (per_sample >= fraction).all() and (per_sample < fraction + 0.1).all()
    again = torch.stack([s.gt_sem_seg.data for s in make_samples(4, 64, fraction)]).float()
    assert torch.equal(labels, again)
    cells = F.avg_pool2d(labels, 4)
    boundary = ((cells > 0) & (cells < 1)).float().mean()
    assert boundary < 0.5
