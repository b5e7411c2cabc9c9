"""tools/analysis/robustness_report.py: one checkpoint x every degradation type and level."""
import csv
import glob
import json
import os.path as osp

import cv2
import pytest

from tests.conftest import TINY_CFG as CFG
from tests.conftest import load_tool, run_tool, tiny_options, write_synthetic_dataset

tool = load_tool('tools/analysis/robustness_report.py')
GRID = ['--degradations', 'jpeg', 'blur', '--severities', '1', '3', '--seed', '0']


@pytest.fixture(scope='module')
def tiny_model(tiny_teacher, tmp_path_factory):
    """The session's tiny FC-Siam-diff checkpoint and a 64x64 synthetic dataset to test it on."""
    root = str(tmp_path_factory.mktemp('report') / 'synthetic')
    write_synthetic_dataset(root, {'train': 4, 'val': 2, 'test': 2}, size=64, seed=0)
    return root, tiny_teacher[1]


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def report_argv(root, ckpt, out_dir, *grid):
    return [CFG, ckpt, '--out-dir', out_dir, *(grid or GRID), '--cfg-options',
            *tiny_options(root, 2)]


@pytest.mark.slow
def test_report_grid_files_and_resume(tiny_model, tmp_path, monkeypatch, capsys):
    root, ckpt = tiny_model
    out = str(tmp_path / 'robustness')
    proc = run_tool(['tools/analysis/robustness_report.py', *report_argv(root, ckpt, out)])
    assert '5 cells: 0 already in' in proc.stderr
    rows = read_csv(osp.join(out, 'robustness.csv'))
    keys = [(r['degradation'], r['severity'], r['scale'], r['seed']) for r in rows]
    assert keys == [('clean', '', '', ''), ('jpeg', '1', '', '0'), ('jpeg', '3', '', '0'),
                    ('blur', '1', '', '0'), ('blur', '3', '', '0')]
    for row in rows:
        assert row['samples'] == '2' and row['checkpoint'] == osp.abspath(ckpt)
        for metric in ('F1', 'IoU', 'Precision', 'Recall', 'OA', 'Kappa'):
            assert 0 <= float(row[metric]) <= 100 or metric == 'Kappa', (row, metric)

    with open(osp.join(out, 'robustness.md')) as f:
        md = f.read()
    assert '| degradation | severity 1 | severity 3 | mean | drop vs clean |' in md
    for row in rows:
        assert f'{float(row["F1"]):.2f}' in md
    for name in ('| jpeg |', '| blur |', 'clean (HQ) F1'):
        assert name in md
    png = cv2.imread(osp.join(out, 'robustness.png'))
    assert png is not None and png.shape[0] > 100

    # the last cell (after four others on the same model) equals a separate tools/test.py run
    work = str(tmp_path / 'single')
    run_tool(['tools/test.py', CFG, ckpt, '--work-dir', work, '--degradation', 'blur',
              '--severity', '3', '--cfg-options', *tiny_options(root, 2)])
    with open(sorted(glob.glob(osp.join(work, '*', '*.json')))[-1]) as f:
        single = json.load(f)
    for metric in ('F1', 'IoU', 'OA', 'Kappa'):
        assert float(rows[-1][metric]) == pytest.approx(single[metric], abs=1e-4), metric

    # a second invocation of the same grid evaluates nothing (no runner is even built)
    with open(osp.join(out, 'robustness.csv')) as f:
        before = f.read()
    monkeypatch.setattr(tool, 'build_runner', lambda cfg: pytest.fail('runner built'))
    capsys.readouterr()
    assert tool.main(report_argv(root, ckpt, out)) == 0
    assert '5 cells: 5 already in' in capsys.readouterr().err
    with open(osp.join(out, 'robustness.csv')) as f:
        assert f.read() == before


@pytest.mark.slow  # needs the session's trained checkpoint
def test_extended_grid_evaluates_only_new_cells(tiny_model, tmp_path, monkeypatch):
    root, ckpt = tiny_model
    out = tmp_path / 'out'
    out.mkdir()
    header = list(tool.HEAD_FIELDS) + ['F1', 'checkpoint']
    with open(out / 'robustness.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        for deg, sev, seed, f1 in (('clean', '', '', 90), ('jpeg', '1', '0', 80)):
            writer.writerow(dict(degradation=deg, severity=sev, scale='', seed=seed,
                                 samples=2, F1=f1, checkpoint=osp.abspath(ckpt)))
    evaluated = []

    def fake_evaluate(runner, checkpoint, loader_cfg, evaluator_cfg, loop_cfg, jobs, on_result):
        for cell, degradation in jobs:
            evaluated.append((cell, degradation))
            on_result(cell, dict(F1=50.0 + len(evaluated), IoU=1.0), 2)

    monkeypatch.setattr(tool, 'build_runner', lambda cfg: None)
    monkeypatch.setattr(tool, 'evaluate_cells', fake_evaluate)
    argv = report_argv(root, ckpt, str(out), '--degradations', 'jpeg', 'resolution',
                       '--severities', '1', '2', '--scales', '4', '--seed', '0')
    assert tool.main(argv) == 0
    assert [c.label() for c, _ in evaluated] == ['jpeg severity 2', 'resolution scale 4']
    assert evaluated[1][1] == dict(type='hicd_mm.DegradeImage', degradation='resolution',
                                   scale=4.0,
                                   target='B', keep_hq=False, seed=0)
    rows = read_csv(out / 'robustness.csv')
    assert [r['F1'] for r in rows] == ['90', '80', '51.0000', '52.0000']
    md = (out / 'robustness.md').read_text()
    assert '| jpeg | 80.00 | 51.00 | 65.50 | 24.50 |' in md
    assert '| resolution | 52.00 | 52.00 | 38.00 |' in md
    assert osp.isfile(out / 'robustness.png')


@pytest.mark.parametrize('grid, message', [
    (['--degradations', 'jpeg', 'fog'], "unknown degradation 'fog'; valid names: identity"),
    (['--degradations', 'jpeg', '--severities', '0'], 'severity must be in 1-5'),
    (['--degradations', 'multi', '--scales', '0.5'], 'must be >= 1'),
])
def test_bad_grid_fails_before_anything(tmp_path, capsys, grid, message):
    out = tmp_path / 'never'
    assert tool.main([CFG, str(tmp_path / 'missing.pth'), '--out-dir', str(out), *grid]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and message in err
    if 'fog' in grid:
        for name in ('gaussian_blur', 'haze', 'jpeg', 'blur', 'noise'):
            assert name in err
    assert not out.exists()


def test_missing_checkpoint_and_foreign_csv(tmp_path, capsys):
    out = tmp_path / 'out'
    assert tool.main([CFG, str(tmp_path / 'missing.pth'), '--out-dir', str(out)]) == 2
    assert 'checkpoint not found' in capsys.readouterr().err
    ckpt = tmp_path / 'a.pth'
    ckpt.write_bytes(b'')
    out.mkdir()
    (out / 'robustness.csv').write_text(
        'degradation,severity,scale,seed,samples,F1,checkpoint\nclean,,,,2,90,/other.pth\n')
    assert tool.main([CFG, str(ckpt), '--out-dir', str(out)]) == 2
    assert "another checkpoint ('/other.pth')" in capsys.readouterr().err


def test_grid_levels_per_family():
    grid = tool.build_grid(['noise', 'resolution', 'identity', 'noise'], [2, 5], [4], 1)
    assert [c.label() for c, _ in grid] == [
        'clean', 'noise severity 2', 'noise severity 5', 'resolution scale 4', 'identity']
    assert grid[0][1] is None
    assert grid[1][1]['degradation'] == ['gaussian_noise', 'poisson_noise']
    assert all(d['seed'] == 1 and d['keep_hq'] is False for _, d in grid[1:])
