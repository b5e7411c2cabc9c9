"""The experiment runner (tools/run_experiments.py, tools/experiments/): plan, variants,
ft_lq, configs, resume, best-on-val selection, summary statistics against naive references,
and one tiny end-to-end matrix (slow)."""
import json
import math
import os
import os.path as osp
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from mmengine.config import Config

from hicd_mm.registry import MODELS
from tests.conftest import REPO_ROOT, make_levir_split
from tools.analysis import report
from tools.experiments import launch, plan as pl, summary

HICD_TERMS = ('sem_self', 'sem_cross', 'sem_global', 'chg_self', 'chg_global')
FROM_TEACHER = osp.join(REPO_ROOT, 'configs/_base_/hicd/from_teacher.py')


def spec(tmp_path, **kwargs) -> pl.ExperimentSpec:
    kwargs.setdefault('settings', ['resolution_x4', 'single_blur', 'multi_deg_x4'])
    kwargs.setdefault('seeds', [0, 1])
    kwargs.setdefault('iters', 16)
    return pl.ExperimentSpec('fc_siam_diff', 'synthetic', str(tmp_path / 'exp'),
                             data_root=str(tmp_path / 'data'), **kwargs)


def variants():
    return [pl.Variant('default'), pl.Variant('ft', (FROM_TEACHER, ))]


def fake_row(key: pl.RunKey, f1: float = 50.0, ap: str = '40.0') -> dict:
    row = dict(key._asdict(), train_seconds='1.0', work_dir='x', best_iter='8', val_F1='60.0')
    row.update({m: str(f1) for m in pl.METRICS})
    row['AP'] = ap
    return {k: str(v) for k, v in row.items()}


# ------------------------------------------------------------------------------------ plan
def test_plan_shares_one_teacher_per_seed_across_settings_methods_and_variants(tmp_path):
    s = spec(tmp_path, variants=variants(), finetune_cfg_options=['optim_wrapper.optimizer.lr=1'])
    assert s.settings == ['resolution_x4', 'blur', 'multi_deg_x4']  # mixin name -> setting
    plan = pl.build_plan(s)
    n_hicd = 1 + len(pl.ABLATIONS)
    per_setting = len(pl.METHODS) - 1 + n_hicd  # every HiCD method once more for 'ft'
    assert len(plan.runs) == 2 * (1 + 3 * per_setting)
    assert plan.runs[0].key == pl.RunKey('fc_siam_diff', 'synthetic', 'clean', 'teacher_hq', '',
                                         0, 16, 16, 'val')
    for seed in (0, 1):
        runs = [r for r in plan.runs if r.key.seed == seed]
        teachers = {id(r.training) for r in runs if r.key.method in pl.TEACHER_METHODS}
        teachers |= {id(r.training.teacher) for r in runs if r.training.teacher is not None}
        assert len(teachers) == 1
        teacher = next(r.training for r in runs if r.key.method == 'teacher_hq')
        assert teacher.config == s.base_config and f'randomness.seed={seed}' in teacher.options
        for run in runs:
            k = run.key
            assert (k.variant != '') == pl.is_hicd_method(k.method)
            assert '--split' in run.command() and run.command()[-len(run.options) - 2] == 'val'
            if k.method in pl.TEACHER_METHODS:
                continue
            assert run.config == osp.join(s.config_dir, f'lq_{k.setting}.py')
            job = run.training
            lr = 'optim_wrapper.optimizer.lr=1' in job.options
            assert lr == (k.method == 'ft_lq' or k.variant == 'ft'), k  # fine-tuning runs only
            if k.method == 'lq':
                assert job.teacher is None and not job.distiller
            else:
                assert job.teacher is teacher and job.distiller
                assert f'model.teacher_ckpt={teacher.weights}' in job.command()
    # variants live in their own work dirs and configs
    dirs = [r.training.work_dir for r in plan.runs if r.key.method not in pl.TEACHER_METHODS]
    assert len(dirs) == len(set(dirs))
    hicd = {r.key.variant: r.training for r in plan.runs
            if r.key.method == 'hicd' and r.key.seed == 0 and r.key.setting == 'blur'}
    assert hicd['default'].work_dir.endswith(osp.join('blur', 'hicd'))
    assert hicd['ft'].work_dir.endswith(osp.join('blur', 'hicd__ft'))
    assert hicd['ft'].config.endswith('hicd_blur__ft.py')
    names = [job.name for job in plan.trainings]
    assert sum(n.startswith('teacher') for n in names) == 2
    assert all(n.startswith('teacher') for n in names[:2])  # teachers first


def test_teacher_iters_differ_from_student_iters(tmp_path):
    plan = pl.build_plan(spec(tmp_path, settings=['blur'], seeds=[0], methods=['lq', 'hicd'],
                              teacher_iters=40))
    teacher = plan.teachers[0]
    assert 'train_cfg.max_iters=40' in teacher.options
    assert teacher.work_dir.endswith('teacher_iters40')
    student = next(r.training for r in plan.runs if r.key.method == 'hicd')
    assert 'train_cfg.max_iters=16' in student.options
    assert {r.key.teacher_iters for r in plan.runs} == {40}
    assert osp.join('iters16', 'teacher40') in student.work_dir


def test_training_options_validate_and_keep_the_best_checkpoint(tmp_path):
    plan = pl.build_plan(spec(tmp_path, crop=32, batch_size=2, num_workers=0,
                              cfg_options=['default_hooks.logger.interval=1']))
    opts = plan.runs[0].training.options
    for option in ('train_dataloader.dataset.pipeline.2.crop_size=[32,32]',
                   'train_dataloader.batch_size=2', 'train_cfg.max_iters=16',
                   'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
                   'default_hooks.checkpoint.save_best=F1', 'default_hooks.checkpoint.rule=greater',
                   'param_scheduler.0.end=1', 'param_scheduler.1.end=16',
                   'train_dataloader.persistent_workers=False'):
        assert option in opts
    assert opts[-1] == 'default_hooks.logger.interval=1'  # user options come last
    opts = pl.build_plan(spec(tmp_path, val_interval=5)).runs[0].training.options
    assert 'train_cfg.val_interval=5' in opts
    with pytest.raises(ValueError, match='unknown setting'):
        spec(tmp_path, settings=['fog'])
    with pytest.raises(ValueError, match='unknown method'):
        spec(tmp_path, methods=['fitnets'])
    with pytest.raises(ValueError, match='split'):
        spec(tmp_path, split='train')
    with pytest.raises(ValueError, match='unique'):
        spec(tmp_path, variants=[pl.Variant('a'), pl.Variant('a')])


# ------------------------------------------------------------------------------------ configs
def write(tmp_path, **kwargs):
    plan = pl.build_plan(spec(tmp_path, seeds=[0], **kwargs))
    pl.write_configs(plan)
    return plan.spec.config_dir


def weights(cfg):
    return {k: v['loss']['loss_weight'] for k, v in cfg.model.distill_terms.items()}


def test_generated_configs_load_with_the_right_terms(tmp_path):
    config_dir = write(tmp_path, settings=['blur'], variants=variants(),
                       methods=['lq', 'ft_lq', 'hicd', 'hicd_no_cross', 'hicd_no_chg_self'])

    def load(name):
        return Config.fromfile(osp.join(config_dir, f'{name}.py'))

    assert weights(load('hicd_blur')) == {t: 1.0 for t in HICD_TERMS}
    assert not load('hicd_blur').model.get('init_student_from_teacher', False)
    for name in ('hicd_no_cross_blur', 'hicd_no_cross_blur__ft'):
        assert weights(load(name)) == {t: 0.0 if t == 'sem_cross' else 1.0 for t in HICD_TERMS}
    assert weights(load('hicd_no_chg_self_blur')) == {t: 0.0 if t == 'chg_self' else 1.0
                                                      for t in HICD_TERMS}
    assert load('hicd_no_cross_blur__ft').model.init_student_from_teacher
    assert load('hicd_blur__ft').model.init_student_from_teacher
    ft = load('ft_lq_blur')
    assert ft.model.type == 'HiCDDistiller' and ft.model.init_student_from_teacher
    assert ft.model.distill_terms == {}
    hicd, lq = load('hicd_blur'), load('lq_blur')
    assert ft.train_dataloader == hicd.train_dataloader and ft.optim_wrapper == hicd.optim_wrapper
    hicd_train = hicd.train_dataloader.dataset.pipeline
    lq_train = lq.train_dataloader.dataset.pipeline
    assert hicd_train[-2].keep_hq is True and hicd_train[-1].type == 'hicd_mm.PackHQPair'
    assert lq_train[-2].keep_hq is False and lq_train[-1].type == 'MultiImgPackSegInputs'
    for cfg in (hicd, lq):
        test_deg = cfg.test_dataloader.dataset.pipeline[-2]
        assert test_deg.type == 'hicd_mm.DegradeImage'
        assert test_deg.seed == 0 and not test_deg.keep_hq
        assert cfg.val_dataloader.dataset.pipeline[-2] == test_deg
    assert lq.model.type == 'SiamEncoderDecoder'


def test_ft_lq_builds_as_the_teacher_without_terms(tmp_path):
    config_dir = write(tmp_path, settings=['jpeg'], methods=['ft_lq'])
    cfg = Config.fromfile(osp.join(config_dir, 'ft_lq_jpeg.py')).model
    cfg.update(teacher_ckpt=None, allow_random_teacher=True)
    model = MODELS.build(cfg)
    model.init_weights()
    assert len(model.distill_losses) == 0
    student, teacher = model.student.state_dict(), model.teacher.state_dict()
    assert student.keys() == teacher.keys()
    assert all(torch.equal(student[k], teacher[k]) for k in student)


def test_variant_rules(tmp_path):
    bad = tmp_path / 'lr.py'
    bad.write_text('optim_wrapper = dict(optimizer=dict(lr=1.0))\n')
    with pytest.raises(ValueError, match='optimiser or schedule'):
        pl.Variant('lr', (str(bad), )).overrides()
    with pytest.raises(ValueError, match='optimiser or schedule'):
        pl.Variant('lr', cfg_options=('param_scheduler.0.end=3', )).overrides()
    with pytest.raises(FileNotFoundError, match='nope.py'):
        pl.Variant('x', ('nope.py', ))
    with pytest.raises(ValueError, match='variant name'):
        pl.Variant('a/b')
    assert pl.Variant('t', (FROM_TEACHER, )).from_teacher
    assert not pl.Variant('s').from_teacher
    assert pl.Variant('o', cfg_options=('model.init_student_from_teacher=True', )).from_teacher
    assert pl.parse_variant('h1=' + FROM_TEACHER) == pl.Variant('h1', (FROM_TEACHER, ))
    assert pl.parse_variant('plain=') == pl.Variant('plain')
    with pytest.raises(ValueError, match='NAME=MIXIN'):
        pl.parse_variant('plain')
    vfile = tmp_path / 'variants.py'
    vfile.write_text(f"variants = dict(a=dict(mixins=['{FROM_TEACHER}']), "
                     "b=dict(cfg_options=['model.distill_terms.sem_global.loss.loss_weight=0']))\n")
    a, b = pl.load_variants_file(str(vfile))
    assert a.from_teacher and not b.from_teacher and b.cfg_options
    vfile.write_text("variants = dict(a=dict(mixin=['x.py']))\n")
    with pytest.raises(ValueError, match='unknown keys'):
        pl.load_variants_file(str(vfile))


def test_variant_mixin_terms_reach_the_model(tmp_path):
    """A variant mixin that changes hicd_terms changes the model's distill_terms (the parent
    config resolved hicd_terms when it was read, so a top-level key alone would do nothing);
    its ablations and the shipped dev variants are checked in the config the runner writes."""
    s = spec(tmp_path, settings=['multi_deg_x4'], seeds=[0], methods=['hicd', 'hicd_no_chg_kd'],
             variants=pl.load_variants_file(
                 osp.join(REPO_ROOT, 'configs/_base_/hicd/dev_variants.py')))
    plan = pl.build_plan(s)
    pl.write_configs(plan)

    def terms(name):
        return Config.fromfile(osp.join(s.config_dir, name)).model.distill_terms

    default = terms('hicd_multi_deg_x4.py')
    assert set(default) == set(HICD_TERMS)
    assert all(default[t].loss.get('class_balance') is None for t in HICD_TERMS)
    for variant, kd in (('ca_sched', False), ('ca_kd_sched', True), ('ca_kd_sched_ft', True)):
        got = terms(f'hicd_multi_deg_x4__{variant}.py')
        assert ('chg_kd' in got) == kd, variant
        assert got.chg_self.loss.class_balance == 'rows', variant
        assert got.chg_global.loss.class_balance == 'rows', variant
        assert got.sem_self.loss.get('class_balance') is None
        if kd:
            assert got.chg_kd.loss.type == 'ResponseKDLoss'
            ablated = terms(f'hicd_no_chg_kd_multi_deg_x4__{variant}.py')
            assert ablated.chg_kd.loss.loss_weight == 0.0
            assert ablated.chg_self.loss.class_balance == 'rows'
    cfg = Config.fromfile(osp.join(s.config_dir, 'hicd_multi_deg_x4__ca_kd_sched_ft.py'))
    assert cfg.model.init_student_from_teacher
    assert any(h['type'].endswith('DistillWeightScheduleHook') for h in cfg.custom_hooks)


# ------------------------------------------------------------------------------------ resume
def test_resume_skips_rows_that_exist_per_variant_and_split(tmp_path):
    s = spec(tmp_path, settings=['multi_deg_x4'], seeds=[0], variants=variants(),
             methods=['teacher_hq', 'lq', 'hicd'])
    csv_path = str(tmp_path / 'results.csv')
    keys = pl.planned_keys(s, 16, 16)
    assert len(keys) == 4 and {k.variant for k in keys if k.method == 'hicd'} == {'default', 'ft'}
    for key in keys:
        if key.variant != 'ft':
            report.append_csv_row(csv_path, pl.CSV_COLUMNS, fake_row(key))
    rows = launch.read_results(csv_path)
    plan = pl.build_plan(s, launch.done_keys(rows))
    assert [(r.key.method, r.key.variant) for r in plan.runs] == [('hicd', 'ft')]
    assert [job.name for job in plan.trainings][-1].startswith('multi_deg_x4/hicd__ft')
    # a test-split invocation reuses nothing from the val rows
    test_spec = spec(tmp_path, settings=['multi_deg_x4'], seeds=[0], variants=variants(),
                     methods=['teacher_hq', 'lq', 'hicd'], split='test')
    assert len(pl.build_plan(test_spec, launch.done_keys(rows)).runs) == 4


class _RecordingRunner(launch.MatrixRunner):
    """The real runner with stand-in subprocesses: records when each training ran."""

    def __init__(self, root, jobs, monkeypatch):
        super().__init__(root, echo=False, jobs=jobs)
        self.events = []  # (event, training work dir), in order
        monkeypatch.setattr(launch, 'run_tool', self._tool)
        monkeypatch.setattr(launch, 'best_of_training', self._best)

    def _tool(self, cmd, log_file, echo=None, threads=None):
        if cmd[1] == 'tools/export_student.py':  # cmd: python tool checkpoint out --force
            open(cmd[3], 'w').close()
            return 0
        work_dir = cmd[cmd.index('--work-dir') + 1]
        with self._lock:
            self.events.append(('start', work_dir))
        time.sleep(0.2 if osp.basename(work_dir).startswith('teacher_iters') else 0.02)
        os.makedirs(work_dir, exist_ok=True)
        open(osp.join(work_dir, 'best_F1_iter_8.pth'), 'w').close()
        with self._lock:
            self.events.append(('end', work_dir))
        return 0

    def _best(self, work_dir):
        return dict(best_iter=8, checkpoint=osp.join(work_dir, 'best_F1_iter_8.pth'),
                    val={launch.SELECT_METRIC: 60.0})

    def evaluate(self, run):
        with self._lock:
            self.events.append(('eval', run.training.work_dir))
        return {m: 50.0 for m in pl.METRICS}


@pytest.mark.parametrize('jobs', [1, 2, 5])
def test_free_slots_take_runs_without_a_teacher_while_teachers_train(tmp_path, monkeypatch,
                                                                     jobs):
    plan = pl.build_plan(spec(tmp_path, settings=['blur'], seeds=[0, 1, 2],
                              methods=['lq', 'ft_lq']))
    runner = _RecordingRunner(str(tmp_path / 'exp'), jobs=jobs, monkeypatch=monkeypatch)
    runner.execute(plan)

    assert not runner.failures
    events = runner.events
    teachers = [t.work_dir for t in plan.teachers]
    trained = [d for e, d in events if e == 'start']
    assert len(teachers) == 3 and len(trained) == len(set(trained))  # each training once
    assert set(trained) == set(teachers) | {r.training.work_dir for r in plan.runs}
    last_teacher_end = max(i for i, (e, d) in enumerate(events) if e == 'end' and d in teachers)
    first_run = min(i for i, (e, d) in enumerate(events) if e == 'start' and d not in teachers)
    if jobs == 1:  # one slot: the teachers, in order, then the runs
        assert first_run > last_teacher_end
    else:  # the third teacher (jobs=2) or the spare slots (jobs=5) did not leave a slot idle
        assert first_run < last_teacher_end
    for run in plan.runs:  # nothing trains from or is evaluated before an unfinished teacher
        if run.training.teacher is not None:
            teacher_end = events.index(('end', run.training.teacher.work_dir))
            assert teacher_end < events.index(('start', run.training.work_dir))
    assert len(launch.read_results(runner.csv)) == len(plan.runs)


def test_read_results_rejects_a_foreign_or_old_csv(tmp_path):
    path = tmp_path / 'other.csv'
    path.write_text('detector,dataset,setting,method,seed,iters,F1\nx,y,z,lq,0,4,1\n')
    with pytest.raises(ValueError, match='not a results CSV.*variant'):
        launch.read_results(str(path))
    assert launch.read_results(str(tmp_path / 'none.csv')) == []


# ------------------------------------------------------------------------------------ best val
def test_select_best_matches_a_naive_reference():
    rng = np.random.default_rng(0)
    for trial in range(50):
        values = rng.integers(0, 6, size=rng.integers(1, 9)).astype(float)  # ties are common
        records = [((i + 1) * 10, {'F1': v, 'AP': -v}) for i, v in enumerate(values)]
        it, metrics = launch.select_best(records)
        first_max = int(np.argmax(values))  # numpy: the first occurrence of the maximum
        assert it == (first_max + 1) * 10 and metrics['F1'] == values.max(), trial
    with pytest.raises(ValueError):
        launch.select_best([])


def fake_training(work, f1s, kept_iter):
    os.makedirs(osp.join(work, '20260101_000000', 'vis_data'))
    with open(osp.join(work, '20260101_000000', 'vis_data', 'scalars.json'), 'w') as f:
        for i, f1 in enumerate(f1s, 1):
            f.write(json.dumps({'loss': 1.0, 'lr': 0.1, 'step': 2 * i - 1}) + '\n')
            f.write(json.dumps({'Precision': 1.0, 'F1': f1, 'step': 2 * i}) + '\n')
    open(osp.join(work, f'best_F1_iter_{kept_iter}.pth'), 'w').close()


def test_best_of_training_reads_the_log_and_checks_the_kept_checkpoint(tmp_path):
    work = str(tmp_path / 'run')
    fake_training(work, [10.0, 30.0, 30.0, 20.0], kept_iter=4)
    info = launch.best_of_training(work)
    assert info['best_iter'] == 4 and info['val']['F1'] == 30.0
    assert info['val_iters'] == [2, 4, 6, 8] and info['checkpoint'].endswith('iter_4.pth')
    other = str(tmp_path / 'other')
    fake_training(other, [10.0, 30.0], kept_iter=2)
    with pytest.raises(RuntimeError, match='not the best validation'):
        launch.best_of_training(other)
    empty = str(tmp_path / 'empty')
    os.makedirs(empty)
    with pytest.raises(FileNotFoundError, match='no validation'):
        launch.best_of_training(empty)


# ------------------------------------------------------------------------------------ summary
def test_t_quantile_matches_tables():
    # two-sided 95 % critical values of Student's t (any statistics table)
    for df, expected in ((1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423)):
        assert report.t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)
    scipy_stats = pytest.importorskip('scipy.stats')
    for p, df in ((0.9, 3), (0.995, 7), (0.05, 12)):
        assert report.t_quantile(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), abs=1e-8)


def test_paired_delta_matches_a_naive_reference():
    rng = np.random.default_rng(1)
    for n in (2, 3, 5, 8):
        a = {s: float(v) for s, v in enumerate(rng.uniform(30, 60, n))}
        b = {s: float(v) for s, v in enumerate(rng.uniform(30, 60, n))}
        b[99] = 1.0  # a seed without a partner is left out
        d = report.paired_delta(a, b)
        diffs = np.array([a[s] - b[s] for s in range(n)])
        half = report.t_quantile(0.975, n - 1) * diffs.std(ddof=1) / math.sqrt(n)
        assert d.n == n and d.wins == int((diffs > 0).sum())
        np.testing.assert_allclose([d.mean, d.std, d.low, d.high],
                                   [diffs.mean(), diffs.std(ddof=1), diffs.mean() - half,
                                    diffs.mean() + half], rtol=1e-10)
    assert report.paired_delta({0: 1.0}, {1: 2.0}) is None
    single = report.paired_delta({0: 3.0}, {0: 1.0})
    assert single.mean == 2.0 and math.isnan(single.low) and single.wins == 1


def test_markdown_report_shows_means_deltas_wins_and_collapses():
    rng = np.random.default_rng(2)
    rows, values = [], {}
    for method, variant in (('lq', ''), ('ft_lq', ''), ('hicd', 'default'), ('hicd', 'h1')):
        values[(method, variant)] = rng.uniform(20, 60, 5)
        for seed, v in enumerate(values[(method, variant)]):
            key = pl.RunKey('fc_siam_diff', 'synthetic', 'multi_deg_x4', method, variant, seed,
                            300, 300, 'test')
            rows.append(fake_row(key, v, ap='' if method == 'lq' else '33.0'))
    rows[-1]['F1'] = '0.0000'  # one collapsed h1 run
    values[('hicd', 'h1')][-1] = 0.0
    text = summary.markdown_report(rows)
    assert '## fc_siam_diff on synthetic, 300 iterations (teacher 300), test split: ' \
           'multi_deg_x4' in text
    line = next(line for line in text.splitlines() if '| h1 |' in line)
    h1, lq, ft = values[('hicd', 'h1')], values[('lq', '')], values[('ft_lq', '')]
    for base in (lq, ft):
        diffs = h1 - base
        half = report.t_quantile(0.975, 4) * diffs.std(ddof=1) / math.sqrt(5)
        expected = (f'{diffs.mean():+.1f} [{diffs.mean() - half:+.1f}, '
                    f'{diffs.mean() + half:+.1f}] {int((diffs > 0).sum())}/5')
        assert expected in line
    assert f'{h1.mean():.1f} ± {h1.std(ddof=1):.1f} (n=5)' in line and '| 1/5 |' in line
    lq_line = next(line for line in text.splitlines() if line.startswith('| LQ baseline'))
    assert lq_line.count('–') >= 2  # no AP, no delta against itself


# ------------------------------------------------------------------------------------ CLI
def run_tool(*args, expect=0):
    proc = subprocess.run([sys.executable, 'tools/run_experiments.py', *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    out = proc.stdout + proc.stderr
    assert proc.returncode == expect, out[-4000:]
    return out


@pytest.mark.slow
def test_missing_dataset_and_bad_arguments(tmp_path):
    cfg = Config.fromfile(pl.find_base_config('fc_siam_diff', 'levircd'))
    absent = str(tmp_path / 'LEVIR-CD')
    message = launch.dataset_problem('levircd', cfg, absent)
    assert 'levircd' in message and 'folder not found' in message and absent in message
    out = run_tool('--dataset', 'levircd', '--data-root', str(tmp_path / 'nope'), '--dry-run',
                   '--work-dir', str(tmp_path / 'exp'), expect=2)
    assert 'SKIPPED fc_siam_diff/levircd' in out and 'folder not found' in out
    assert not osp.exists(tmp_path / 'exp')
    out = run_tool('--dataset', 'levircd', '--change-fraction', '0.02', expect=2)
    assert '--change-fraction applies to --dataset synthetic only' in out
    out = run_tool('--variant', 'x=nope.py', expect=2)
    assert 'nope.py' in out


@pytest.mark.slow
def test_tiny_matrix_end_to_end_with_variants_failure_and_resume(tmp_path):
    data = str(tmp_path / 'data')
    for split, n in (('train', 4), ('val', 2), ('test', 2)):
        make_levir_split(data, split, n, seed=len(split))
    work = str(tmp_path / 'exp')
    common = ['--settings', 'multi_deg_x4', '--seeds', '0', '--iters', '4', '--batch-size', '2',
              '--crop', '32', '--num-workers', '0', '--data-root', data, '--work-dir', work,
              '--quiet', '--val-interval', '2', '--jobs', '2', '--threads', '1',
              '--methods', 'teacher_hq', 'teacher_lq', 'lq', 'ft_lq', 'hicd', 'hicd_no_cross',
              '--variant', 'default=', '--variant', f'ft={FROM_TEACHER}']
    dry = run_tool(*common, '--dry-run')
    assert '8 result row(s) to do' in dry and 'tools/train.py' in dry and not osp.exists(work)
    assert '--split val' in dry and '--split test' not in dry
    # an invalid option of the sem_cross term breaks both HiCD rows but not their ablations
    out = run_tool(*common, '--student-cfg-options',
                   'model.distill_terms.sem_cross.loss.distance=bogus', expect=1)
    assert '2 run(s) FAILED (6 finished)' in out
    rows = launch.read_results(osp.join(work, 'results.csv'))
    assert sorted((r['method'], r['variant']) for r in rows) == [
        ('ft_lq', ''), ('hicd_no_cross', 'default'), ('hicd_no_cross', 'ft'), ('lq', ''),
        ('teacher_hq', ''), ('teacher_lq', '')]
    # resume: only the failed runs are done again, the teacher is reused
    out = run_tool(*common)
    assert '2 run(s) to do, 6 already' in out and 'training teacher' not in out
    rows = launch.read_results(osp.join(work, 'results.csv'))
    assert len(rows) == 8 and {r['split'] for r in rows} == {'val'}
    for row in rows:
        assert 0 <= float(row['F1']) <= 100 and float(row['train_seconds']) > 0
        assert row['best_iter'] in ('2', '4') and osp.isdir(osp.join(work, row['work_dir']))
        if row['method'] not in pl.TEACHER_METHODS:
            # the val split evaluated at the best checkpoint reproduces the validation that
            # chose it: for distillers, the exported student is that checkpoint's student
            assert float(row['F1']) == pytest.approx(float(row['val_F1']), abs=1e-3), row
    teacher = [r for r in rows if r['method'] in pl.TEACHER_METHODS]
    assert len({(r['best_iter'], r['val_F1'], r['train_seconds']) for r in teacher}) == 1
    report_text = open(osp.join(work, 'results.md')).read()
    assert '| ft |' in report_text and 'ΔF1 vs ft_lq' in report_text
    assert osp.getsize(osp.join(work, 'results_f1.png')) > 0
    assert '0 run(s) to do, 8 already' in run_tool(*common, '--dry-run')
