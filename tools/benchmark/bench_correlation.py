"""Benchmark the Gram path of the correlation MSE losses against the explicit N x N path.

For the self-correlation (``X^T X``) and cross-correlation (``X1^T X2``) losses with
``distance='mse'``, one step is: flatten and L2-normalise the student and teacher maps, compute
the loss, backpropagate to the student maps. The Gram path is
:func:`hicd_mm.models.losses.correlation.correlation_mse` (``C x C`` Gram products in the
default float32, analytic backward); the explicit path materialises the ``N x N`` affinities
in float32 (:func:`~hicd_mm.models.losses.correlation_reference.correlation_mse_explicit`). A third
variant, "norm", runs only the shared part (flatten, normalise, a trivial linear loss,
backward): it is the floor that neither path can go below.

How it measures. Every (variant, measurement) runs in its own fresh Python process with
``--threads`` torch threads (default 2), after a warm-up step on a 4 x 4 map (which pages in
the library code and starts the thread pools: costs that do not depend on the method).

* Peak memory: once the inputs are allocated, the process resets the kernel's resident-set
  high-water mark (``echo 5 > /proc/self/clear_refs``, Linux >= 4.0), records the current
  resident set size, runs one forward+backward step and reads the high-water mark ``VmHWM``
  from ``/proc/self/status``. The reported peak is ``VmHWM - RSS before the step``: the extra
  physical memory the step needed (saved tensors, gradients, temporaries, BLAS workspaces).
  This process runs with ``MALLOC_MMAP_THRESHOLD_=65536`` so that glibc serves every block of
  64 KiB or more with its own ``mmap`` and unmaps it when the tensor is freed: the resident
  set then follows the live tensors instead of including freed memory that the heap keeps
  (with the default, dynamic threshold, freed blocks of up to 32 MiB can stay resident, which
  adds allocator noise of several times the input size to small peaks). Where the reset is
  impossible, ``ru_maxrss`` (the peak of the process lifetime) is used and the table says so.
* Time: a separate process with the default allocator runs one full-size warm-up step, then
  ``--repeats`` timed steps, and reports the median and the minimum wall-clock time.
  Wall-clock times depend on what else runs on the machine (the minimum is the least
  disturbed step); the memory numbers do not. On a shared machine, ``--threads 1 --clock cpu``
  measures the process's CPU time instead (user + system, which includes page faults; time
  spent waiting for a CPU is not counted), a fair comparison of the work each path does; with
  several threads, CPU time would also count threads spinning at synchronisation points.
* Agreement: ``|L_gram - L_explicit| / |L_explicit|`` of the loss values (float32 outputs).

Usage::

    python tools/benchmark/bench_correlation.py                      # default table
    python tools/benchmark/bench_correlation.py --configs 2x64x32x32 --repeats 3
"""
import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Dict, List

DEFAULT_THREADS = 2
DEFAULT_CONFIGS = ('2x64x64x64', '2x256x64x64', '2x64x128x128')  # B x C x H x W
MEMORY_ENV = {'MALLOC_MMAP_THRESHOLD_': '65536'}


def _status_kb(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss() -> bool:
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def worker(term: str, impl: str, config: str, measure: str, repeats: int,
           threads: int = DEFAULT_THREADS, clock: str = 'wall') -> Dict:
    """Run one variant in this process and return its measurements.

    Args:
        term (str): ``'self'`` or ``'cross'``.
        impl (str): ``'gram'``, ``'explicit'`` or ``'norm'``.
        config (str): ``'BxCxHxW'``.
        measure (str): ``'memory'`` or ``'time'``.
        repeats (int): Timed steps.
        threads (int): Torch intra-op threads.
        clock (str): ``'wall'`` (``time.perf_counter``) or ``'cpu'`` (``time.process_time``:
            CPU time of all threads of the process, user + system).

    Returns:
        dict: ``value`` and ``peak_mb``/``peak_method`` or ``time_s`` (median) and
        ``min_time_s``.
    """
    import torch

    from hicd_mm.models.losses.correlation import correlation_mse, flatten_features
    from hicd_mm.models.losses.correlation_reference import correlation_mse_explicit

    torch.set_num_threads(threads)
    b, c, h, w = (int(v) for v in config.split('x'))
    dates = 2 if term == 'cross' else 1

    def loss_fn(rows_s, cols_s, rows_t, cols_t):
        if impl == 'gram':
            return correlation_mse(rows_s, cols_s, rows_t, cols_t)
        if impl == 'explicit':
            return correlation_mse_explicit(rows_s, cols_s, rows_t, cols_t)
        return sum((x * y).sum() for x, y in ((rows_s, rows_t), (cols_s, cols_t)))

    def make(size_h: int, size_w: int, seed: int):
        gen = torch.Generator().manual_seed(seed)
        # Separate maps per date; the self term uses only the first one.
        students = [torch.randn(b, c, size_h, size_w, generator=gen).requires_grad_()
                    for _ in range(dates)]
        teachers = [torch.randn(b, c, size_h, size_w, generator=gen) for _ in range(dates)]
        return students, teachers

    def step(students, teachers) -> float:
        for s in students:
            s.grad = None
        xs = [flatten_features(s) for s in students]
        xt = [flatten_features(t) for t in teachers]
        loss = loss_fn(xs[0], xs[-1], xt[0], xt[-1])
        loss.backward()
        return loss.item()

    step(*make(4, 4, 1))
    students, teachers = make(h, w, 0)
    if measure == 'time':
        timer = time.perf_counter if clock == 'wall' else time.process_time
        value = step(students, teachers)
        times = []
        for _ in range(repeats):
            start = timer()
            step(students, teachers)
            times.append(timer() - start)
        return dict(value=value, time_s=statistics.median(times), min_time_s=min(times))
    gc.collect()
    reset = _reset_peak_rss()
    rss_before = _status_kb('VmRSS')
    value = step(students, teachers)
    if reset:
        peak_kb = _status_kb('VmHWM') - rss_before
    else:
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    return dict(value=value, peak_mb=peak_kb / 1024,
                peak_method='VmHWM reset' if reset else 'ru_maxrss')


def run_variant(term: str, impl: str, config: str, measure: str, repeats: int,
                threads: int, clock: str) -> Dict:
    """Run :func:`worker` in a fresh interpreter and parse its JSON result."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if measure == 'memory':
        env.update(MEMORY_ENV)
    cmd = [sys.executable, os.path.abspath(__file__), '--worker', term, impl, config, measure,
           '--repeats', str(repeats), '--threads', str(threads), '--clock', clock]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} failed:\n{proc.stderr}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(configs: List[str], terms: List[str], repeats: int, threads: int,
         clock: str) -> None:
    header = (f'{"B x C x H x W":>13} {"term":>5} | {"gram ms":>15} {"expl ms":>15} '
              f'{"speedup":>11} | {"norm MB":>7} {"gram MB":>7} {"expl MB":>7} {"mem x":>6} | '
              f'{"rel diff":>8} | {"NxN MB":>6}')
    print(f'forward+backward, {threads} threads; {clock}-clock times: median (min) of '
          f'{repeats} steps; '
          'MB: extra resident memory of one step in a fresh process')
    print(header)
    print('-' * len(header))
    methods = set()
    for config in configs:
        b, _, h, w = (int(v) for v in config.split('x'))
        nxn_mb = b * (h * w)**2 * 4 / 2**20
        for term in terms:
            mem = {impl: run_variant(term, impl, config, 'memory', repeats, threads, clock)
                   for impl in ('norm', 'gram', 'explicit')}
            tim = {impl: run_variant(term, impl, config, 'time', repeats, threads, clock)
                   for impl in ('gram', 'explicit')}
            methods.update(m['peak_method'] for m in mem.values())
            gram, expl = mem['gram'], mem['explicit']
            rel = abs(gram['value'] - expl['value']) / abs(expl['value'])
            t_gram, t_expl = tim['gram']['time_s'], tim['explicit']['time_s']
            m_gram, m_expl = tim['gram']['min_time_s'], tim['explicit']['min_time_s']
            print(f'{config:>13} {term:>5} | {t_gram * 1e3:7.1f} ({m_gram * 1e3:6.1f}) '
                  f'{t_expl * 1e3:7.1f} ({m_expl * 1e3:6.1f}) '
                  f'{t_expl / t_gram:4.1f}x ({m_expl / m_gram:4.1f}x) | '
                  f'{mem["norm"]["peak_mb"]:7.1f} '
                  f'{gram["peak_mb"]:7.1f} {expl["peak_mb"]:7.1f} '
                  f'{expl["peak_mb"] / max(gram["peak_mb"], 1e-3):5.0f}x | {rel:8.1e} | '
                  f'{nxn_mb:6.0f}', flush=True)
    print(f'peak memory method: {", ".join(sorted(methods))}; "norm" = flatten + normalise + '
          'backward only (shared floor); "NxN MB" = one float32 batch of N x N affinities')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--configs', nargs='+', default=list(DEFAULT_CONFIGS),
                        help='feature shapes as BxCxHxW')
    parser.add_argument('--terms', nargs='+', default=['self', 'cross'],
                        choices=['self', 'cross'])
    parser.add_argument('--repeats', type=int, default=3, help='timed steps per variant')
    parser.add_argument('--threads', type=int, default=DEFAULT_THREADS,
                        help='torch intra-op threads')
    parser.add_argument('--clock', default='wall', choices=['wall', 'cpu'],
                        help="'cpu': process CPU time, robust to other load with --threads 1")
    parser.add_argument('--worker', nargs=4, metavar=('TERM', 'IMPL', 'CONFIG', 'MEASURE'),
                        help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == '__main__':
    args = parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, repeats=args.repeats, threads=args.threads,
                                clock=args.clock)))
    else:
        main(args.configs, args.terms, args.repeats, args.threads, args.clock)
