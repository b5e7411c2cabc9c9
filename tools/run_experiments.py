"""Run the experiment matrix: settings x methods x seeds for a detector and dataset.

For every seed one teacher is trained on HQ pairs and shared by all settings; per setting the
LQ baseline, the feature-MSE and CWD baselines, HiCD and its ablations are trained on the
setting's LQ pairs, and everything is evaluated on the fixed degraded test set (the teacher
also on the clean one). Every run is a ``tools/train.py`` / ``tools/test.py`` subprocess with
its own work dir and log. Results are appended to ``<work-dir>/results.csv``; a row that
exists is not run again (resume), and ``results.md`` / ``results_f1.png`` are rewritten from
the whole CSV. See docs/experiments.md.

Examples::

    python tools/run_experiments.py --dry-run
    python tools/run_experiments.py --settings multi_deg_x4 blur --methods lq hicd --seeds 0 1
    python tools/run_experiments.py --detector bit --dataset synthetic levircd --iters 400

Exit status: 0 when every planned run succeeded, 1 when some failed (the others still ran),
2 when no requested dataset could be used.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from hicd_mm.utils import experiments as ex  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(
        description='HiCD experiment matrix: settings x methods x seeds',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--detector', nargs='+', default=['fc_siam_diff'],
                        choices=ex.DETECTORS)
    parser.add_argument('--dataset', nargs='+', default=['synthetic'], choices=list(ex.DATASETS),
                        help='datasets whose folder is missing are skipped with a message '
                        '(the synthetic one is generated)')
    parser.add_argument('--data-root', help='dataset folder (one dataset only; default: the '
                        "config's data_root)")
    parser.add_argument('--settings', nargs='+', default=list(ex.SETTINGS),
                        help=f'settings or degradation mixin names: {list(ex.SETTINGS)}')
    parser.add_argument('--methods', nargs='+', default=list(ex.METHODS), choices=ex.METHODS)
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--iters', type=int, help="training iterations (default: the config's)")
    parser.add_argument('--batch-size', type=int, help="training batch (default: the config's)")
    parser.add_argument('--crop', type=int, help="training crop side (default: the config's)")
    parser.add_argument('--num-workers', type=int,
                        help="dataloader workers of every run (default: the config's)")
    parser.add_argument('--work-dir', default='work_dirs/experiments')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='passed to every train and test run')
    parser.add_argument('--student-cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='passed to the distilled students\' training only, e.g. '
                        'model.distill_terms.sem_self.loss.pool_size=16')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the planned runs and commands, run nothing')
    parser.add_argument('--quiet', action='store_true', help='do not echo training progress')
    args = parser.parse_args(argv)
    if args.data_root and len(args.dataset) > 1:
        parser.error('--data-root needs exactly one --dataset')
    if args.iters is not None and args.iters < 2:
        parser.error('--iters must be >= 2')
    return args


def log(msg: str) -> None:
    """Time-stamped progress line."""
    print(f'[experiments {time.strftime("%H:%M:%S")}] {msg}', flush=True)


class MatrixRunner:
    """Executes plans: trains what is missing, evaluates, appends CSV rows, keeps going.

    Args:
        root (str): The work dir holding ``results.csv``.
        echo (bool): Echo the training progress lines of the subprocesses.
    """

    def __init__(self, root: str, echo: bool = True) -> None:
        self.root = root
        self.csv = osp.join(root, 'results.csv')
        self.echo = (lambda line: print('    ' + line, flush=True)) if echo else None
        self.failed_trainings: Dict[str, str] = {}  # work dir -> reason
        self.failures: List[Tuple[str, str]] = []  # (run, reason)
        self.finished = 0

    def train(self, job: ex.TrainJob) -> float:
        """Train ``job`` unless a finished training exists; returns its wall time (s)."""
        if job.is_done():
            return job.train_seconds() or 0.0
        if job.work_dir in self.failed_trainings:
            raise RuntimeError(self.failed_trainings[job.work_dir])
        if job.teacher is not None:
            try:
                self.train(job.teacher)
            except RuntimeError as err:
                raise RuntimeError(f'its teacher is unavailable: {err}') from err
        log(f'training {job.name} -> {job.work_dir}')
        start = time.time()
        rc = ex.run_tool(job.command(), job.log_file, self.echo)
        seconds = time.time() - start
        if rc != 0 or not osp.isfile(job.weights):
            reason = (f'training {job.name} failed (exit {rc}); see {job.log_file}' if rc else
                      f'training {job.name} wrote no {osp.basename(job.weights)}; see '
                      f'{job.log_file}')
            self.failed_trainings[job.work_dir] = reason
            raise RuntimeError(reason)
        with open(job.marker, 'w') as f:
            json.dump(dict(train_seconds=round(seconds, 1), command=job.command()), f, indent=1)
        log(f'{job.name}: trained in {seconds:.0f} s')
        return seconds

    def evaluate(self, run: ex.EvalJob) -> Dict[str, float]:
        """Run ``tools/test.py`` for ``run`` and return its metrics."""
        start = time.time()
        rc = ex.run_tool(run.command(), run.log_file, self.echo)
        if rc != 0:
            raise RuntimeError(f'test failed (exit {rc}); see {run.log_file}')
        return ex.read_metrics(run.work_dir, since=start)

    def execute(self, plan: ex.ExperimentPlan) -> None:
        """Do every run of the plan; a failure is recorded and the next run goes on."""
        ex.write_configs(plan)
        for i, run in enumerate(plan.runs, 1):
            k = run.key
            name = f'{k.detector}/{k.dataset} {k.setting}/{k.method} seed {k.seed}'
            log(f'[{i}/{len(plan.runs)}] {name}')
            try:
                seconds = self.train(run.training)
                metrics = self.evaluate(run)
            except (RuntimeError, OSError, KeyError, ValueError) as err:
                log(f'FAILED {name}: {err}')
                self.failures.append((name, str(err)))
                continue
            ex.append_result(self.csv, ex.result_row(run, metrics, seconds, self.root))
            ex.write_reports(self.csv, osp.join(self.root, 'results.md'))
            self.finished += 1
            log(f'{name}: F1 {metrics["F1"]:.2f}')


def make_spec(args: argparse.Namespace, detector: str, dataset: str) -> ex.ExperimentSpec:
    """The :class:`ExperimentSpec` of one detector and dataset."""
    return ex.ExperimentSpec(
        detector=detector, dataset=dataset, work_dir=args.work_dir, settings=args.settings,
        methods=args.methods, seeds=args.seeds, data_root=args.data_root, iters=args.iters,
        batch_size=args.batch_size, crop=args.crop, num_workers=args.num_workers,
        cfg_options=args.cfg_options, student_cfg_options=args.student_cfg_options)


def dataset_ready(plan: ex.ExperimentPlan, args: argparse.Namespace) -> bool:
    """Check (or, for the synthetic dataset, generate) the plan's dataset folder."""
    from mmengine.config import Config
    spec = plan.spec
    cfg = Config.fromfile(spec.base_config)
    problem = ex.dataset_problem(spec.dataset, cfg, plan.data_root)
    if problem and spec.dataset == 'synthetic' and not args.dry_run and plan.runs:
        try:
            ex.ensure_synthetic_dataset(plan.data_root,
                                        osp.join(spec.work_dir, 'make_synthetic.log'), log=log)
            problem = ex.dataset_problem(spec.dataset, cfg, plan.data_root)
        except RuntimeError as err:
            problem = str(err)
    if problem:
        log(f'SKIPPED {spec.detector}/{spec.dataset}: {problem}')
        return False
    return True


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    root = osp.abspath(args.work_dir)
    args.work_dir = root
    runner = MatrixRunner(root, echo=not args.quiet)
    done = ex.done_keys(ex.read_results(runner.csv))
    usable = 0
    for detector in args.detector:
        for dataset in args.dataset:
            plan = ex.build_plan(make_spec(args, detector, dataset), done)
            if not dataset_ready(plan, args):
                continue
            usable += 1
            skipped = len(ex.planned_keys(plan.spec, plan.iters)) - len(plan.runs)
            log(f'{detector}/{dataset}: {len(plan.runs)} run(s) to do, {skipped} already in '
                f'{runner.csv}')
            if args.dry_run:
                print(ex.describe_plan(plan))
            else:
                os.makedirs(root, exist_ok=True)
                runner.execute(plan)
    if usable == 0:
        log('nothing to do: no requested dataset is available')
        return 2
    if not args.dry_run and osp.isfile(runner.csv):
        ex.write_reports(runner.csv, osp.join(root, 'results.md'),
                         osp.join(root, 'results_f1.png'))
        log(f'results: {runner.csv}, results.md, results_f1.png in {root}')
    if runner.failures:
        log(f'{len(runner.failures)} run(s) FAILED ({runner.finished} finished):')
        for name, reason in runner.failures:
            print(f'  {name}: {reason}', flush=True)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
