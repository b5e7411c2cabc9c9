"""The README's main job (tools/demo.py), end to end on a tiny dataset and budget (slow)."""
import csv
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.slow
def test_demo_trains_every_model_and_prints_the_table_with_ap(tmp_path):
    work, data = tmp_path / 'demo', tmp_path / 'data'
    proc = subprocess.run(
        [sys.executable, 'tools/demo.py', '--data-root', str(data), '--work-dir', str(work),
         '--iters', '4', '--batch-size', '2', '--crop', '32', '--train-pairs', '8',
         '--val-pairs', '4', '--test-pairs', '4', '--from-teacher'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(work / 'results.csv') as f:
        rows = list(csv.DictReader(f))
    methods = sorted(r['method'] for r in rows)
    assert methods == ['ft_lq', 'hicd', 'lq', 'teacher_hq', 'teacher_lq']
    assert {r['split'] for r in rows} == {'test'}
    for row in rows:
        assert 0 <= float(row['F1']) <= 100 and row['AP'] != ''  # every model reports AP
        assert int(row['best_iter']) in (1, 2, 3, 4)  # a validated checkpoint was chosen
    assert 'AP' in proc.stdout and 'best-on-val checkpoint' in proc.stdout
    for label in ('teacher on HQ', 'teacher on LQ', 'LQ baseline', '(ft_lq)', 'HiCD'):
        assert label in proc.stdout, label
    assert (data / 'val').is_dir() and len(list((data / 'val' / 'A').iterdir())) == 4
