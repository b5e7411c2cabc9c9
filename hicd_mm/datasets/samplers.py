"""Training samplers for change detection with rare changes."""
from typing import Iterator, List, Optional

import numpy as np
import torch
from mmengine.dataset import InfiniteSampler
from mmengine.logging import print_log

from hicd_mm.registry import DATA_SAMPLERS
from .transforms.loading import format_change_label, read_image


def image_has_change(data_info: dict, ignore_index: int = 255) -> bool:
    """Whether a sample's change label holds at least one changed pixel.

    Args:
        data_info (dict): The dataset's record of the sample (``seg_map_path`` and
            ``format_seg_map``, as hicd_mm's datasets write them).
        ignore_index (int): Label value that is neither changed nor unchanged.

    Returns:
        bool: True when some pixel is changed.
    """
    path = data_info.get('seg_map_path')
    if path is None or 'format_seg_map' not in data_info:
        raise KeyError(
            f'ChangeBalancedSampler needs "seg_map_path" and "format_seg_map" in every data '
            f'info (hicd_mm datasets write both); got keys {sorted(data_info)}')
    label = format_change_label(read_image(path, 'grayscale'), data_info['format_seg_map'],
                                path, data_info.get('ignore_index', ignore_index))
    return bool(np.any(label == 1))


def change_repeat_factors(has_change: List[bool], changed_share: float) -> np.ndarray:
    """Per-image repeat factors that raise the share of images with changes to a target.

    With ``f`` the fraction of images that contain a change, every such image is repeated
    ``r = share (1 - f) / ((1 - share) f)`` times (at least 1) and every other image once, so
    that images with changes make up ``share`` of the draws. Where ``f >= share`` (or no image,
    or every image, has a change) every factor is 1 and sampling is plain shuffling.

    Args:
        has_change (list[bool]): Per image, whether it contains a changed pixel.
        changed_share (float): Target share in ``(0, 1)``.

    Returns:
        np.ndarray: float64 repeat factor per image.
    """
    flags = np.asarray(has_change, dtype=bool)
    factors = np.ones(len(flags))
    fraction = flags.mean() if len(flags) else 0.0
    if 0 < fraction < changed_share:
        factors[flags] = changed_share * (1 - fraction) / ((1 - changed_share) * fraction)
    return factors


@DATA_SAMPLERS.register_module()
class ChangeBalancedSampler(InfiniteSampler):
    """Infinite sampler that draws images with changes more often when they are rare.

    Image-level repeat-factor sampling (the scheme of LVIS, Gupta et al., CVPR 2019, with the
    two "classes" change present / absent): each pass over the data repeats every image that
    contains a changed pixel by :func:`change_repeat_factors` (stochastic rounding of the
    fractional part, per pass), shuffles, and yields indices without end, sliced by rank like
    mmengine's ``InfiniteSampler``. When changes are common (``f >= changed_share``) it yields
    exactly ``InfiniteSampler``'s order for the same seed. Labels are read once at construction.

    Args:
        dataset: A dataset whose ``get_data_info(i)`` holds ``seg_map_path`` and
            ``format_seg_map`` (hicd_mm's change-detection datasets).
        changed_share (float): Target share of images with changes among the draws, in
            ``(0, 1)``. Default: 0.5.
        shuffle (bool): Must be True (a repeated, unshuffled order would put the repeats side
            by side).
        seed (int, optional): Random seed; None: synchronised across ranks as mmengine does.
    """

    def __init__(self, dataset, changed_share: float = 0.5, shuffle: bool = True,
                 seed: Optional[int] = None) -> None:
        if not 0 < changed_share < 1:
            raise ValueError(f'ChangeBalancedSampler: changed_share must be in (0, 1), got '
                             f'{changed_share}')
        if not shuffle:
            raise ValueError('ChangeBalancedSampler: shuffle=False is not supported (repeats '
                             'would follow each other); use InfiniteSampler')
        super().__init__(dataset, shuffle=True, seed=seed)
        has_change = [image_has_change(dataset.get_data_info(i)) for i in range(len(dataset))]
        self.repeat_factors = change_repeat_factors(has_change, changed_share)
        with_change = int(sum(has_change))
        print_log(f'ChangeBalancedSampler: {with_change}/{len(has_change)} images contain a '
                  f'change; each is drawn {self.repeat_factors.max():.2f}x '
                  f'(target share {changed_share})', logger='current')

    def _infinite_indices(self) -> Iterator[int]:
        if np.all(self.repeat_factors == 1):  # nothing to rebalance: InfiniteSampler's order
            yield from super()._infinite_indices()
            return
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        factors = torch.from_numpy(self.repeat_factors)
        whole = factors.floor()
        while True:
            draw = torch.rand(len(factors), generator=generator, dtype=torch.float64)
            counts = (whole + (draw < factors - whole)).long()
            indices = torch.repeat_interleave(torch.arange(len(counts)), counts)
            yield from indices[torch.randperm(len(indices), generator=generator)].tolist()
