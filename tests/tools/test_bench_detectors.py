"""tools/benchmark/bench_detectors.py end to end on a small input (no timing is asserted)."""
import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

TOOL = 'tools/benchmark/bench_detectors.py'
DETECTOR = 'configs/fc_siam_diff/fc_siam_diff_cpu-1k_synthetic.py'
HICD = 'configs/hicd/fc_siam_diff/hicd_fc_siam_diff_256x256_40k_levircd_multi_deg_x4.py'


def run(*args):
    return subprocess.run([sys.executable, TOOL, *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600)


def test_reports_params_flops_and_times_of_a_detector(tmp_path):
    out = tmp_path / 'bench.json'
    proc = run('--configs', DETECTOR, '--size', '64', '--batch', '2', '--repeats', '1',
               '--warmup', '0', '--threads', '1', '--json', str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    (result, ) = json.loads(out.read_text())['results']
    assert result['config'] == DETECTOR
    assert result['params'] > 1e5 and result['flops'] > 1e6
    assert result['train_step_s'] > 0 and result['inference_s'] > 0
    assert 'fc_siam_diff_cpu-1k_synthetic' in proc.stdout  # the markdown table


def test_a_distiller_config_is_refused_with_the_tool_to_use(tmp_path):
    proc = run('--configs', HICD, '--size', '64', '--repeats', '1')
    assert proc.returncode != 0
    assert 'distiller' in proc.stderr and 'bench_distill_overhead.py' in proc.stderr
