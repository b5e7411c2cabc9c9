"""LEVIR-CD: ``{split}/A``, ``{split}/B``, ``{split}/label`` with png images and 0/255 labels."""
from hicd_mm.registry import DATASETS
from .base_cd import BaseCDDataset


@DATASETS.register_module()
class LEVIRCDDataset(BaseCDDataset):
    """LEVIR-CD (Chen & Shi, 2020): 1024x1024 png pairs, labels 0/255 mapped to 0/1.

    Example ``data_prefix`` for the test split:
    ``dict(img_path_from='test/A', img_path_to='test/B', seg_map_path='test/label')``.
    """

    def __init__(self, img_suffix='.png', seg_map_suffix='.png', format_seg_map='to_binary',
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         format_seg_map=format_seg_map, **kwargs)
