"""The one report module of the tools: result CSVs, markdown tables, plots and the statistics
the tables show.

Used by the experiment runner (``tools/experiments/summary.py``, ``tools/demo.py``) and the
robustness report (``tools/analysis/robustness_report.py``). Files are written atomically (a
temporary file renamed over the target), so an interrupted run never leaves half a report.
"""
import csv
import math
import os
import os.path as osp
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple


# ---------------------------------------------------------------------------- CSV
def read_csv(path: str, required: Sequence[str], what: str = 'results CSV'
             ) -> Tuple[List[str], List[Dict[str, str]]]:
    """The header and rows of a CSV (``([], [])`` when the file does not exist).

    Args:
        path (str): The CSV.
        required (list[str]): Columns it must have.
        what (str): What the file should be, for the error message.

    Raises:
        ValueError: A required column is missing (the file is something else).
    """
    if not osp.isfile(path):
        return [], []
    with open(path, newline='') as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    missing = [c for c in required if c not in header]
    if header and missing:
        raise ValueError(f'{path} is not a {what}: columns {missing} are missing (got '
                         f'{header}); remove it or choose another output folder')
    return header, rows


def append_csv_row(path: str, header: Sequence[str], row: Dict[str, str]) -> None:
    """Append one row (writing ``header`` first for a new file; absent cells are empty)."""
    new = not osp.isfile(path) or osp.getsize(path) == 0
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'a', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(header), extrasaction='ignore', restval='')
        if new:
            writer.writeheader()
        writer.writerow(row)


# ---------------------------------------------------------------------------- text and plots
def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]],
                   align: Optional[Sequence[str]] = None) -> List[str]:
    """Markdown lines of a table.

    Args:
        header (list[str]): Column titles.
        rows (iterable[list[str]]): Cells, already formatted.
        align (list[str], optional): ``'l'`` or ``'r'`` per column (default: all ``'l'``).

    Returns:
        list[str]: The lines.
    """
    align = align or ['l'] * len(header)
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + ''.join('---:|' if a == 'r' else '---|' for a in align)]
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return lines


def write_text(path: str, text: str) -> None:
    """Write a text file atomically."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path: str, dpi: int = 110) -> None:
    """Save a figure atomically and close it."""
    plt = pyplot()
    root, ext = osp.splitext(path)
    tmp = f'{root}.tmp-{os.getpid()}{ext}'
    fig.tight_layout()
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- statistics
class Summary(NamedTuple):
    """Mean, sample standard deviation (``ddof=1``; NaN for one value) and count."""
    mean: float
    std: float
    n: int


def summarize(values: Sequence[float]) -> Summary:
    """:class:`Summary` of the values (e.g. over seeds)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError('no values to summarize')
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return Summary(mean, std, n)


def _t_cdf(t: float, df: int) -> float:
    """CDF of Student's t: the regularised incomplete beta function by its continued
    fraction (Lentz), accurate to ~1e-12."""
    if t == 0:
        return 0.5
    x = df / (df + t * t)
    a, b = df / 2.0, 0.5
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) +
                 b * math.log1p(-x))
    # I_x(a, b) via the continued fraction, valid for x < (a + 1) / (a + b + 2)
    if x < (a + 1) / (a + b + 2):
        tail = math.exp(log_front) * _beta_cf(x, a, b) / a
    else:
        tail = 1 - math.exp(log_front) * _beta_cf(1 - x, b, a) / b
    return 1 - 0.5 * tail if t >= 0 else 0.5 * tail


def _beta_cf(x: float, a: float, b: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t with ``df`` degrees of freedom (bisection on the CDF).

    Args:
        p (float): Probability in (0, 1), e.g. 0.975 for a two-sided 95 % interval.
        df (int): Degrees of freedom (>= 1).

    Returns:
        float: ``t`` with ``P(T <= t) = p`` (e.g. 2.776 for p=0.975, df=4).
    """
    if not 0 < p < 1 or df < 1:
        raise ValueError(f'need 0 < p < 1 and df >= 1, got p={p}, df={df}')
    lo, hi = -1e4, 1e4
    for _ in range(200):
        mid = (lo + hi) / 2
        if _t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


class PairedDelta(NamedTuple):
    """Paired differences ``a - b`` over matched units (seeds): their mean, sample standard
    deviation, the two-sided 95 % t-interval of the mean (NaN for one pair), the number of
    pairs and how many differences are > 0."""
    mean: float
    std: float
    low: float
    high: float
    n: int
    wins: int


def paired_delta(a: Dict[object, float], b: Dict[object, float],
                 confidence: float = 0.95) -> Optional[PairedDelta]:
    """:class:`PairedDelta` of ``a[u] - b[u]`` over the units present in both.

    Args:
        a, b (dict): Unit (e.g. seed) -> value.
        confidence (float): Level of the two-sided t-interval.

    Returns:
        PairedDelta | None: ``None`` when no unit is shared.
    """
    units = sorted(set(a) & set(b))
    if not units:
        return None
    diffs = [float(a[u]) - float(b[u]) for u in units]
    s = summarize(diffs)
    if s.n > 1:
        half = t_quantile(0.5 + confidence / 2, s.n - 1) * s.std / math.sqrt(s.n)
        low, high = s.mean - half, s.mean + half
    else:
        low = high = math.nan
    return PairedDelta(s.mean, s.std, low, high, s.n, sum(d > 0 for d in diffs))


def format_summary(summary: Optional[Summary], digits: int = 1) -> str:
    """``mean ± std (n=k)``; ``mean (n=1)`` for one value; ``–`` if absent."""
    if summary is None:
        return '–'
    if summary.n == 1:
        return f'{summary.mean:.{digits}f} (n=1)'
    return f'{summary.mean:.{digits}f} ± {summary.std:.{digits}f} (n={summary.n})'


def format_delta(delta: Optional[PairedDelta], digits: int = 1) -> str:
    """``+1.2 [−0.3, +2.7] 4/5``: mean difference, its 95 % interval, wins / pairs."""
    if delta is None:
        return '–'
    if delta.n == 1:
        return f'{delta.mean:+.{digits}f} {delta.wins}/1'
    return (f'{delta.mean:+.{digits}f} [{delta.low:+.{digits}f}, {delta.high:+.{digits}f}] '
            f'{delta.wins}/{delta.n}')
