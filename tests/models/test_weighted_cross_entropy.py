"""WeightedCrossEntropyLoss against PyTorch's weighted cross entropy on random inputs."""
import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS as MMSEG_MODELS

from hicd_mm.registry import MODELS


def random_case(seed, n=2, k=3, h=9, w=7, ignore_frac=0.3):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, h, w, generator=g, dtype=torch.float64)
    label = torch.randint(0, k, (n, h, w), generator=g)
    label[torch.rand(n, h, w, generator=g) < ignore_frac] = 255
    return logits, label


@pytest.mark.parametrize('seed', range(4))
def test_matches_torch_weighted_mean(seed):
    logits, label = random_case(seed)
    cw = [0.5, 1.0, 3.0]
    loss = MODELS.build(dict(type='WeightedCrossEntropyLoss', class_weight=cw, loss_weight=2.0))
    ref = F.cross_entropy(logits, label, weight=torch.tensor(cw, dtype=torch.float64),
                          ignore_index=255)
    assert torch.allclose(loss(logits, label, ignore_index=255), 2.0 * ref, rtol=1e-10)


def test_without_class_weight_matches_torch_and_mmseg():
    logits, label = random_case(7, ignore_frac=0.0)
    loss = MODELS.build(dict(type='WeightedCrossEntropyLoss'))
    ref = F.cross_entropy(logits, label)
    mmseg_ce = MMSEG_MODELS.build(dict(type='CrossEntropyLoss'))
    assert torch.allclose(loss(logits, label), ref)
    assert torch.allclose(loss(logits, label), mmseg_ce(logits, label, ignore_index=255))


def test_per_pixel_weight():
    logits, label = random_case(3)
    pixel_w = torch.rand(label.shape, dtype=torch.float64)
    loss = MODELS.build(dict(type='WeightedCrossEntropyLoss', class_weight=[1.0, 2.0, 1.0]))
    valid = label != 255
    safe = torch.where(valid, label, 0)
    cw = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)[safe] * valid
    per = F.cross_entropy(logits, safe, reduction='none')
    expected = (per * cw * pixel_w).sum() / cw.sum()
    assert torch.allclose(loss(logits, label, weight=pixel_w), expected)


def test_all_ignored_is_zero_not_nan_and_differentiable():
    logits = torch.randn(1, 2, 4, 4, requires_grad=True)
    label = torch.full((1, 4, 4), 255)
    out = MODELS.build(dict(type='WeightedCrossEntropyLoss', class_weight=[1, 2]))(logits, label)
    assert out.item() == 0.0
    out.backward()
    assert torch.isfinite(logits.grad).all()


def test_bad_labels_and_weights_are_clear_errors():
    loss = MODELS.build(dict(type='WeightedCrossEntropyLoss', class_weight=[1.0, 2.0]))
    with pytest.raises(ValueError, match=r'labels must be in \[0, 2\) or 255, got \[7\]'):
        loss(torch.zeros(1, 2, 2, 2), torch.tensor([[[0, 7], [1, 0]]]))
    with pytest.raises(ValueError, match='class_weight has 2 entries but the logits have 3'):
        loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match='non-negative'):
        MODELS.build(dict(type='WeightedCrossEntropyLoss', class_weight=[-1.0, 2.0]))
