"""DistillWeightScheduleHook and DistillGradientRatioHook."""
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.model import MMDistributedDataParallel
from torch import nn

from hicd_mm.engine.hooks import (DistillGradientRatioHook, DistillWeightScheduleHook,
                                  distill_weight_scale)
from hicd_mm.registry import HOOKS


class FakeDistiller(nn.Module):
    """Records the scales it is given; two terms."""

    def __init__(self):
        super().__init__()
        self.distill_losses = {'sem_self': [], 'chg_self': []}
        self.calls = []
        self.requested = 0
        self.stats = None

    def set_distill_weight_scale(self, scale, term=None):
        self.calls.append((scale, term))

    def request_gradient_stats(self):
        self.requested += 1
        self.stats = dict(task_grad_norm=2.0, distill_grad_norm=1.0, distill_task_ratio=0.5,
                          distill_task_cosine=0.1)

    def pop_gradient_stats(self):
        stats, self.stats = self.stats, None
        return stats


def fake_runner(model, max_iters=100, name='distill_hooks'):
    return SimpleNamespace(model=model, iter=0, max_iters=max_iters,
                           message_hub=MessageHub.get_instance(name))


def ddp_wrapped(model):
    """A real MMDistributedDataParallel object around ``model`` without a process group."""
    wrapper = MMDistributedDataParallel.__new__(MMDistributedDataParallel)
    nn.Module.__init__(wrapper)
    wrapper.module = model
    return wrapper


def test_schedule_values():
    assert distill_weight_scale(0.7) == 1.0
    assert distill_weight_scale(0.0, 'linear') == 1.0
    assert distill_weight_scale(0.5, 'linear') == pytest.approx(0.5)
    assert distill_weight_scale(0.5, 'linear', floor=0.2) == pytest.approx(0.6)
    assert distill_weight_scale(0.5, 'cosine') == pytest.approx(0.5)
    assert distill_weight_scale(0.25, 'cosine') == pytest.approx(0.5 * (1 + math.cos(
        math.pi / 4)))
    # decay between begin=0.2 and end=0.6, floor afterwards
    assert distill_weight_scale(0.1, 'linear', begin=0.2, end=0.6) == 1.0
    assert distill_weight_scale(0.4, 'linear', begin=0.2, end=0.6) == pytest.approx(0.5)
    assert distill_weight_scale(0.9, 'linear', begin=0.2, end=0.6, floor=0.1) == \
        pytest.approx(0.1)
    # stop_at switches it off, also for a constant schedule
    assert distill_weight_scale(0.49, stop_at=0.5) == 1.0
    assert distill_weight_scale(0.5, stop_at=0.5) == 0.0
    values = [distill_weight_scale(i / 10, 'cosine', floor=0.3) for i in range(11)]
    assert all(a >= b for a, b in zip(values, values[1:])) and values[-1] == pytest.approx(0.3)


@pytest.mark.parametrize('kwargs, key', [
    (dict(schedule='step'), 'schedule'),
    (dict(schedule='linear', begin=0.6, end=0.4), 'end'),
    (dict(schedule='linear', begin=0.5, end=0.5), 'end'),
    (dict(floor=-0.1), 'floor'),
    (dict(floor=1.5), 'floor'),
    (dict(begin=-0.1), 'begin'),
    (dict(begin=1.0), 'begin'),
    (dict(end=1.5), 'end'),
    (dict(stop_at=0), 'stop_at'),
    (dict(stop_at=1.2), 'stop_at'),
    (dict(terms='sem_self'), 'terms'),
])
def test_bad_schedule_is_an_error_at_build_naming_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        HOOKS.build(dict(type='DistillWeightScheduleHook', **kwargs))


def test_schedule_hook_applies_and_logs_the_scale():
    model = FakeDistiller()
    runner = fake_runner(model, max_iters=10, name='schedule_global')
    hook = HOOKS.build(dict(type='DistillWeightScheduleHook', schedule='linear',
                            stop_at=0.8))
    hook.before_train(runner)
    seen = []
    for it in range(10):
        runner.iter = it
        hook.before_train_iter(runner, it)
        seen.append(runner.message_hub.get_scalar('train/distill_weight_scale').current())
    expected = [1 - it / 10 if it < 8 else 0.0 for it in range(10)]
    assert seen == pytest.approx(expected)
    assert [c[0] for c in model.calls] == pytest.approx(expected)
    assert all(term is None for _, term in model.calls)


def test_schedule_hook_per_term_and_through_ddp():
    model = FakeDistiller()
    runner = fake_runner(ddp_wrapped(model), max_iters=4, name='schedule_terms')
    hook = DistillWeightScheduleHook(schedule='cosine', terms=['chg_self'])
    hook.before_train(runner)
    runner.iter = 2
    hook.before_train_iter(runner, 2)
    assert model.calls == [(pytest.approx(0.5), 'chg_self')]
    assert runner.message_hub.get_scalar(
        'train/distill_weight_scale.chg_self').current() == pytest.approx(0.5)
    with pytest.raises(KeyError, match='chg_global'):
        DistillWeightScheduleHook(terms=['chg_global']).before_train(runner)
    with pytest.raises(TypeError, match='HiCDDistiller'):
        DistillWeightScheduleHook().before_train(fake_runner(nn.Linear(1, 1)))


def test_schedule_hook_drives_a_real_distiller():
    from tests.models.test_hicd_distiller import build
    distiller = build()
    runner = fake_runner(distiller, max_iters=4, name='schedule_real')
    hook = DistillWeightScheduleHook(schedule='linear', terms=['sem_cross'])
    runner.iter = 3
    hook.before_train_iter(runner, 3)
    assert [m.loss_weight for m in distiller.distill_losses['sem_cross']] == \
        pytest.approx([0.25] * 4)
    assert distiller.distill_losses['chg_self'][0].loss_weight == 1.0


def test_gradient_ratio_hook_every_n_iterations():
    model = FakeDistiller()
    runner = fake_runner(ddp_wrapped(model), name='grad_ratio')
    hook = HOOKS.build(dict(type='DistillGradientRatioHook', interval=3))
    hook.before_train(runner)
    logged = []
    for it in range(9):
        runner.iter = it
        hook.before_train_iter(runner, it)
        hook.after_train_iter(runner, it)
        logged.append(model.requested)
    assert logged == [0, 0, 1, 1, 1, 2, 2, 2, 3]
    hub = runner.message_hub
    assert hub.get_scalar('train/grad_ratio_distill_task').current() == 0.5
    assert hub.get_scalar('train/grad_cos_distill_task').current() == 0.1
    assert hub.get_scalar('train/grad_norm_task').current() == 2.0
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match='interval'):
            DistillGradientRatioHook(interval=bad)


def test_gradient_ratio_hook_with_a_real_distiller():
    from tests.models.test_hicd_distiller import batch, build
    distiller = build()
    distiller.train()
    runner = fake_runner(distiller, name='grad_ratio_real')
    hook = DistillGradientRatioHook(interval=1)
    hook.before_train_iter(runner, 0)
    distiller(**distiller.data_preprocessor(batch(), True), mode='loss')
    hook.after_train_iter(runner, 0)
    ratio = runner.message_hub.get_scalar('train/grad_ratio_distill_task').current()
    assert math.isfinite(ratio) and ratio > 0
    assert torch.isfinite(torch.tensor(
        runner.message_hub.get_scalar('train/grad_cos_distill_task').current()))
