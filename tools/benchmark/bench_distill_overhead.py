"""Train-step time of a HiCD student vs the same detector trained alone (CPU, one run).

For each detector config, two models are built with the same seed: the plain detector, and
a :class:`~hicd_mm.models.HiCDDistiller` whose student and teacher are that detector with the
default HiCD terms (``hicd_default.py``: semantic self/cross/global on every encoder stage,
change self/global). One training step = forward with the losses, backward, AdamW step on a
batch of random pairs (the distiller also gets the HQ copy as ``inputs_hq``). The two steps are
timed **interleaved** (plain, HiCD, plain, HiCD, ...) so that a change of machine load hits
both alike, and the ratio of the medians is printed. The teacher's no-grad forward alone is
timed too: ``(plain + teacher) / plain`` is the floor of the ratio.

Open-CD's own detector configs are timed the same way with ``--opencd`` (needs Open-CD
importable and ``OPENCD_ROOT``; the environment of ``tools/opencd/setup_opencd_env.sh``): each
model is built in the config's default scope (``opencd``), pretrained weights are not loaded,
and the distiller uses the feature preset given after the path (``PATH:PRESET``, default
``siamese``).

Usage::

    python tools/benchmark/bench_distill_overhead.py              # BIT r18, ChangeFormer MiT-b0
    python tools/benchmark/bench_distill_overhead.py --repeats 5 --configs \
        configs/fc_siam_diff/fc_siam_diff_cpu-1k_synthetic.py
    OPENCD_ROOT=/path/to/open-cd python tools/benchmark/bench_distill_overhead.py --opencd
    OPENCD_ROOT=... python tools/benchmark/bench_distill_overhead.py --opencd \
        --terms-config configs/_base_/hicd/hicd_chg_pool32.py   # the terms of a mixin

``--terms-config`` takes the terms from a HiCD mixin's ``hicd_terms`` (what a student config
inheriting it distils) instead of ``hicd_default.py``'s.

``--breakdown`` says where the time above the plain step goes, with the same interleaved
timing: HiCD steps with only the semantic terms (the teacher runs its encoder only) and with
only the change terms (encoder and decoder), and one Gram product ``x x^T`` of the change map
as the terms see it (``(B, C, N)``, pooled to ``pool_size``) with its floating-point rate: the
change terms take five such products per step (three forward, two backward).
"""
import argparse
import math
import os
import os.path as osp
import sys
from typing import Callable, Dict, List, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'benchmark'))

from bench_detectors import (interleaved_medians, make_samples,  # noqa: E402
                             quiet_torch_setup, train_step_fn)

from hicd_mm.models.distillers import (HiCDDistiller, ModuleRecorder,  # noqa: E402
                                       default_hicd_terms)
from hicd_mm.models.distillers.feature_points import FEATURE_PRESETS  # noqa: E402
from hicd_mm.models.losses.correlation import pooled_size  # noqa: E402
from hicd_mm.registry import MODELS  # noqa: E402

DEFAULT_CONFIGS = ['configs/_base_/models/bit_r18.py',
                   'configs/_base_/models/changeformer_mit-b0.py']
# Open-CD's configs of the same two detectors, relative to $OPENCD_ROOT (docs/opencd.md)
OPENCD_CONFIGS = ['configs/bit/bit_r18_256x256_40k_levircd.py:siamese',
                  'configs/changeformer/changeformer_mit-b0_256x256_40k_levircd.py:siamese']


def load_model_cfg(path: str, root: str):
    """(model config, default scope, feature preset) of ``PATH[:PRESET]`` below ``root``."""
    path, _, preset = path.partition(':')
    cfg = Config.fromfile(osp.join(root, path))
    model = cfg.model
    # timing only: no download of pretrained weights
    model.pop('pretrained', None)
    model.get('backbone', {}).pop('init_cfg', None)
    if 'pretrained' in model.get('backbone', {}):
        model.backbone.pretrained = False
    return model, cfg.get('default_scope') or 'hicd_mm', preset or 'siamese'


def teacher_forward_fn(distiller: torch.nn.Module, hq: torch.Tensor) -> Callable[[], None]:
    """A closure running the teacher as the distiller does: no grad, encoder + decoder."""
    teacher = distiller.teacher

    def forward() -> None:
        with torch.no_grad():
            teacher.decode_head(teacher.extract_feat(hq))

    return forward


def distill_terms(args: argparse.Namespace) -> dict:
    """The terms timed: ``--terms-config``'s ``hicd_terms`` or the defaults, with the
    ``--pool-size`` / ``--gram-dtype`` overrides applied to every term."""
    if args.terms_config is None:
        terms = default_hicd_terms()
    else:
        terms = Config.fromfile(osp.join(REPO_ROOT, args.terms_config)).get('hicd_terms')
        if not terms:
            raise SystemExit(f'--terms-config {args.terms_config}: no hicd_terms in it')
        terms = terms.to_dict()
    for term in terms.values():
        if args.pool_size is not None:
            term['loss']['pool_size'] = args.pool_size
        if args.gram_dtype is not None:
            term['loss']['gram_dtype'] = args.gram_dtype
    return terms


def change_gram_fn(model: torch.nn.Module, preset: str, hq: torch.Tensor,
                   pool_size: int) -> Tuple[Callable[[], None], float]:
    """One Gram product of the change map as the correlation terms see it, and its FLOPs.

    Args:
        model (nn.Module): The detector (its change feature is recorded in one forward).
        preset (str): Feature preset naming the change feature's module.
        hq (Tensor): A batch of pairs.
        pool_size (int): The change terms' ``pool_size``.

    Returns:
        tuple: The closure computing ``x x^T`` for the ``(B, C, N)`` map, and its FLOPs.
    """
    recorder = ModuleRecorder(model, FEATURE_PRESETS[preset]['change'], 'input')
    with torch.no_grad(), recorder:
        model.decode_head(model.extract_feat(hq))
    recorder.remove()
    feat = recorder.get(0)
    b, c = feat.shape[:2]
    n = math.prod(pooled_size(*feat.shape[-2:], pool_size))
    x = torch.randn(b, c, n)

    def gram() -> None:
        torch.bmm(x, x.transpose(1, 2))

    return gram, 2.0 * b * c * c * n


def terms_of(terms: dict, feature_prefix: str) -> dict:
    """The terms whose name starts with ``feature_prefix`` (``sem_`` / ``chg_``)."""
    return {name: term for name, term in terms.items() if name.startswith(feature_prefix)}


def bench_one(path: str, args: argparse.Namespace) -> Dict:
    model_cfg, scope, preset = load_model_cfg(path, args.root)
    terms = distill_terms(args)
    term_sets = dict(hicd=terms)
    if args.breakdown:
        term_sets.update(hicd_semantic=terms_of(terms, 'sem_'), hicd_change=terms_of(terms, 'chg_'))
    with DefaultScope.overwrite_default_scope(scope):
        torch.manual_seed(0)
        plain = MODELS.build(model_cfg)
        distillers = {}
        for name, term_set in term_sets.items():
            torch.manual_seed(0)
            distillers[name] = MODELS.build(dict(type=HiCDDistiller, student=model_cfg,
                                                 feature_preset=preset,
                                                 distill_terms=term_set,
                                                 allow_random_teacher=True))
    g = torch.Generator().manual_seed(0)
    lq = torch.randn(args.batch, 6, args.size, args.size, generator=g)
    hq = torch.randn(args.batch, 6, args.size, args.size, generator=g)
    samples = make_samples(args.batch, args.size, args.change_fraction)
    fns = {'plain': train_step_fn(plain, lq, samples)}
    for name, distiller in distillers.items():
        fns[name] = train_step_fn(distiller, lq, samples, dict(inputs_hq=hq))
    fns['teacher'] = teacher_forward_fn(distillers['hicd'], hq)
    gram_flops = None
    if args.breakdown:
        chg_pool = terms.get('chg_self', {}).get('loss', {}).get('pool_size')
        fns['gram'], gram_flops = change_gram_fn(plain, preset, hq, chg_pool)
    result = interleaved_medians(fns, args.warmup, args.repeats)
    result.update(config=path, ratio=result['hicd'] / result['plain'],
                  floor=(result['plain'] + result['teacher']) / result['plain'])
    if gram_flops is not None:
        result['gram_gflops'] = gram_flops / result['gram'] / 1e9
    return result


def print_breakdown(rows: List[Dict]) -> None:
    """Each HiCD step of the breakdown as a ratio to the plain step, and the Gram product."""
    print('\n| config | teacher fwd / plain | semantic terms only | change terms only | '
          'all terms | one change-map Gram product: s (GFLOP/s), 5 per step / plain |')
    print('|---|---:|---:|---:|---:|---:|')
    for r in rows:
        plain = r['plain']
        print(f"| `{r['config']}` | {r['teacher'] / plain:.2f}x | "
              f"{r['hicd_semantic'] / plain:.2f}x | {r['hicd_change'] / plain:.2f}x | "
              f"{r['hicd'] / plain:.2f}x | {r['gram']:.4f} ({r['gram_gflops']:.0f}), "
              f"{5 * r['gram'] / plain:.2f}x |")
    print('(HiCD / plain train step with only those terms; with semantic terms only the '
          'teacher runs its encoder alone, with change terms its decoder too. The change terms '
          'take three Gram products forward and two backward.)\n')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', nargs='+', help='PATH[:PRESET] (default: BIT r18 and '
                        'ChangeFormer MiT-b0, ours or with --opencd Open-CD\'s)')
    parser.add_argument('--opencd', action='store_true',
                        help='paths are relative to $OPENCD_ROOT (Open-CD configs)')
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--repeats', type=int, default=3, help='timed rounds')
    parser.add_argument('--warmup', type=int, default=1, help='untimed rounds')
    parser.add_argument('--threads', type=int, default=2, help='torch threads')
    parser.add_argument('--pool-size', type=int,
                        help='pool_size of every correlation term (default: hicd_default.py\'s 64)')
    parser.add_argument('--terms-config', help='a HiCD mixin (repo-relative) whose hicd_terms '
                        'are timed (default: hicd_default.py)')
    parser.add_argument('--change-fraction', type=float, default=0.08,
                        help='changed pixels of the random-rectangle labels (the class-balanced '
                        'terms cost more where more cells of the feature grid change)')
    parser.add_argument('--breakdown', action='store_true',
                        help='also time HiCD steps with only the semantic / only the change '
                        'terms and one change-map Gram product (where the overhead goes)')
    parser.add_argument('--gram-dtype', help='gram_dtype of every correlation term (default: '
                        'the losses\' default, float32; e.g. float64 for the earlier default)')
    args = parser.parse_args()
    if args.opencd:
        import opencd  # noqa: F401  (registers Open-CD's components)
        args.root = os.environ.get('OPENCD_ROOT') or parser.error('--opencd needs OPENCD_ROOT')
        args.configs = args.configs or OPENCD_CONFIGS
    else:
        args.root = REPO_ROOT
        args.configs = args.configs or DEFAULT_CONFIGS
    return args


def main() -> None:
    args = parse_args()
    quiet_torch_setup(args.threads)
    load_before = '/'.join(f'{v:.1f}' for v in os.getloadavg())
    rows = []
    for path in args.configs:
        r = bench_one(path, args)
        print(f"{path}: plain {r['plain']:.2f} s, hicd {r['hicd']:.2f} s, "
              f"ratio {r['ratio']:.2f}x", file=sys.stderr, flush=True)
        rows.append(r)
    load_after = '/'.join(f'{v:.1f}' for v in os.getloadavg())
    print('| config | plain step (s) | HiCD step (s) | HiCD / plain | teacher fwd (s) | '
          'floor (plain+teacher)/plain |')
    print('|---|---:|---:|---:|---:|---:|')
    for r in rows:
        print(f"| `{r['config']}` | {r['plain']:.3f} | {r['hicd']:.3f} | **{r['ratio']:.2f}x** | "
              f"{r['teacher']:.3f} | {r['floor']:.2f}x |")
    print(f'\n{args.size}x{args.size}, batch {args.batch}, torch {torch.__version__}, '
          f'gram_dtype {args.gram_dtype or "default (float32)"}, '
          f'terms {args.terms_config or "hicd_default.py"}, '
          f'labels: rectangles on {args.change_fraction:.0%} of the pixels, '
          f'pool_size {"of the terms" if args.pool_size is None else args.pool_size}, '
          f'{args.threads} threads, median of {args.repeats} interleaved rounds after '
          f'{args.warmup} warm-up; load average before {load_before}, after {load_after}.')
    if args.breakdown:
        print_breakdown(rows)


if __name__ == '__main__':
    main()
