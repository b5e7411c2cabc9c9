"""Run the experiment matrix: settings x methods x variants x seeds for a detector and dataset.

For every seed one teacher is trained on HQ pairs and shared by all settings, methods and
variants; per setting the LQ baseline, ``ft_lq`` (the teacher fine-tuned on LQ pairs), the
feature-MSE and CWD baselines, HiCD (one row per variant) and its ablations are trained on the
setting's LQ pairs. Every training validates on the val split and keeps its best-on-val
checkpoint, which is evaluated once on ``--split``: ``val`` in development (the test split is
never read), ``test`` for the confirmation. Every run is a ``tools/train.py`` /
``tools/test.py`` subprocess with its own work dir and log (up to ``--jobs`` at a time).
Results are appended to ``<work-dir>/results.csv``; a row that exists is not run again
(resume), and ``results.md`` / ``results_f1.png`` are rewritten from the whole CSV.
See docs/experiments.md.

Examples::

    python tools/run_experiments.py --dry-run
    python tools/run_experiments.py --settings multi_deg_x4 --methods lq ft_lq hicd \\
        --variant scratch= --variant from_teacher=configs/_base_/hicd/from_teacher.py
    python tools/run_experiments.py --split test --seeds 3 4 5 6 7 --jobs 8 --threads 2

Exit status: 0 when every planned run succeeded, 1 when some failed (the others still ran),
2 on bad arguments or when no requested dataset could be used.
"""
import argparse
import os
import os.path as osp
import shlex
import sys
from typing import List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tools.experiments import launch, plan as pl, summary  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(
        description='HiCD experiment matrix: settings x methods x variants x seeds',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--detector', nargs='+', default=['fc_siam_diff'], choices=pl.DETECTORS)
    parser.add_argument('--dataset', nargs='+', default=['synthetic'], choices=list(pl.DATASETS),
                        help='datasets whose folder is missing are skipped with a message '
                        '(the synthetic one is generated)')
    parser.add_argument('--data-root', help='dataset folder (one dataset only; default: the '
                        "config's data_root)")
    parser.add_argument('--dataset-tag', default='',
                        help='appended to the dataset name in the CSV and work dir (e.g. for '
                        'a dataset generated otherwise at --data-root)')
    parser.add_argument('--change-fraction', type=float,
                        help='synthetic dataset only: target mean fraction of changed pixels, '
                        'passed to tools/make_synthetic_cd.py --change-fraction; the data goes '
                        'to data/synthetic_cd_cf<F> and the dataset is tagged cf<F>')
    parser.add_argument('--generator-args', default='',
                        help='further tools/make_synthetic_cd.py arguments, one quoted string')
    parser.add_argument('--settings', nargs='+', default=list(pl.SETTINGS),
                        help=f'settings or degradation mixin names: {list(pl.SETTINGS)}')
    parser.add_argument('--methods', nargs='+', default=list(pl.METHODS),
                        help=f'{list(pl.METHODS)} or {pl.ABLATION_PREFIX}<term>')
    parser.add_argument('--variant', action='append', default=[], metavar='NAME=MIXIN[,MIXIN]',
                        help='a HiCD configuration (repeatable): hicd_default.py merged with '
                        'the mixin config files; "NAME=" alone is hicd_default.py as is. '
                        f'Default: one variant "{pl.DEFAULT_VARIANT}"')
    parser.add_argument('--variants', metavar='FILE',
                        help='config file with variants = dict(NAME=dict(mixins=[...], '
                        'cfg_options=[...]))')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--split', choices=pl.SPLITS, default='val',
                        help='split evaluated at the best-on-val checkpoint: val in '
                        'development, test once for the confirmation')
    parser.add_argument('--iters', type=int,
                        help="student training iterations (default: the config's)")
    parser.add_argument('--teacher-iters', type=int,
                        help='teacher training iterations (default: --iters)')
    parser.add_argument('--val-interval', type=int,
                        help='validate every N iterations (default: iterations // 8)')
    parser.add_argument('--batch-size', type=int, help="training batch (default: the config's)")
    parser.add_argument('--crop', type=int, help="training crop side (default: the config's)")
    parser.add_argument('--num-workers', type=int,
                        help="dataloader workers of every run (default: the config's)")
    parser.add_argument('--work-dir', default='work_dirs/experiments')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='passed to every train and test run')
    parser.add_argument('--student-cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help="passed to the distilled students' training (not ft_lq's), "
                        'e.g. model.distill_terms.sem_self.loss.pool_size=16')
    parser.add_argument('--finetune-cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='passed to the trainings that start from the teacher (ft_lq and '
                        'from-teacher variants), e.g. optim_wrapper.optimizer.lr=0.0002')
    parser.add_argument('--jobs', type=int, default=1,
                        help='trainings/evaluations running at the same time')
    parser.add_argument('--threads', type=int,
                        help='torch threads per job (OMP/MKL_NUM_THREADS of the subprocesses)')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the planned runs and commands, run nothing')
    parser.add_argument('--quiet', action='store_true', help='do not echo training progress')
    args = parser.parse_args(argv)
    if args.data_root and len(args.dataset) > 1:
        parser.error('--data-root needs exactly one --dataset')
    for name in ('iters', 'teacher_iters'):
        if getattr(args, name) is not None and getattr(args, name) < 2:
            parser.error(f'--{name.replace("_", "-")} must be >= 2')
    for name in ('val_interval', 'jobs', 'threads'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    if args.change_fraction is not None:
        if args.dataset != ['synthetic']:
            parser.error('--change-fraction applies to --dataset synthetic only')
        if not 0 < args.change_fraction < 1:
            parser.error(f'--change-fraction must lie in (0, 1), got {args.change_fraction}')
    if args.generator_args and args.dataset != ['synthetic']:
        parser.error('--generator-args applies to --dataset synthetic only')
    try:
        args.variant_specs = [pl.parse_variant(v) for v in args.variant]
        if args.variants:
            args.variant_specs += pl.load_variants_file(args.variants)
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    return args


def generator_args(args: argparse.Namespace) -> List[str]:
    """The extra ``tools/make_synthetic_cd.py`` arguments of the synthetic dataset."""
    extra = shlex.split(args.generator_args)
    if args.change_fraction is not None:
        extra = ['--change-fraction', f'{args.change_fraction:g}'] + extra
    return extra


def make_spec(args: argparse.Namespace, detector: str, dataset: str) -> pl.ExperimentSpec:
    """The :class:`ExperimentSpec` of one detector and dataset."""
    data_root, tag = args.data_root, args.dataset_tag
    if args.change_fraction is not None:
        tag = tag or f'cf{args.change_fraction:g}'
        data_root = data_root or osp.join(REPO, 'data',
                                          f'synthetic_cd_cf{args.change_fraction:g}')
    return pl.ExperimentSpec(
        detector=detector, dataset=dataset, work_dir=args.work_dir, settings=args.settings,
        methods=args.methods, seeds=args.seeds, variants=args.variant_specs, split=args.split,
        data_root=data_root, dataset_tag=tag, iters=args.iters, teacher_iters=args.teacher_iters,
        val_interval=args.val_interval, batch_size=args.batch_size, crop=args.crop,
        num_workers=args.num_workers, cfg_options=args.cfg_options,
        student_cfg_options=args.student_cfg_options,
        finetune_cfg_options=args.finetune_cfg_options)


def dataset_ready(plan: pl.ExperimentPlan, args: argparse.Namespace) -> bool:
    """Check (or, for the synthetic dataset, generate) the plan's dataset folder."""
    from mmengine.config import Config
    spec = plan.spec
    cfg = Config.fromfile(spec.base_config)
    problem = launch.dataset_problem(spec.dataset, cfg, plan.data_root)
    if problem and spec.dataset == 'synthetic' and not args.dry_run and plan.runs:
        try:
            launch.ensure_synthetic_dataset(
                plan.data_root, osp.join(spec.work_dir, f'make_{spec.dataset_label}.log'),
                generator_args=generator_args(args), log=launch.log)
            problem = launch.dataset_problem(spec.dataset, cfg, plan.data_root)
        except RuntimeError as err:
            problem = str(err)
    if problem:
        launch.log(f'SKIPPED {spec.detector}/{spec.dataset_label}: {problem}')
        return False
    return True


def describe_plan(plan: pl.ExperimentPlan) -> str:
    """Human-readable plan with the exact commands (``--dry-run``)."""
    spec = plan.spec
    lines = [f'{spec.detector} on {spec.dataset_label} ({plan.data_root}): {plan.iters} '
             f'iterations, teacher {plan.teacher_iters}, split {spec.split}: '
             f'{len(plan.runs)} result row(s) to do, {len(plan.trainings)} training(s) needed',
             f'configs are written to {spec.config_dir}']
    for job in plan.trainings:
        state = 'done, reused' if osp.isfile(job.marker) else 'to train'
        lines += [f'  train {job.name} -> {job.work_dir} [{state}]',
                  '    ' + shlex.join(job.command())]
    for run in plan.runs:
        k = run.key
        variant = f' [{k.variant}]' if k.variant else ''
        lines += [f'  row {k.setting}/{k.method}{variant} seed {k.seed}: evaluate the best '
                  f'checkpoint of {run.training.name}', '    ' + shlex.join(run.command())]
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    root = osp.abspath(args.work_dir)
    args.work_dir = root
    md, png = osp.join(root, 'results.md'), osp.join(root, 'results_f1.png')
    runner = launch.MatrixRunner(root, echo=not args.quiet, jobs=args.jobs, threads=args.threads,
                                 on_row=lambda: summary.write_reports(runner.csv, md))
    try:
        done = launch.done_keys(launch.read_results(runner.csv))
        specs = [make_spec(args, d, s) for d in args.detector for s in args.dataset]
        plans = [pl.build_plan(spec, done) for spec in specs]
    except (ValueError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    usable = 0
    for plan in plans:
        if not dataset_ready(plan, args):
            continue
        usable += 1
        spec = plan.spec
        skipped = len(pl.planned_keys(spec, plan.iters, plan.teacher_iters)) - len(plan.runs)
        launch.log(f'{spec.detector}/{spec.dataset_label}: {len(plan.runs)} run(s) to do, '
                   f'{skipped} already in {runner.csv}')
        if args.dry_run:
            print(describe_plan(plan))
        else:
            os.makedirs(root, exist_ok=True)
            runner.execute(plan)
    if usable == 0:
        launch.log('nothing to do: no requested dataset is available')
        return 2
    if not args.dry_run and osp.isfile(runner.csv):
        summary.write_reports(runner.csv, md, png)
        launch.log(f'results: {runner.csv}, results.md, results_f1.png in {root}')
    if runner.failures:
        launch.log(f'{len(runner.failures)} run(s) FAILED ({runner.finished} finished):')
        for name, reason in runner.failures:
            print(f'  {name}: {reason}', flush=True)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
