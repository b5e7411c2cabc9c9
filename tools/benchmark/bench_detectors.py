"""Benchmark the change detectors on the CPU: parameters, FLOPs, train-step and inference time.

For every config (default: the CPU-sized detectors used on the synthetic dataset, and the
paper-sized base models) at a 256 x 256 pair:

* parameters and FLOPs from MMEngine's analysis tools
  (:func:`mmengine.analysis.get_model_complexity_info` on a (1, 6, 256, 256) input through the
  detector's ``_forward``, i.e. backbone x 2 + neck + decode head; MMEngine counts one
  multiply-add as one FLOP, so the numbers are GMACs). Operators MMEngine has no counter for
  are listed in the JSON output (``uncounted_ops``) and ignored, as MMEngine does;
* the median wall-clock time of a training step (forward with the loss, backward, AdamW step)
  on a batch of 8 random pairs with random labels, after ``--warmup`` steps;
* the median wall-clock time of inference (``mode='predict'``: whole-image inference plus
  post-processing) on one pair, after ``--warmup`` calls.

Timings use ``--threads`` torch threads (2 by default, the size of the shared CI/dev machine)
and depend on what else runs on the machine: the load average before and after is printed
with the table. The paper-sized models are slow on a CPU; their training step is only timed
with ``--full-train``.

Usage::

    python tools/benchmark/bench_detectors.py                        # markdown table
    python tools/benchmark/bench_detectors.py --repeats 5 --json work_dirs/bench_detectors.json
    python tools/benchmark/bench_detectors.py --configs configs/bit/bit_r18-tiny_cpu-1k_synthetic.py
"""
import argparse
import json
import logging
import os
import os.path as osp
import statistics
import sys
import time
import warnings
from typing import Callable, Dict, List, Optional

import torch
from mmengine.analysis import FlopAnalyzer, get_model_complexity_info
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)

from hicd_mm.registry import MODELS  # noqa: E402
from hicd_mm.utils import register_all_modules  # noqa: E402

# (name, config, cpu_sized): CPU-sized models get every timing by default.
DEFAULT_CONFIGS = [
    ('FC-Siam-diff', 'configs/fc_siam_diff/fc_siam_diff_cpu-1k_synthetic.py', True),
    ('BIT r18-tiny', 'configs/bit/bit_r18-tiny_cpu-1k_synthetic.py', True),
    ('ChangeFormer MiT-b0-lite',
     'configs/changeformer/changeformer_mit-b0-lite_cpu-1k_synthetic.py', True),
    ('SNUNet-CD/8', 'configs/snunet/snunet_c8_cpu-1k_synthetic.py', True),
    ('BIT r18', 'configs/_base_/models/bit_r18.py', False),
    ('ChangeFormer MiT-b0', 'configs/_base_/models/changeformer_mit-b0.py', False),
    ('SNUNet-CD/16', 'configs/_base_/models/snunet_c16.py', False),
]


class ForwardWrapper(torch.nn.Module):
    """Expose ``model._forward`` (backbone x 2 + neck + head, raw logits) as ``forward``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model._forward(inputs)


def change_blobs(size: int, change_fraction: float, generator: torch.Generator) -> torch.Tensor:
    """A ``(1, size, size)`` change mask of random rectangles covering about the fraction given.

    Rectangles of side ``size/16`` to ``size/4`` are added until at least ``change_fraction``
    of the pixels are changed (0: no change at all), like the building blobs of a change
    dataset; i.i.d. random pixels would put a change boundary in nearly every cell of a
    coarser feature grid, which no real label does.
    """
    label = torch.zeros(1, size, size, dtype=torch.long)
    low, high = max(1, size // 16), max(2, size // 4)
    while label.float().mean() < change_fraction:
        h, w = (int(torch.randint(low, high + 1, (1, ), generator=generator)) for _ in 'hw')
        top, left = (int(torch.randint(0, size - side + 1, (1, ), generator=generator))
                     for side in (h, w))
        label[:, top:top + h, left:left + w] = 1
    return label


def make_samples(n: int, size: int, change_fraction: float = 0.08,
                 seed: int = 0) -> List[SegDataSample]:
    """``n`` samples with labels of :func:`change_blobs` (the same for every call)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=change_blobs(size, change_fraction, g))
        s.set_metainfo(dict(img_shape=(size, size), pad_shape=(size, size),
                            ori_shape=(size, size), padding_size=(0, 0, 0, 0)))
        out.append(s)
    return out


def interleaved_medians(fns: Dict[str, Callable[[], None]], warmup: int,
                        repeats: int) -> Dict[str, float]:
    """Median seconds of each function, timed round-robin after ``warmup`` rounds."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def median_time(fn: Callable[[], None], warmup: int, repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls after ``warmup`` untimed calls."""
    return interleaved_medians({'fn': fn}, warmup, repeats)['fn']


def train_step_fn(model: torch.nn.Module, inputs: torch.Tensor, samples,
                  extra_inputs: Optional[dict] = None) -> Callable[[], None]:
    """A closure running one optimisation step of ``model`` on a fixed batch.

    ``extra_inputs`` are further named model inputs (``inputs_hq`` of a distiller).
    """
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    extra_inputs = extra_inputs or {}

    def step() -> None:
        losses = model(inputs, samples, mode='loss', **extra_inputs)
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        optim.zero_grad()
        loss.backward()
        optim.step()

    return step


def quiet_torch_setup(threads: int) -> None:
    """Fix the torch thread count, silence warnings and logs, register the modules."""
    torch.set_num_threads(threads)
    warnings.filterwarnings('ignore')
    MMLogger.get_current_instance().setLevel(logging.ERROR)
    logging.getLogger('mmengine').setLevel(logging.ERROR)
    register_all_modules(init_default_scope=True)


def complexity(model: torch.nn.Module, size: int) -> Dict:
    wrapped = ForwardWrapper(model).eval()
    x = torch.randn(1, 6, size, size)
    with torch.no_grad():
        info = get_model_complexity_info(wrapped, inputs=(x, ), show_table=False,
                                         show_arch=False)
        analyzer = FlopAnalyzer(wrapped, (x, ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        analyzer.total()
        uncounted = dict(analyzer.unsupported_ops())
    return dict(params=info['params'], flops=info['flops'], uncounted_ops=uncounted)


def plain_detector_cfg(path: str):
    """The model config of ``path``; a distiller config is refused (it needs ``inputs_hq`` and
    a teacher: ``bench_distill_overhead.py`` times it against its plain detector)."""
    model = Config.fromfile(osp.join(REPO_ROOT, path)).model
    if 'student' in model or 'Distiller' in str(model.get('type', '')):
        raise SystemExit(f'{path}: model is a {model.get("type")} (a distiller); '
                         'bench_detectors.py times plain detectors: give the detector config, '
                         'or time the distiller with tools/benchmark/bench_distill_overhead.py')
    return model


def bench_one(name: str, path: str, timed_train: bool, args) -> Dict:
    model_cfg = plain_detector_cfg(path)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    result = dict(name=name, config=path)
    result.update(complexity(model, args.size))

    result['train_step_s'] = None
    if timed_train:
        inputs = torch.randn(args.batch, 6, args.size, args.size)
        train_step = train_step_fn(model, inputs, make_samples(args.batch, args.size))
        result['train_step_s'] = median_time(train_step, args.warmup, args.repeats)

    model.eval()
    x = torch.randn(1, 6, args.size, args.size)
    samples = make_samples(1, args.size)

    def infer():
        with torch.no_grad():
            model(x, samples, mode='predict')

    result['inference_s'] = median_time(infer, args.warmup, args.repeats)
    return result


def fmt(value: Optional[float], spec: str) -> str:
    return 'n/m' if value is None else format(value, spec)


def markdown(results: List[Dict], args, load_before, load_after) -> str:
    lines = [
        f'| detector | config | params (M) | GFLOPs @{args.size}² | '
        f'train step, batch {args.batch} (s) | inference, batch 1 (s) |',
        '|---|---|---:|---:|---:|---:|',
    ]
    for r in results:
        lines.append(f"| {r['name']} | `{r['config']}` | {r['params'] / 1e6:.3f} | "
                     f"{r['flops'] / 1e9:.2f} | {fmt(r['train_step_s'], '.2f')} | "
                     f"{fmt(r['inference_s'], '.3f')} |")
    lines.append('')
    lines.append(f'torch {torch.__version__}, {args.threads} threads, median of '
                 f'{args.repeats} after {args.warmup} warm-up; load average (1/5/15 min) '
                 f'before {load_before}, after {load_after}. GFLOPs: MMEngine '
                 'get_model_complexity_info (1 multiply-add = 1 FLOP). n/m: not measured '
                 '(use --full-train).')
    return '\n'.join(lines)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', nargs='+', help='config files (default: all detectors)')
    parser.add_argument('--size', type=int, default=256, help='square input size')
    parser.add_argument('--batch', type=int, default=8, help='training batch size')
    parser.add_argument('--repeats', type=int, default=3, help='timed repetitions')
    parser.add_argument('--warmup', type=int, default=1, help='untimed warm-up calls')
    parser.add_argument('--threads', type=int, default=2, help='torch threads')
    parser.add_argument('--full-train', action='store_true',
                        help='also time the training step of the paper-sized models')
    parser.add_argument('--json', help='write the results to this JSON file')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    quiet_torch_setup(args.threads)
    if args.configs:
        configs = [(osp.splitext(osp.basename(c))[0], osp.relpath(osp.abspath(c), REPO_ROOT),
                    True) for c in args.configs]
    else:
        configs = DEFAULT_CONFIGS
    load_before = '/'.join(f'{v:.1f}' for v in os.getloadavg())
    results = []
    for name, path, cpu_sized in configs:
        r = bench_one(name, path, cpu_sized or args.full_train, args)
        print(f"{name}: {r['params'] / 1e6:.3f} M params, {r['flops'] / 1e9:.2f} GFLOPs, "
              f"train {fmt(r['train_step_s'], '.2f')} s, infer {r['inference_s']:.3f} s",
              file=sys.stderr, flush=True)
        results.append(r)
    load_after = '/'.join(f'{v:.1f}' for v in os.getloadavg())
    print(markdown(results, args, load_before, load_after))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(results=results, load_before=load_before, load_after=load_after,
                           threads=args.threads, size=args.size, batch=args.batch,
                           repeats=args.repeats, torch=torch.__version__), f, indent=2)


if __name__ == '__main__':
    main()
