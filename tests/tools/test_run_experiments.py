"""tools/run_experiments.py and hicd_mm.utils.experiments: plan, configs, resume, aggregation,
missing datasets, and one tiny end-to-end matrix (teacher, LQ baseline, HiCD, an ablation)."""
import csv
import math
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from hicd_mm.registry import MODELS
from hicd_mm.utils import experiments as ex
from tests.conftest import REPO_ROOT, make_levir_split
from tests.models.test_hicd_distiller import batch

HICD_TERMS = ('sem_self', 'sem_cross', 'sem_global', 'chg_self', 'chg_global')


def spec(tmp_path, **kwargs) -> ex.ExperimentSpec:
    kwargs.setdefault('settings', ['resolution_x4', 'single_blur', 'multi_deg_x4'])
    kwargs.setdefault('seeds', [0, 1])
    kwargs.setdefault('iters', 4)
    return ex.ExperimentSpec('fc_siam_diff', 'synthetic', str(tmp_path / 'exp'),
                             data_root=str(tmp_path / 'data'), **kwargs)


def fake_row(key: ex.RunKey, f1: float = 50.0) -> dict:
    row = dict(key._asdict(), train_seconds='1.0', work_dir='x')
    row.update({m: str(f1) for m in ex.METRICS})
    return {k: str(v) for k, v in row.items()}


# ------------------------------------------------------------------------------------ plan
def test_plan_shares_one_teacher_per_seed_across_settings(tmp_path):
    s = spec(tmp_path)
    assert s.settings == ['resolution_x4', 'blur', 'multi_deg_x4']  # mixin name -> setting
    plan = ex.build_plan(s)
    assert len(plan.runs) == 2 * (1 + 3 * (len(ex.METHODS) - 1))
    assert plan.runs[0].key == ex.RunKey('fc_siam_diff', 'synthetic', 'clean', 'teacher_hq', 0, 4)
    for seed in (0, 1):
        runs = [r for r in plan.runs if r.key.seed == seed]
        teachers = {id(r.training) for r in runs if r.key.method in ex.TEACHER_METHODS}
        teachers |= {id(r.training.teacher) for r in runs if r.training.teacher is not None}
        assert len(teachers) == 1
        teacher = next(r.training for r in runs if r.key.method == 'teacher_hq')
        assert teacher.config == s.base_config and f'randomness.seed={seed}' in teacher.options
        for run in runs:
            method = run.key.method
            if method == 'teacher_hq':
                assert run.config == s.base_config
                continue
            assert run.config == osp.join(s.config_dir, f'lq_{run.key.setting}.py')
            if method == 'lq':
                assert run.training.teacher is None
                assert run.training.weights.endswith('iter_4.pth')
            elif method != 'teacher_lq':
                assert run.training.teacher is teacher
                assert f'model.teacher_ckpt={teacher.weights}' in run.training.options
                assert run.training.weights.endswith('student_final.pth')
    teacher_dirs = {r.training.work_dir for r in plan.runs if r.key.method == 'teacher_hq'}
    assert len(teacher_dirs) == 2
    # trainings: one teacher per seed plus one student per (seed, setting, trained method)
    names = [job.name for job in plan.trainings]
    assert names.count('teacher') == 2 and len(names) == 2 * (1 + 3 * 7)
    assert names.index('teacher') < names.index('blur/hicd')


def test_training_options_fit_iters_crop_and_turn_validation_off(tmp_path):
    plan = ex.build_plan(spec(tmp_path, crop=32, batch_size=2, num_workers=0,
                              cfg_options=['default_hooks.logger.interval=1']))
    opts = plan.runs[0].training.options
    for option in ('train_dataloader.dataset.pipeline.2.crop_size=[32,32]',
                   'train_dataloader.batch_size=2', 'train_cfg.max_iters=4',
                   'train_cfg.val_begin=5', 'param_scheduler.0.end=1',
                   'param_scheduler.1.begin=1', 'param_scheduler.1.end=4',
                   'train_dataloader.persistent_workers=False'):
        assert option in opts
    assert opts[-1] == 'default_hooks.logger.interval=1'  # user options come last
    with pytest.raises(ValueError, match='unknown setting'):
        spec(tmp_path, settings=['fog'])
    with pytest.raises(ValueError, match='unknown method'):
        spec(tmp_path, methods=['fitnets'])


def test_generated_configs_load_with_the_right_terms(tmp_path):
    plan = ex.build_plan(spec(tmp_path, settings=['blur'], seeds=[0]))
    ex.write_configs(plan)
    config_dir = plan.spec.config_dir

    def load(name):
        return Config.fromfile(osp.join(config_dir, f'{name}_blur.py'))

    def weights(cfg):
        return {k: v['loss']['loss_weight'] for k, v in cfg.model.distill_terms.items()}

    assert weights(load('hicd')) == {t: 1.0 for t in HICD_TERMS}
    for method, zeroed in ex.ABLATIONS.items():
        cfg = load(method)
        assert cfg.model.type == 'HiCDDistiller'
        assert weights(cfg) == {t: 0.0 if t in zeroed else 1.0 for t in HICD_TERMS}, method
    for method, loss_type in (('feat_mse', 'FeatureMSELoss'),
                              ('cwd', 'ChannelWiseDivergenceLoss')):
        terms = load(method).model.distill_terms
        assert {v['feature'] for v in terms.values()} == {'semantic', 'change'}
        assert {v['loss']['type'] for v in terms.values()} == {loss_type}
    hicd, lq = load('hicd'), load('lq')
    hicd_train = hicd.train_dataloader.dataset.pipeline
    lq_train = lq.train_dataloader.dataset.pipeline
    assert hicd_train[-2].keep_hq is True and hicd_train[-1].type == 'hicd_mm.PackHQPair'
    assert lq_train[-2].keep_hq is False and lq_train[-1].type == 'MultiImgPackSegInputs'
    for cfg in (hicd, lq):
        test_deg = cfg.test_dataloader.dataset.pipeline[-2]
        assert test_deg.type == 'hicd_mm.DegradeImage'
        assert test_deg.seed == 0 and test_deg.severity == 3 and not test_deg.keep_hq
    assert lq.model.type == 'SiamEncoderDecoder'
    assert any(h['type'] == 'hicd_mm.StudentCheckpointHook' for h in load('cwd').custom_hooks)


@pytest.mark.slow  # trains each baseline config
@pytest.mark.parametrize('method,terms', [('feat_mse', ('sem_feat_mse', 'chg_feat_mse')),
                                          ('cwd', ('sem_cwd', 'chg_cwd'))])
def test_baseline_configs_build_and_train(tmp_path, method, terms):
    """The baselines plug into HiCDDistiller: channel counts come from its dry run."""
    plan = ex.build_plan(spec(tmp_path, settings=['jpeg'], seeds=[0]))
    ex.write_configs(plan)
    cfg = Config.fromfile(osp.join(plan.spec.config_dir, f'{method}_jpeg.py')).model
    cfg.update(teacher_ckpt=None, allow_random_teacher=True)
    model = MODELS.build(cfg)
    model.init_weights()
    assert len(model.distill_losses[terms[0]]) == 4  # one loss (and adapter) per stage
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log = model.train_step(batch(), optim)
    for term in terms:
        assert math.isfinite(log[f'distill.loss_{term}'].item()), term
    adapters = [k for k in model.state_dict() if k.startswith('distill_losses.')]
    assert bool(adapters) == (method == 'feat_mse')  # CWD: equal channels, no adapter


# ------------------------------------------------------------------------------------ resume
def test_resume_skips_rows_that_exist(tmp_path):
    s = spec(tmp_path, settings=['multi_deg_x4'], seeds=[0, 1])
    csv_path = str(tmp_path / 'results.csv')
    all_keys = ex.planned_keys(s, 4)
    seed0 = [k for k in all_keys if k.seed == 0]
    seed1_lq = [k for k in all_keys if k.seed == 1 and k.method != 'lq']
    for key in seed0 + seed1_lq:
        ex.append_result(csv_path, fake_row(key))
    rows = ex.read_results(csv_path)
    assert len(rows) == len(seed0) + len(seed1_lq)
    with open(csv_path) as f:
        assert next(csv.reader(f)) == list(ex.CSV_COLUMNS)
    plan = ex.build_plan(s, ex.done_keys(rows))
    assert [r.key for r in plan.runs] == [ex.RunKey('fc_siam_diff', 'synthetic', 'multi_deg_x4',
                                                    'lq', 1, 4)]
    assert [job.name for job in plan.trainings] == ['multi_deg_x4/lq']  # no teacher needed
    # other iterations are other runs
    assert len(ex.build_plan(spec(tmp_path, settings=['multi_deg_x4'], seeds=[0, 1], iters=6),
                             ex.done_keys(rows)).runs) == len(all_keys)


def test_read_results_rejects_a_foreign_csv(tmp_path):
    path = tmp_path / 'other.csv'
    path.write_text('a,b\n1,2\n')
    with pytest.raises(ValueError, match='not a results CSV'):
        ex.read_results(str(path))
    assert ex.read_results(str(tmp_path / 'none.csv')) == []


# ------------------------------------------------------------------------------------ tables
def test_aggregation_matches_numpy():
    rng = np.random.default_rng(0)
    rows, expected = [], {}
    for method in ('lq', 'hicd'):
        for setting in ('blur', 'multi_deg_x4'):
            values = rng.uniform(40, 90, 3)
            expected[(method, setting)] = values
            for seed, v in enumerate(values):
                rows.append(fake_row(ex.RunKey('bit', 'synthetic', setting, method, seed, 8), v))
    rows.append(fake_row(ex.RunKey('bit', 'synthetic', 'clean', 'teacher_hq', 0, 8), 77.0))
    rows.append(fake_row(ex.RunKey('bit', 'synthetic', 'blur', 'lq', 0, 8),
                         expected[('lq', 'blur')][0]))  # a duplicate counts once
    groups = ex.aggregate(rows)
    cells = groups[('bit', 'synthetic', 8)]
    for cell, values in expected.items():
        assert cells[cell].n == 3
        np.testing.assert_allclose(cells[cell].mean, np.mean(values), rtol=1e-6)
        np.testing.assert_allclose(cells[cell].std, np.std(values, ddof=1), rtol=1e-5)
    assert cells[('teacher_hq', 'clean')].n == 1 and math.isnan(cells[('teacher_hq',
                                                                         'clean')].std)
    table = ex.markdown_table(cells)
    lines = table.splitlines()
    assert lines[0] == '| method | clean | blur | multi_deg_x4 |'
    assert [line.split(' | ')[0] for line in lines[2:]] == ['| teacher on HQ', '| LQ baseline',
                                                             '| HiCD']
    v = expected[('hicd', 'blur')]
    assert f'{np.mean(v):.1f} ± {np.std(v, ddof=1):.1f} (n=3)' in lines[4]
    assert '| 77.0 (n=1) | – | – |' in lines[2]
    assert '## bit on synthetic, 8 iterations' in ex.markdown_report(rows)


# ------------------------------------------------------------------------------------ datasets
def run_tool(*args, expect=0):
    proc = subprocess.run([sys.executable, 'tools/run_experiments.py', *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    out = proc.stdout + proc.stderr
    assert proc.returncode == expect, out[-4000:]
    return out


@pytest.mark.slow  # launches a tool in a subprocess
def test_missing_levircd_folder_is_skipped_with_a_clear_message(tmp_path):
    cfg = Config.fromfile(ex.find_base_config('fc_siam_diff', 'levircd'))
    absent = str(tmp_path / 'LEVIR-CD')
    message = ex.dataset_problem('levircd', cfg, absent)
    assert 'levircd' in message and 'folder not found' in message and absent in message
    os.makedirs(osp.join(absent, 'train', 'A'))
    message = ex.dataset_problem('levircd', cfg, absent)
    assert 'incomplete' in message and 'train/B' in message
    out = run_tool('--dataset', 'levircd', '--data-root', str(tmp_path / 'nope'), '--dry-run',
                   '--work-dir', str(tmp_path / 'exp'), expect=2)
    assert 'SKIPPED fc_siam_diff/levircd' in out and 'folder not found' in out
    assert not osp.exists(tmp_path / 'exp')


# ------------------------------------------------------------------------------------ e2e
@pytest.mark.slow  # trains 5 runs in subprocesses
def test_tiny_matrix_end_to_end_with_failure_and_resume(tmp_path):
    data = str(tmp_path / 'data')
    for split, n in (('train', 4), ('val', 2), ('test', 2)):
        make_levir_split(data, split, n, seed=len(split))
    work = str(tmp_path / 'exp')
    common = ['--settings', 'multi_deg_x4', '--seeds', '0', '--iters', '4', '--batch-size', '2',
              '--crop', '32', '--num-workers', '0', '--data-root', data, '--work-dir', work,
              '--quiet', '--methods', 'teacher_hq', 'teacher_lq', 'lq', 'hicd', 'hicd_no_cross']
    dry = run_tool(*common, '--dry-run')
    assert '5 run(s) to do' in dry and 'tools/train.py' in dry and not osp.exists(work)
    # an invalid option for the sem_cross term breaks HiCD but not its no-cross ablation
    out = run_tool(*common, '--student-cfg-options',
                   'model.distill_terms.sem_cross.loss.distance=bogus', expect=1)
    assert '1 run(s) FAILED (4 finished)' in out and 'multi_deg_x4/hicd seed 0' in out
    rows = ex.read_results(osp.join(work, 'results.csv'))
    assert sorted(r['method'] for r in rows) == ['hicd_no_cross', 'lq', 'teacher_hq',
                                                 'teacher_lq']
    # resume: only the failed run is done again, the teacher is reused
    out = run_tool(*common)
    assert '1 run(s) to do, 4 already' in out and 'training teacher' not in out
    rows = ex.read_results(osp.join(work, 'results.csv'))
    by_method = {r['method']: r for r in rows}
    assert len(rows) == 5 and set(by_method) == {'teacher_hq', 'teacher_lq', 'lq', 'hicd',
                                                 'hicd_no_cross'}
    assert by_method['teacher_hq']['setting'] == 'clean'
    for row in rows:
        assert 0 <= float(row['F1']) <= 100 and float(row['train_seconds']) > 0
        assert osp.isdir(osp.join(work, row['work_dir']))
    assert by_method['teacher_lq']['train_seconds'] == by_method['teacher_hq']['train_seconds']
    report = open(osp.join(work, 'results.md')).read()
    assert '| HiCD | – | ' in report and '| HiCD w/o cross |' in report
    assert osp.getsize(osp.join(work, 'results_f1.png')) > 0
    assert '0 run(s) to do, 5 already' in run_tool(*common, '--dry-run')
