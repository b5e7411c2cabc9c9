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


def test_breakdown_term_sets_split_the_terms_by_feature():
    terms = default_hicd_terms()
    semantic, change = bench.terms_of(terms, 'sem_'), bench.terms_of(terms, 'chg_')
    assert set(semantic) == {'sem_self', 'sem_cross', 'sem_global'}
    assert set(change) == {'chg_self', 'chg_global'}
    assert {**semantic, **change} == terms


@pytest.mark.parametrize('pool_size, grid', [(None, 16), (8, 8)])
def test_change_gram_product_has_the_change_maps_pooled_shape(pool_size, grid):
    """The timed product is C x N x C on the classifier input of the detector, pooled like the
    change terms pool it; its FLOPs follow from that shape."""
    import torch
    from mmengine.registry import DefaultScope

    from hicd_mm.models.distillers import ModuleRecorder
    from hicd_mm.registry import MODELS
    model_cfg, scope, preset = bench.load_model_cfg(
        'configs/_base_/models/fc_siam_diff.py', REPO_ROOT)
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(model_cfg).eval()
    pairs = torch.randn(2, 6, 64, 64)
    recorder = ModuleRecorder(model, 'decode_head.conv_seg', 'input')
    with torch.no_grad(), recorder:
        model.decode_head(model.extract_feat(pairs))
    channels, side = recorder.get(0).shape[1], recorder.get(0).shape[-1]
    assert side == 64  # FC-Siam-diff's change map has the input's resolution
    gram, flops = bench.change_gram_fn(model, preset, pairs[:, :, ::4, ::4], pool_size)
    assert flops == 2.0 * 2 * channels * channels * grid * grid
    gram()  # runs on that shape
