"""tools/analysis/term_gradient_cosines.py runs on the distiller's current batch contract (the
HQ pair as ``inputs_hq``; the tool had kept the earlier 12-channel batches and failed)."""
import json
import math
import subprocess
import sys

from tests.conftest import REPO_ROOT

TOOL = 'tools/analysis/term_gradient_cosines.py'


def test_pool_set_measures_each_change_term_against_its_pooled_twin(tmp_path):
    out = tmp_path / 'cosines.json'
    proc = subprocess.run(
        [sys.executable, TOOL, '--sets', 'pool', '--pool-check', '16', '--size', '32',
         '--pairs', '4', '--batch', '2', '--batches', '1', '--teacher-iters', '1',
         '--student-iters', '1', '--threads', '1', '--out', str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.read_text())['results']
    assert len(results) == 2 and all(key.startswith('pool, ') for key in results)
    for result in results.values():
        assert set(result['norm_over_task']) == {'chg_self', 'chg_self_pool16', 'chg_global',
                                                 'chg_global_pool16'}
        for name in ('chg_self', 'chg_global'):
            cosine = result['cosine'][f'{name}|{name}_pool16']
            assert -1.0 <= cosine <= 1.0 and math.isfinite(cosine)
            # a 32x32 map pooled to 16x16 is a different loss: not the same gradient
            assert cosine < 0.9999
        assert all(v > 0 for v in result['norm_over_task'].values())
