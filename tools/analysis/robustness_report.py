"""Robustness of one checkpoint to image-quality degradations of image B.

Examples::

    python tools/analysis/robustness_report.py CONFIG work_dirs/x/iter_1000.pth \\
        --out-dir work_dirs/x/robustness
    python tools/analysis/robustness_report.py CONFIG CKPT --out-dir DIR \\
        --degradations blur noise jpeg haze resolution multi --severities 1 3 5 --scales 2 4 8

The test split is evaluated once clean (the HQ images, every degradation of the config
removed) and once per cell of the grid "degradation x severity" (single degradations and the
groups ``blur``/``noise``/``single``) or "degradation x scale" (``resolution``, ``multi``).
Image B is degraded on the fly by ``DegradeImage(keep_hq=False, seed=SEED)``, the same
reproducible transform as ``tools/test.py --degradation``.

The model is built and its checkpoint loaded once; each cell gets a fresh test loop (its own
dataloader and evaluator). Outputs in ``--out-dir``:

* ``robustness.csv``: one row per cell (degradation, severity, scale, seed, samples, every
  metric of the test evaluator, checkpoint), appended as soon as a cell is done; cells
  already in it are skipped, so an interrupted or extended run resumes;
* ``robustness.md``: F1 tables (degradation x severity, degradation x scale) and all metrics;
* ``robustness.png``: F1 vs severity (and vs scale), one line per degradation, clean dashed.

See docs/robustness.md.
"""
import argparse
import copy
import os
import os.path as osp
import sys
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from mmengine.config import Config, DictAction
from mmengine.registry import LOOPS, RUNNERS
from mmengine.runner import Runner, TestLoop

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
sys.path.insert(0, osp.join(REPO, 'tools'))  # tools/: hicd_tools

import hicd_mm  # noqa: F401,E402  (registers components, checkpoint safe globals)
from hicd_mm.utils import setup_work_dir  # noqa: E402
from hicd_mm.utils.checkpoint import load_weights  # noqa: E402
from hicd_tools.test_options import (degradation_family, make_test_degradation,  # noqa: E402
                                     valid_degradation_names, with_test_degradation)
from tools.analysis import report  # noqa: E402

CLEAN = 'clean'
CSV_NAME, MD_NAME, PNG_NAME = 'robustness.csv', 'robustness.md', 'robustness.png'
KEY_FIELDS = ('degradation', 'severity', 'scale', 'seed')
HEAD_FIELDS = KEY_FIELDS + ('samples', )
DEFAULT_DEGRADATIONS = ('blur', 'noise', 'jpeg', 'haze', 'low_light', 'contrast_brightness')
SUMMARY_METRIC = 'F1'


class Cell(NamedTuple):
    """One evaluation: a degradation at one severity or scale (``clean``: none)."""
    degradation: str
    severity: Optional[int] = None
    scale: Optional[float] = None

    def key(self, seed: int) -> Tuple[str, str, str, str]:
        """The CSV key ``(degradation, severity, scale, seed)`` as strings."""
        return (self.degradation, _fmt_level(self.severity), _fmt_level(self.scale),
                '' if self.degradation == CLEAN else str(seed))

    def label(self) -> str:
        """e.g. ``jpeg severity 3`` or ``resolution scale 4``."""
        if self.severity is not None:
            return f'{self.degradation} severity {self.severity}'
        if self.scale is not None:
            return f'{self.degradation} scale {_fmt_level(self.scale)}'
        return self.degradation


def _fmt_level(value: Optional[float]) -> str:
    return '' if value is None else f'{value:g}'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='F1 of one checkpoint under every degradation type x severity of image B',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('config', help='test config file path')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--out-dir', required=True,
                   help='folder of robustness.csv/.md/.png (an existing CSV is resumed)')
    p.add_argument('--degradations', nargs='+', default=list(DEFAULT_DEGRADATIONS),
                   metavar='NAME', help='degradation names or groups; valid: '
                   f'{", ".join(valid_degradation_names())}')
    p.add_argument('--severities', nargs='+', type=int, default=[1, 2, 3, 4, 5], metavar='S',
                   help='severities of single degradations and groups')
    p.add_argument('--scales', nargs='+', type=float, default=[2, 4, 8], metavar='K',
                   help='scales of resolution (factor) and multi (sf)')
    p.add_argument('--seed', type=int, default=0,
                   help='degradation seed: sample i uses default_rng([seed, i])')
    p.add_argument('--work-dir', help='runner logs; None means OUT_DIR/work_dir')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value pairs')
    return p.parse_args(argv)


def build_grid(degradations: Sequence[str], severities: Sequence[int],
               scales: Sequence[float], seed: int) -> List[Tuple[Cell, Optional[dict]]]:
    """The clean cell and one cell per degradation and level, with their transforms.

    Args:
        degradations (Sequence[str]): Names or groups (duplicates are dropped).
        severities (Sequence[int]): Levels of single degradations and groups.
        scales (Sequence[float]): Levels of ``resolution`` and ``multi``.
        seed (int): Degradation seed.

    Returns:
        list[tuple[Cell, dict | None]]: ``(cell, DegradeImage config)``, clean first (None).

    Raises:
        ValueError | TypeError: An unknown name, a severity outside 1-5, a scale < 1, a
            negative seed (the message names the valid values).
    """
    if not degradations:
        raise ValueError('--degradations is empty')
    grid: List[Tuple[Cell, Optional[dict]]] = [(Cell(CLEAN), None)]
    for name in dict.fromkeys(degradations):
        fam = degradation_family(name)
        if fam == 'single':
            cells = [Cell(name, severity=int(s)) for s in dict.fromkeys(severities)]
        elif fam in ('resolution', 'multi'):
            cells = [Cell(name, scale=float(s)) for s in dict.fromkeys(scales)]
        else:
            cells = [Cell(name)]
        for cell in cells:
            grid.append((cell, make_test_degradation(name, cell.severity, cell.scale, seed)))
    return grid


def read_rows(path: str) -> Tuple[List[str], List[dict]]:
    """The header and rows of an existing CSV (``([], [])`` when there is none).

    Raises:
        ValueError: The file lacks the key columns (it is not a robustness CSV).
    """
    return report.read_csv(path, HEAD_FIELDS + (SUMMARY_METRIC, ), 'robustness CSV')


def check_same_checkpoint(rows: Iterable[dict], checkpoint: str, path: str) -> None:
    """Refuse to resume a CSV that was written for another checkpoint."""
    others = sorted({r.get('checkpoint', '') for r in rows} - {checkpoint, ''})
    if others:
        raise ValueError(f'{path!r} holds results of another checkpoint ({others[0]!r}), not '
                         f'{checkpoint!r}; choose another --out-dir or remove the CSV')


def make_row(cell: Cell, seed: int, samples: int, metrics: Dict[str, float],
             checkpoint: str) -> dict:
    """One CSV row: the cell key, the sample count, the scalar metrics and the checkpoint.

    Raises:
        KeyError: The evaluator returned no ``F1``.
    """
    if SUMMARY_METRIC not in metrics:
        raise KeyError(f'the test evaluator returned no {SUMMARY_METRIC!r} (got '
                       f'{sorted(metrics)}); the report needs ChangeMetric')
    row = dict(zip(KEY_FIELDS, cell.key(seed)), samples=str(samples))
    for name, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            row[name] = f'{float(value):.4f}'
    row['checkpoint'] = checkpoint
    return row


def append_row(path: str, header: List[str], row: dict) -> List[str]:
    """Append ``row`` (creating the CSV with a header made from it); returns the header."""
    if not header:
        header = list(HEAD_FIELDS) + [k for k in row if k not in HEAD_FIELDS + ('checkpoint', )]
        header.append('checkpoint')
    report.append_csv_row(path, header, row)
    return header


def build_runner(cfg: Config) -> Runner:
    """The runner of ``cfg`` (model built, checkpoint not loaded yet)."""
    return RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)


def build_cell_loop(runner, loader_cfg: dict, evaluator_cfg, loop_cfg: dict):
    """A test loop of its own for one cell, built through mmengine's public loop API.

    Args:
        runner (Runner): The runner (model, hooks, logger).
        loader_cfg (dict): The cell's test dataloader config.
        evaluator_cfg (dict | list): The ``test_evaluator`` of the config.
        loop_cfg (dict): The ``test_cfg`` of the config (``type`` optional).

    Returns:
        BaseLoop: The loop; ``loop.run()`` returns the metrics.
    """
    loop_cfg = copy.deepcopy(dict(loop_cfg))
    evaluator_cfg = copy.deepcopy(evaluator_cfg)
    if 'type' in loop_cfg:
        return LOOPS.build(loop_cfg, default_args=dict(
            runner=runner, dataloader=loader_cfg, evaluator=evaluator_cfg))
    return TestLoop(runner, loader_cfg, evaluator_cfg, **loop_cfg)


def evaluate_cells(runner, checkpoint: str, loader_cfg: dict, evaluator_cfg, loop_cfg: dict,
                   jobs: Sequence[Tuple[Cell, Optional[dict]]],
                   on_result: Callable[[Cell, dict, int], None]) -> None:
    """Evaluate every job with one model: the checkpoint is loaded once (strictly), and each
    job gets a fresh test loop (its own dataloader, dataset transform and evaluator).

    Args:
        runner (Runner): Built from the config (no ``load_from``).
        checkpoint (str): The checkpoint, loaded by :func:`hicd_mm.utils.checkpoint.load_weights`.
        loader_cfg (dict): The test dataloader config (clean dataset).
        evaluator_cfg (dict | list): The ``test_evaluator`` of the config.
        loop_cfg (dict): The ``test_cfg`` of the config.
        jobs (Sequence): ``(cell, DegradeImage config or None)``.
        on_result (Callable): Called with ``(cell, metrics, number of samples)``.
    """
    load_weights(runner.model, checkpoint, role='detector')
    # Not Runner.test(): it runs the before_run/after_run hooks on every call (and
    # LoggerHook.after_run closes the visualizer). Hooks run once around all cells.
    runner.call_hook('before_run')
    try:
        for cell, degradation in jobs:
            dataset_cfg, _ = with_test_degradation(loader_cfg['dataset'], degradation)
            loop = build_cell_loop(runner, dict(copy.deepcopy(loader_cfg), dataset=dataset_cfg),
                                   evaluator_cfg, loop_cfg)
            metrics = loop.run()
            on_result(cell, metrics, len(loop.dataloader.dataset))
    finally:
        runner.call_hook('after_run')


def _levels(rows: List[dict], column: str) -> List[str]:
    values = {r[column] for r in rows if r[column]}
    return sorted(values, key=float)


def _f1(row: Optional[dict]) -> Optional[float]:
    try:
        return float(row[SUMMARY_METRIC]) if row else None
    except (TypeError, ValueError):
        return None


def _cell_text(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.2f}'


def report_rows(rows: List[dict], seed: int) -> Tuple[Optional[dict], List[dict]]:
    """The clean row and the degraded rows of ``seed`` (last one wins on duplicates)."""
    clean, cells = None, {}
    for row in rows:
        if row['degradation'] == CLEAN:
            clean = row
        elif row['seed'] == str(seed):
            cells[tuple(row[k] for k in KEY_FIELDS)] = row
    return clean, list(cells.values())


def f1_table(rows: List[dict], column: str, clean_f1: Optional[float]) -> List[str]:
    """Markdown lines: one row per degradation, one column per level of ``column``."""
    levels = _levels(rows, column)
    names = list(dict.fromkeys(r['degradation'] for r in rows))
    lookup = {(r['degradation'], r[column]): _f1(r) for r in rows}
    body = []
    for name in names:
        values = [lookup.get((name, lv)) for lv in levels]
        known = [v for v in values if v is not None]
        mean = sum(known) / len(known) if known else None
        drop = None if mean is None or clean_f1 is None else clean_f1 - mean
        body.append([name, *[_cell_text(v) for v in values], _cell_text(mean),
                     _cell_text(drop)])
    return report.markdown_table(
        ['degradation', *[f'{column} {lv}' for lv in levels], 'mean', 'drop vs clean'], body,
        ['l'] + ['r'] * (len(levels) + 2))


def metrics_table(header: List[str], rows: List[dict]) -> List[str]:
    """Markdown lines: every metric of every row."""
    metrics = [k for k in header if k not in HEAD_FIELDS + ('checkpoint', )]
    columns = list(HEAD_FIELDS) + metrics
    body = [[row.get(k) or '-' for k in HEAD_FIELDS] +
            [_cell_text(_float(row.get(k))) for k in metrics] for row in rows]
    return report.markdown_table(columns, body,
                                 ['l'] * len(HEAD_FIELDS) + ['r'] * len(metrics))


def _float(value: Optional[str]) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def write_markdown(path: str, header: List[str], rows: List[dict], seed: int, config: str,
                   checkpoint: str) -> None:
    """Write ``robustness.md`` (F1 tables per severity and per scale, then all metrics)."""
    clean, cells = report_rows(rows, seed)
    clean_f1 = _f1(clean)
    by_severity = [r for r in cells if r['severity']]
    by_scale = [r for r in cells if r['scale']]
    lines = ['# Robustness report', '',
             f'- config: `{config}`', f'- checkpoint: `{checkpoint}`',
             f'- image B degraded on the fly with `DegradeImage(keep_hq=False, seed={seed})`: '
             f'sample i uses `default_rng([{seed}, i])`',
             f'- test samples: {clean["samples"] if clean else "-"}',
             f'- clean (HQ) {SUMMARY_METRIC}: {_cell_text(clean_f1)} %', '']
    if by_severity:
        lines += [f'## {SUMMARY_METRIC} (%) per degradation and severity', '']
        lines += f1_table(by_severity, 'severity', clean_f1) + ['']
    if by_scale:
        lines += [f'## {SUMMARY_METRIC} (%) per degradation and scale', '']
        lines += f1_table(by_scale, 'scale', clean_f1) + ['']
    lines += ['## All metrics (%)', '']
    lines += metrics_table(header, ([clean] if clean else []) + cells) + ['']
    lines += ['"drop vs clean" is the clean F1 minus the mean F1 over the levels. Groups '
              '(blur, noise, single) draw one of their kinds per sample from the seed.', '']
    report.write_text(path, '\n'.join(lines))


def plot(path: str, rows: List[dict], seed: int) -> None:
    """Write ``robustness.png``: F1 vs severity (and vs scale), one line per degradation."""
    plt = report.pyplot()
    clean, cells = report_rows(rows, seed)
    panels = [(c, [r for r in cells if r[c]]) for c in ('severity', 'scale')]
    panels = [p for p in panels if p[1]] or [('severity', [])]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.6), squeeze=False)
    for ax, (column, panel_rows) in zip(axes[0], panels):
        for name in dict.fromkeys(r['degradation'] for r in panel_rows):
            points = sorted((float(r[column]), _f1(r)) for r in panel_rows
                            if r['degradation'] == name and _f1(r) is not None)
            ax.plot([p[0] for p in points], [p[1] for p in points], marker='o', label=name)
        if _f1(clean) is not None:
            ax.axhline(_f1(clean), color='black', linestyle='--', label='clean (HQ)')
        levels = [float(v) for v in _levels(panel_rows, column)]
        if column == 'scale' and levels and min(levels) > 0:
            ax.set_xscale('log', base=2)
        if levels:
            ax.set_xticks(levels, [f'{v:g}' for v in levels])
        ax.set_xlabel(column)
        ax.set_ylabel(f'{SUMMARY_METRIC} (%)')
        ax.set_title(f'{SUMMARY_METRIC} vs {column} (seed {seed})')
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize='small')
    report.save_figure(fig, path, dpi=120)


def load_config(args: argparse.Namespace) -> Config:
    """The config: options merged, checkpoint set, test loader without lingering workers."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = 'none'
    setup_work_dir(cfg, args.config, args.work_dir or osp.join(args.out_dir, 'work_dir'))
    cfg.load_from = None  # loaded strictly by evaluate_cells
    cfg.resume = False
    if not cfg.get('test_dataloader') or not cfg.test_dataloader.get('dataset'):
        raise KeyError(f'{args.config}: no test_dataloader.dataset to evaluate on')
    loader = copy.deepcopy(cfg.test_dataloader)
    loader['persistent_workers'] = False  # one pass per cell: do not keep workers alive
    cfg.test_dataloader = loader
    return cfg


def _log(message: str) -> None:
    print(f'robustness: {message}', file=sys.stderr, flush=True)


class Plan(NamedTuple):
    """What one invocation does: the grid, the cells left to evaluate and the CSV state."""
    grid: List[Tuple[Cell, Optional[dict]]]
    jobs: List[Tuple[Cell, Optional[dict]]]
    checkpoint: str
    csv_path: str
    header: List[str]
    rows: List[dict]
    cfg: Optional[Config]


def prepare(args: argparse.Namespace) -> Plan:
    """Validate everything (names, levels, files, an existing CSV) before any evaluation.

    Raises:
        ValueError | TypeError | KeyError | FileNotFoundError: With a message naming the
            argument or file at fault.
    """
    grid = build_grid(args.degradations, args.severities, args.scales, args.seed)
    remote = '://' in args.checkpoint
    checkpoint = args.checkpoint if remote else osp.abspath(args.checkpoint)
    if not remote and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint!r}')
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config not found: {args.config!r}')
    csv_path = osp.join(args.out_dir, CSV_NAME)
    header, rows = read_rows(csv_path)
    check_same_checkpoint(rows, checkpoint, csv_path)
    done = {tuple(r[k] for k in KEY_FIELDS) for r in rows}
    jobs = [(cell, deg) for cell, deg in grid if cell.key(args.seed) not in done]
    cfg = None
    if jobs:
        cfg = load_config(args)
        with_test_degradation(cfg.test_dataloader.dataset, None)  # a plain dataset?
    return Plan(grid, jobs, checkpoint, csv_path, header, rows, cfg)


def execute(args: argparse.Namespace, plan: Plan) -> None:
    """Evaluate the cells left (appending each to the CSV), then write the report."""
    os.makedirs(args.out_dir, exist_ok=True)
    _log(f'{len(plan.grid)} cells: {len(plan.grid) - len(plan.jobs)} already in '
         f'{plan.csv_path} (skipped), {len(plan.jobs)} to evaluate')
    header, rows = plan.header, plan.rows
    if plan.jobs:
        _, notes = with_test_degradation(plan.cfg.test_dataloader.dataset, None)
        for note in notes:
            _log(note.replace('test dataset: removed', 'every cell replaces'))
        runner = build_runner(plan.cfg)

        def on_result(cell: Cell, metrics: dict, samples: int) -> None:
            nonlocal header
            row = make_row(cell, args.seed, samples, metrics, plan.checkpoint)
            header = append_row(plan.csv_path, header, row)
            rows.append(row)
            _log(f'[{len(rows)}/{len(plan.grid)}] {cell.label()}: {SUMMARY_METRIC} '
                 f'{float(metrics[SUMMARY_METRIC]):.2f}')

        evaluate_cells(runner, plan.checkpoint, plan.cfg.test_dataloader,
                       plan.cfg.test_evaluator, plan.cfg.get('test_cfg') or {}, plan.jobs,
                       on_result)
    header, rows = read_rows(plan.csv_path)
    write_markdown(osp.join(args.out_dir, MD_NAME), header, rows, args.seed, args.config,
                   plan.checkpoint)
    plot(osp.join(args.out_dir, PNG_NAME), rows, args.seed)
    _log(f'wrote {CSV_NAME}, {MD_NAME} and {PNG_NAME} in {args.out_dir}')


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        plan = prepare(args)
    except (ValueError, TypeError, KeyError, FileNotFoundError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f'error: {message}', file=sys.stderr)
        return 2
    execute(args, plan)
    return 0


if __name__ == '__main__':
    sys.exit(main())
