"""A generic change-detection folder dataset with configurable sub-folders and suffixes."""
from typing import Optional, Tuple, Union

from hicd_mm.registry import DATASETS
from .base_cd import BaseCDDataset


@DATASETS.register_module()
class CDFolderDataset(BaseCDDataset):
    """Any ``{split}/<a_dir>, <b_dir>, <label_dir>`` layout.

    Args:
        split (str): Split folder below ``data_root`` (``''`` when there is none).
        a_dir (str): Sub-folder of the t1 images.
        b_dir (str): Sub-folder of the t2 images.
        label_dir (str | None): Sub-folder of the change labels (``None``: unlabelled).
        img_suffix (str | tuple[str]): Image suffix(es), e.g. ``('.png', '.jpg', '.tif')``.
        seg_map_suffix (str): Label suffix.
        **kwargs: Passed to :class:`BaseCDDataset`.
    """

    def __init__(self,
                 split: str = '',
                 a_dir: str = 'A',
                 b_dir: str = 'B',
                 label_dir: Optional[str] = 'label',
                 img_suffix: Union[str, Tuple[str, ...]] = ('.png', '.jpg', '.tif'),
                 seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        join = lambda sub: f'{split}/{sub}' if split else sub  # noqa: E731
        prefix = dict(img_path_from=join(a_dir), img_path_to=join(b_dir),
                      seg_map_path=join(label_dir) if label_dir else '')
        super().__init__(data_prefix=prefix, img_suffix=img_suffix,
                         seg_map_suffix=seg_map_suffix, **kwargs)
