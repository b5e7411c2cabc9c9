"""ChangeBalancedSampler: images with changes drawn more often when they are rare."""
import itertools
import os.path as osp

import numpy as np
import pytest
from mmengine.dataset import InfiniteSampler

from hicd_mm.datasets import ChangeBalancedSampler, LEVIRCDDataset
from hicd_mm.datasets.samplers import change_repeat_factors, image_has_change
from hicd_mm.registry import DATA_SAMPLERS
from hicd_mm.utils import register_all_modules
from tests.conftest import write_pair


def make_dataset(root, n_changed, n_unchanged):
    rng = np.random.default_rng(0)
    for i in range(n_changed + n_unchanged):
        values = (0, 255) if i < n_changed else (0,)
        write_pair(osp.join(root, 'train'), f'img_{i:03d}', (16, 16), rng, label_values=values)
    return LEVIRCDDataset(
        data_root=root, pipeline=[],
        data_prefix=dict(img_path_from='train/A', img_path_to='train/B',
                         seg_map_path='train/label'))


def changed_stems(dataset, n_changed):
    return {i for i in range(len(dataset))
            if osp.basename(dataset.get_data_info(i)['seg_map_path']) < f'img_{n_changed:03d}'}


def test_repeat_factors_reach_the_target_share():
    flags = [True] * 2 + [False] * 8
    factors = change_repeat_factors(flags, 0.5)
    assert factors[:2] == pytest.approx([4.0, 4.0]) and factors[2:] == pytest.approx([1.0] * 8)
    share = factors[:2].sum() / factors.sum()
    assert share == pytest.approx(0.5)
    assert change_repeat_factors(flags, 0.2) == pytest.approx([1.0] * 10)  # f = share: plain
    assert change_repeat_factors([False] * 4, 0.5) == pytest.approx([1.0] * 4)
    assert change_repeat_factors([True] * 4, 0.5) == pytest.approx([1.0] * 4)
    rng = np.random.default_rng(1)
    for _ in range(20):  # any fraction below the share: the share is reached exactly
        flags = rng.random(50) < rng.uniform(0.02, 0.3)
        if flags.any():
            factors = change_repeat_factors(flags, 0.4)
            assert factors[flags].sum() / factors.sum() == pytest.approx(
                max(0.4, flags.mean()))


def test_sampler_draws_changed_images_at_the_target_share(tmp_path):
    dataset = make_dataset(str(tmp_path), 2, 8)
    changed = changed_stems(dataset, 2)
    assert [image_has_change(dataset.get_data_info(i)) for i in range(10)].count(True) == 2
    sampler = ChangeBalancedSampler(dataset, changed_share=0.5, seed=3)
    draws = list(itertools.islice(iter(sampler), 4000))
    share = np.mean([i in changed for i in draws])
    assert share == pytest.approx(0.5, abs=0.03)
    counts = np.bincount(draws, minlength=10)
    assert counts.min() > 0  # every image is still drawn
    again = list(itertools.islice(iter(ChangeBalancedSampler(dataset, 0.5, seed=3)), 200))
    assert again == draws[:200]
    other = list(itertools.islice(iter(ChangeBalancedSampler(dataset, 0.5, seed=4)), 200))
    assert other != draws[:200]


def test_sampler_is_plain_shuffling_when_changes_are_common(tmp_path):
    dataset = make_dataset(str(tmp_path), 6, 4)
    draws = list(itertools.islice(iter(ChangeBalancedSampler(dataset, 0.5, seed=0)), 30))
    for start in range(0, 30, 10):  # each pass is a permutation of the ten images
        assert sorted(draws[start:start + 10]) == list(range(10))
    assert draws == list(itertools.islice(iter(InfiniteSampler(dataset, seed=0)), 30))


def test_sampler_builds_from_config_and_rejects_bad_arguments(tmp_path):
    register_all_modules(init_default_scope=True)
    dataset = make_dataset(str(tmp_path), 1, 3)
    sampler = DATA_SAMPLERS.build(dict(type='ChangeBalancedSampler', changed_share=0.5, seed=0),
                                  default_args=dict(dataset=dataset))
    assert sampler.repeat_factors == pytest.approx([3.0, 1.0, 1.0, 1.0])
    for share in (0, 1, 1.5):
        with pytest.raises(ValueError, match='changed_share'):
            ChangeBalancedSampler(dataset, changed_share=share)
    with pytest.raises(ValueError, match='shuffle=False'):
        ChangeBalancedSampler(dataset, shuffle=False)

    class NoFormat:
        def __len__(self):
            return 1

        def get_data_info(self, i):
            return dict(seg_map_path='x.png')

    with pytest.raises(KeyError, match='format_seg_map'):
        ChangeBalancedSampler(NoFormat())
