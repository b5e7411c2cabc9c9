"""Running a plan: the tools as subprocesses, best-on-val selection, the results CSV.

:class:`MatrixRunner` trains what is missing (teachers first, then up to ``jobs`` runs at a
time, each subprocess limited to ``threads`` torch threads), picks every training's best-on-val
checkpoint, evaluates it once and appends one CSV row per run.
"""
import glob
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from tools.analysis import report
from .plan import (CSV_COLUMNS, DATASETS, KEY_COLUMNS, METRICS, REPO_ROOT, EvalJob,
                   ExperimentPlan, RunKey, TrainJob, relative_to, write_configs)

SELECT_METRIC = 'F1'  # the val metric that chooses the checkpoint (CheckpointHook save_best)
BEST_CKPT = re.compile(r'best_F1_iter_(\d+)\.pth$')


# ---------------------------------------------------------------------------- subprocesses
def thread_env(threads: Optional[int]) -> Dict[str, str]:
    """The environment of a tool subprocess (``threads``: torch/OpenMP/MKL threads)."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if threads:
        for var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'):
            env[var] = str(threads)
    return env


def run_tool(cmd: Sequence[str], log_file: str, echo: Optional[Callable[[str], None]] = None,
             cwd: str = REPO_ROOT, threads: Optional[int] = None) -> int:
    """Run a tool, keep its full output in ``log_file`` and echo its progress lines.

    Args:
        cmd (list[str]): Command line.
        log_file (str): File receiving stdout and stderr (its folder is created).
        echo (callable, optional): Called with the short form of every training-iteration,
            validation and metric line.
        cwd (str): Working directory (the repo root: config paths are relative to it).
        threads (int, optional): Thread limit of the subprocess (see :func:`thread_env`).

    Returns:
        int: The exit status.
    """
    os.makedirs(osp.dirname(osp.abspath(log_file)), exist_ok=True)
    with open(log_file, 'w') as f:
        proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=thread_env(threads))
        for line in proc.stdout:
            f.write(line)
            if echo is not None and ('Iter(train)' in line or 'Iter(val)' in line or
                                     'change metrics' in line):
                echo(line.split(' - INFO - ')[-1].rstrip()[:150])
        return proc.wait()


def read_metrics(work_dir: str, since: Optional[float] = None) -> Dict[str, float]:
    """The metrics a ``tools/test.py`` run wrote (``<work_dir>/<timestamp>/<timestamp>.json``).

    Args:
        work_dir (str): The test run's work dir.
        since (float, optional): Ignore JSON files older than this time stamp.

    Returns:
        dict: The newest metrics JSON (``Precision, Recall, F1, ...``; ``AP`` when the metric
        reports it).
    """
    files = glob.glob(osp.join(work_dir, '*', '*.json'))
    if since is not None:
        files = [f for f in files if osp.getmtime(f) >= since - 1]
    if not files:
        raise FileNotFoundError(f'no metrics JSON under {work_dir}/<timestamp>/')
    with open(max(files, key=osp.getmtime)) as f:
        metrics = json.load(f)
    missing = [m for m in METRICS if m not in metrics and m != 'AP']
    if missing:
        raise KeyError(f'metrics JSON in {work_dir} lacks {missing}; got {sorted(metrics)}')
    return metrics


# ---------------------------------------------------------------------------- best on val
def val_records(work_dir: str) -> List[Tuple[int, Dict[str, float]]]:
    """``(iteration, val metrics)`` of every validation a training logged, in order.

    Read from mmengine's ``<work_dir>/<timestamp>/vis_data/scalars.json`` of the newest run
    that logged a validation (lines holding :data:`SELECT_METRIC`; training lines hold
    losses instead).

    Args:
        work_dir (str): The training's work dir.

    Returns:
        list[tuple[int, dict]]: One entry per validation.
    """
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')),
                       reverse=True):
        records = []
        with open(path) as f:
            for line in f:
                entry = json.loads(line)
                if SELECT_METRIC in entry:
                    step = int(entry.pop('step'))
                    records.append((step, {k: float(v) for k, v in entry.items()
                                           if isinstance(v, (int, float))}))
        if records:
            return records
    raise FileNotFoundError(f'no validation with {SELECT_METRIC} logged under '
                            f'{work_dir}/<timestamp>/vis_data/scalars.json')


def select_best(records: Sequence[Tuple[int, Dict[str, float]]],
                metric: str = SELECT_METRIC) -> Tuple[int, Dict[str, float]]:
    """The validation with the highest ``metric``; the earliest one on ties (as mmengine's
    ``CheckpointHook(rule='greater')``, which replaces the best only on a strict increase).

    Args:
        records (list[tuple[int, dict]]): ``(iteration, metrics)`` in training order.
        metric (str): The metric to maximise.

    Returns:
        tuple[int, dict]: The chosen ``(iteration, metrics)``.
    """
    if not records:
        raise ValueError('no validation records to choose from')
    best = records[0]
    for record in records[1:]:
        if record[1][metric] > best[1][metric]:
            best = record
    return best


def best_checkpoint(work_dir: str) -> Tuple[str, int]:
    """The ``best_F1_iter_<i>.pth`` file mmengine kept in a work dir, and ``i``."""
    found = [p for p in glob.glob(osp.join(work_dir, 'best_*.pth')) if BEST_CKPT.search(p)]
    if len(found) != 1:
        raise FileNotFoundError(f'expected one best_F1_iter_<i>.pth in {work_dir}, found '
                                f'{[osp.basename(p) for p in found] or "none"}; is '
                                "default_hooks.checkpoint.save_best='F1' set?")
    return found[0], int(BEST_CKPT.search(found[0]).group(1))


def best_of_training(work_dir: str) -> Dict[str, object]:
    """The best-on-val checkpoint of a finished training, cross-checked with its val log.

    Returns:
        dict: ``checkpoint``, ``best_iter``, ``val`` (metrics at that iteration),
        ``val_iters`` (every validated iteration).

    Raises:
        RuntimeError: The checkpoint mmengine kept is not the best validation in the log.
    """
    records = val_records(work_dir)
    it, metrics = select_best(records)
    path, ckpt_iter = best_checkpoint(work_dir)
    if ckpt_iter != it:
        raise RuntimeError(f'{work_dir}: the kept checkpoint {osp.basename(path)} is not the '
                           f'best validation in the log (iteration {it}, {SELECT_METRIC} '
                           f'{metrics[SELECT_METRIC]:.2f})')
    return dict(checkpoint=path, best_iter=it, val=metrics, val_iters=[r[0] for r in records])


# ---------------------------------------------------------------------------- datasets
def missing_dataset_paths(cfg, data_root: str) -> List[str]:
    """The folders and list files a config's train/val/test datasets need that do not exist
    (``[data_root]`` if the folder itself is missing)."""
    if not osp.isdir(data_root):
        return [data_root]
    missing = []
    for loader in ('train', 'val', 'test'):
        dataset = cfg.get(f'{loader}_dataloader', {}).get('dataset', {})
        for sub in dict(dataset.get('data_prefix') or {}).values():
            if sub and not osp.isdir(osp.join(data_root, sub)):
                missing.append(osp.join(data_root, sub))
        ann_file = dataset.get('ann_file')
        if ann_file and not osp.isfile(osp.join(data_root, ann_file)):
            missing.append(osp.join(data_root, ann_file))
    return sorted(set(missing))


def dataset_problem(dataset: str, cfg, data_root: str) -> Optional[str]:
    """A one-line explanation why ``dataset`` cannot be used from ``data_root``, or ``None``."""
    missing = missing_dataset_paths(cfg, data_root)
    if not missing:
        return None
    what = ('folder not found' if missing == [data_root] else
            f'incomplete, missing {", ".join(relative_to(p, data_root) for p in missing[:4])}'
            + (' ...' if len(missing) > 4 else ''))
    return f'dataset {dataset!r} at {data_root}: {what} (expected {DATASETS[dataset]})'


def ensure_synthetic_dataset(data_root: str, log_file: str, train: int = 800, val: int = 100,
                             test: int = 200, seed: int = 0,
                             generator_args: Sequence[str] = (),
                             log: Callable[[str], None] = print) -> None:
    """Generate the synthetic dataset with ``tools/make_synthetic_cd.py`` if it is missing.

    Args:
        data_root (str): Dataset folder; nothing happens if its ``meta.json`` exists.
        log_file (str): Log of the generator.
        train, val, test (int): Pairs per split.
        seed (int): Dataset seed.
        generator_args (list[str]): Further generator arguments (e.g. its change-rate knob).
        log (callable): Progress messages.
    """
    if osp.isfile(osp.join(data_root, 'meta.json')):
        log(f'dataset: using {data_root}')
        return
    log(f'dataset: generating {data_root} {" ".join(generator_args)}')
    rc = run_tool([sys.executable, 'tools/make_synthetic_cd.py', data_root, '--train',
                   str(train), '--val', str(val), '--test', str(test), '--seed', str(seed),
                   *generator_args], log_file)
    if rc != 0:
        raise RuntimeError(f'generating the synthetic dataset failed ({rc}); see {log_file}')


# ---------------------------------------------------------------------------- results CSV
def row_key(row: Dict[str, str]) -> RunKey:
    """The :class:`RunKey` of a CSV row."""
    try:
        values = [row[c] for c in KEY_COLUMNS]
        return RunKey(*values[:5], int(values[5]), int(values[6]), int(values[7]), values[8])
    except (KeyError, ValueError) as err:
        raise ValueError(f'malformed results row {row}: {err}') from err


def read_results(path: str) -> List[Dict[str, str]]:
    """Rows of a results CSV (``[]`` if the file does not exist)."""
    return report.read_csv(path, CSV_COLUMNS, 'results CSV (tools/run_experiments.py)')[1]


def done_keys(rows) -> set:
    """Keys of the rows that exist (these runs are skipped on resume)."""
    return {row_key(row) for row in rows}


def result_row(run: EvalJob, metrics: Dict[str, float], info: Dict[str, object],
               root: str) -> Dict[str, str]:
    """The CSV row of a finished run (``work_dir`` relative to the CSV's folder; ``AP`` empty
    when the metric does not report it)."""
    row = {k: str(v) for k, v in run.key._asdict().items()}
    row.update({m: '' if metrics.get(m) is None else f'{float(metrics[m]):.4f}' for m in METRICS})
    row['best_iter'] = str(info['best_iter'])
    row['val_F1'] = f'{float(info["val"][SELECT_METRIC]):.4f}'
    seconds = info.get('train_seconds')
    row['train_seconds'] = '' if seconds is None else f'{float(seconds):.1f}'
    row['work_dir'] = relative_to(run.run_dir, root)
    return row


# ---------------------------------------------------------------------------- the runner
def log(msg: str) -> None:
    """Time-stamped progress line."""
    print(f'[experiments {time.strftime("%H:%M:%S")}] {msg}', flush=True)


class MatrixRunner:
    """Executes plans: trains what is missing, evaluates, appends CSV rows, keeps going.

    Args:
        root (str): The work dir holding ``results.csv``.
        echo (bool): Echo the progress lines of the subprocesses.
        jobs (int): Trainings/evaluations run at the same time.
        threads (int, optional): Torch threads of each subprocess.
        on_row (callable, optional): Called after every appended row (e.g. rewrite reports).
    """

    def __init__(self, root: str, echo: bool = True, jobs: int = 1,
                 threads: Optional[int] = None,
                 on_row: Optional[Callable[[], None]] = None) -> None:
        if jobs < 1:
            raise ValueError(f'jobs must be >= 1, got {jobs}')
        self.root = root
        self.csv = osp.join(root, 'results.csv')
        self.echo = echo
        self.jobs = jobs
        self.threads = threads
        self.on_row = on_row
        self.failures: List[Tuple[str, str]] = []  # (run, reason)
        self.finished = 0
        self._lock = threading.Lock()  # CSV, counters
        self._train_locks: Dict[str, threading.Lock] = {}
        self._train_results: Dict[str, object] = {}  # work dir -> info dict or exception

    def _echo(self, name: str) -> Optional[Callable[[str], None]]:
        if not self.echo:
            return None
        prefix = f'    [{name}] ' if self.jobs > 1 else '    '
        return lambda line: print(prefix + line, flush=True)

    # -------------------------------------------------------------- training
    def train(self, job: TrainJob) -> Dict[str, object]:
        """Train ``job`` unless a finished training exists (once, whatever the thread).

        Returns:
            dict: The training's info (:func:`best_of_training` + ``train_seconds``).

        Raises:
            RuntimeError: The training (or its teacher) failed.
        """
        with self._lock:
            lock = self._train_locks.setdefault(job.work_dir, threading.Lock())
        with lock:
            previous = self._train_results.get(job.work_dir)
            if isinstance(previous, Exception):
                raise previous
            if previous is None:
                try:
                    previous = self._train(job)
                except RuntimeError as err:
                    self._train_results[job.work_dir] = err
                    raise
                self._train_results[job.work_dir] = previous
            return previous

    def _train(self, job: TrainJob) -> Dict[str, object]:
        if osp.isfile(job.marker) and osp.isfile(job.weights):
            with open(job.marker) as f:
                return json.load(f)
        if job.teacher is not None:
            try:
                self.train(job.teacher)
            except RuntimeError as err:
                raise RuntimeError(f'its teacher is unavailable: {err}') from err
        if osp.isdir(job.work_dir) and os.listdir(job.work_dir):
            # an interrupted or failed earlier attempt: keep it aside, never mix checkpoints
            aside = f'{job.work_dir}.incomplete-{time.strftime("%Y%m%d-%H%M%S")}'
            os.replace(job.work_dir, aside)
            log(f'{job.name}: earlier unfinished attempt moved to {aside}')
        log(f'training {job.name} -> {job.work_dir}')
        start = time.time()
        rc = run_tool(job.command(), job.log_file, self._echo(job.name), threads=self.threads)
        seconds = time.time() - start
        if rc != 0:
            raise RuntimeError(f'training {job.name} failed (exit {rc}); see {job.log_file}')
        try:
            info = best_of_training(job.work_dir)
        except (FileNotFoundError, RuntimeError, ValueError) as err:
            raise RuntimeError(f'training {job.name}: {err}; see {job.log_file}') from err
        if job.distiller:
            export_log = osp.join(job.work_dir, 'export_student.log')
            rc = run_tool([sys.executable, 'tools/export_student.py', info['checkpoint'],
                           job.weights, '--force'], export_log, threads=self.threads)
            if rc != 0 or not osp.isfile(job.weights):
                raise RuntimeError(f'exporting the student of {job.name} failed; see '
                                   f'{export_log}')
        else:
            if osp.lexists(job.weights):
                os.remove(job.weights)
            os.symlink(osp.basename(info['checkpoint']), job.weights)
        info.update(train_seconds=round(seconds, 1), command=job.command())
        with open(job.marker, 'w') as f:
            json.dump(info, f, indent=1)
        log(f'{job.name}: trained in {seconds:.0f} s, best val {SELECT_METRIC} '
            f'{info["val"][SELECT_METRIC]:.2f} at iteration {info["best_iter"]}')
        return info

    # -------------------------------------------------------------- evaluation
    def evaluate(self, run: EvalJob) -> Dict[str, float]:
        """Run ``tools/test.py`` for ``run`` and return its metrics."""
        start = time.time()
        if osp.isdir(run.work_dir):
            shutil.rmtree(run.work_dir)  # only metrics of this evaluation may be read
        rc = run_tool(run.command(), run.log_file, self._echo(run.key.method),
                      threads=self.threads)
        if rc != 0:
            raise RuntimeError(f'test failed (exit {rc}); see {run.log_file}')
        return read_metrics(run.work_dir, since=start)

    def _do_run(self, index: int, total: int, run: EvalJob) -> None:
        k = run.key
        variant = f' [{k.variant}]' if k.variant else ''
        name = f'{k.detector}/{k.dataset} {k.setting}/{k.method}{variant} seed {k.seed}'
        log(f'[{index}/{total}] {name}')
        try:
            info = self.train(run.training)
            metrics = self.evaluate(run)
        except (RuntimeError, OSError, KeyError, ValueError) as err:
            log(f'FAILED {name}: {err}')
            with self._lock:
                self.failures.append((name, str(err)))
            return
        with self._lock:
            report.append_csv_row(self.csv, CSV_COLUMNS, result_row(run, metrics, info,
                                                                    self.root))
            self.finished += 1
            if self.on_row is not None:
                self.on_row()
        ap = metrics.get('AP')
        log(f'{name}: {k.split} F1 {metrics["F1"]:.2f}' +
            ('' if ap is None else f', AP {float(ap):.2f}') +
            f' (best val F1 {info["val"][SELECT_METRIC]:.2f} at {info["best_iter"]})')

    def execute(self, plan: ExperimentPlan) -> None:
        """Do every run of the plan; a failure is recorded and the other runs go on.

        Teachers are queued first, the runs right behind them, so a free slot takes a run
        that needs no teacher while teachers still train (a run whose teacher is training
        waits for it; one whose teacher has not started trains it itself, once).
        """
        write_configs(plan)
        with ThreadPoolExecutor(self.jobs) as pool:
            futures = [pool.submit(self._train_quietly, t) for t in plan.teachers]
            total = len(plan.runs)
            futures += [pool.submit(self._do_run, i, total, run)
                        for i, run in enumerate(plan.runs, 1)]
            for future in futures:
                future.result()

    def _train_quietly(self, job: TrainJob) -> None:
        try:
            self.train(job)
        except RuntimeError as err:
            log(f'FAILED {job.name}: {err}')
