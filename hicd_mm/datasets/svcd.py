"""SV-CD (season-varying CDD of Lebedev et al.): ``{split}/A``, ``{split}/B``, ``{split}/OUT``."""
from hicd_mm.registry import DATASETS
from .base_cd import BaseCDDataset


@DATASETS.register_module()
class SVCDDataset(BaseCDDataset):
    """SV-CD: 256x256 jpg pairs with jpg labels.

    The labels are JPEG-compressed, so they contain values other than 0/255 near edges; they are
    thresholded at 128 (``format_seg_map='threshold'``) instead of being checked strictly.
    """

    def __init__(self, img_suffix='.jpg', seg_map_suffix='.jpg', format_seg_map='threshold',
                 data_prefix=None, **kwargs) -> None:
        prefix = dict(img_path_from='A', img_path_to='B', seg_map_path='OUT')
        prefix.update(data_prefix or {})
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         format_seg_map=format_seg_map, data_prefix=prefix, **kwargs)
