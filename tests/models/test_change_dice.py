"""ChangeDiceLoss against a naive per-pixel loop, and its degenerate cases."""
import pytest
import torch
from mmseg.registry import MODELS as MMSEG_MODELS

from hicd_mm.registry import MODELS


def naive_change_dice(logits, label, weight=None, smooth=1.0, ignore_index=255):
    n, _, h, w = logits.shape
    inter = pred_sum = target_sum = 0.0
    for b in range(n):
        for i in range(h):
            for j in range(w):
                y = int(label[b, i, j])
                if y == ignore_index:
                    continue
                e = torch.exp(logits[b, :, i, j] - logits[b, :, i, j].max())
                p = float(e[1] / e.sum())
                wt = 1.0 if weight is None else float(weight[b, i, j])
                inter += wt * p * (y == 1)
                pred_sum += wt * p
                target_sum += wt * (y == 1)
    return 1 - (2 * inter + smooth) / (pred_sum + target_sum + smooth)


def random_case(seed, n=2, h=6, w=5):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 2, h, w, generator=g, dtype=torch.float64)
    label = torch.randint(0, 2, (n, h, w), generator=g)
    label[torch.rand(n, h, w, generator=g) < 0.2] = 255
    return logits, label, torch.rand(n, h, w, generator=g, dtype=torch.float64)


@pytest.mark.parametrize('seed', range(3))
def test_matches_naive_reference(seed):
    logits, label, pixel_w = random_case(seed)
    loss = MODELS.build(dict(type='ChangeDiceLoss', loss_weight=0.5, smooth=0.5))
    assert loss.loss_name == 'loss_dice'
    ref = naive_change_dice(logits, label, smooth=0.5)
    assert abs(float(loss(logits, label, ignore_index=255)) - 0.5 * ref) < 1e-10
    ref_w = naive_change_dice(logits, label, weight=pixel_w, smooth=0.5)
    assert abs(float(loss(logits, label, weight=pixel_w)) - 0.5 * ref_w) < 1e-10


def test_missing_every_change_costs_almost_one_unlike_mmseg_dice():
    # 5 % changed pixels, a confident "no change" everywhere: the failure mode it guards against.
    label = torch.zeros(2, 20, 20, dtype=torch.long)
    label[:, :2, :10] = 1
    logits = torch.zeros(2, 2, 20, 20)
    logits[:, 0] = 6.0
    ours = MODELS.build(dict(type='ChangeDiceLoss'))(logits, label)
    mmseg_dice = MMSEG_MODELS.build(dict(type='DiceLoss', use_sigmoid=False))(logits, label)
    assert ours > 0.9
    assert mmseg_dice < 0.1


def test_perfect_and_degenerate_batches_are_finite():
    loss = MODELS.build(dict(type='ChangeDiceLoss'))
    label = torch.zeros(1, 4, 4, dtype=torch.long)
    label[0, :2] = 1
    perfect = torch.stack([1 - label, label], dim=1).double() * 50
    assert float(loss(perfect, label)) < 1e-6
    no_change = torch.zeros(1, 4, 4, dtype=torch.long)
    logits = torch.zeros(1, 2, 4, 4, requires_grad=True)
    value = loss(logits, no_change)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    all_ignored = torch.full((1, 4, 4), 255, dtype=torch.long)
    value = loss(logits, all_ignored)
    assert value.item() == 0.0


def test_gradient_raises_change_logits_on_changed_pixels():
    label = torch.zeros(1, 8, 8, dtype=torch.long)
    label[0, 2:4, 2:4] = 1
    logits = torch.zeros(1, 2, 8, 8)
    logits[:, 0] = 3.0
    logits.requires_grad_(True)
    MODELS.build(dict(type='ChangeDiceLoss'))(logits, label).backward()
    # gradient descent lowers the loss by raising the change logit where the label is 1
    assert (logits.grad[0, 1][label[0] == 1] < 0).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match='smooth'):
        MODELS.build(dict(type='ChangeDiceLoss', smooth=0))
    loss = MODELS.build(dict(type='ChangeDiceLoss', change_index=2))
    with pytest.raises(ValueError, match='change_index 2'):
        loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match='spatial size'):
        MODELS.build(dict(type='ChangeDiceLoss'))(
            torch.zeros(1, 2, 4, 4), torch.zeros(1, 5, 4, dtype=torch.long))
