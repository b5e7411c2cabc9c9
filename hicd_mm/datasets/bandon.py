"""BANDON (Pang et al., 2023), binary change detection from its list-file layout."""
from hicd_mm.registry import DATASETS
from .base_cd import BaseCDDataset


@DATASETS.register_module()
class BANDONDataset(BaseCDDataset):
    """BANDON, binary change only.

    Layout: images in ``{split}/imgs/<city>/<t1|t2|t3>/<name>.jpg``, binary labels in
    ``{split}/labels_unch0ch1ig255/<city>/<t1VSt2|...>/<name>.png`` (already 0/1 with 255 =
    ignore, ``format_seg_map=None``) or ``{split}/labels/...`` (0/255, use ``'to_binary'``).
    ``ann_file`` lists one sample per line as space-separated stems relative to the image and
    label folders: ``city/t1/name city/t2/name city/t1VSt2/name`` (a 5-stem line, as written
    for semantic change detection, is accepted; the two semantic stems are ignored).
    """

    def __init__(self, img_suffix='.jpg', seg_map_suffix='.png', format_seg_map=None,
                 data_prefix=None, **kwargs) -> None:
        prefix = dict(img_path_from='train/imgs', img_path_to='train/imgs',
                      seg_map_path='train/labels_unch0ch1ig255')
        prefix.update(data_prefix or {})
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         format_seg_map=format_seg_map, data_prefix=prefix, **kwargs)

    def load_data_list(self):
        if not self.ann_file:
            raise ValueError(f'{type(self).__name__} needs ann_file (a list of '
                             '"from to label" stems per line); none was given')
        return super().load_data_list()
