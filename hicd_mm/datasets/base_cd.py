"""Base class for bi-temporal binary change-detection datasets laid out as folders."""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmengine.dataset import BaseDataset
from mmengine.fileio import list_from_file

from hicd_mm.registry import DATASETS

DEFAULT_PREFIX = dict(img_path_from='A', img_path_to='B', seg_map_path='label')


@DATASETS.register_module()
class BaseCDDataset(BaseDataset):
    """A binary change-detection dataset: image A, image B and a change label per sample.

    Follows the Open-CD data contract: every data info holds ``img_path = [path_t1, path_t2]``
    (a list of two), ``seg_map_path``, ``format_seg_map`` and ``seg_fields=[]``.

    Samples are found either from ``ann_file`` (one sample stem per line) or by listing the
    ``img_path_from`` folder. Loading never writes into the dataset folder.

    Args:
        data_root (str): Root folder of the dataset (split folders live below it).
        data_prefix (dict): Folders relative to ``data_root`` with keys ``img_path_from``,
            ``img_path_to`` and ``seg_map_path``.
        ann_file (str): Optional list file of sample stems (relative to ``data_root``).
        img_suffix (str | tuple[str]): Suffix(es) of the image files.
        seg_map_suffix (str): Suffix of the label files.
        format_seg_map (str | None): How labels are turned into 0/1/255: ``'to_binary'``
            (strict: only 0/1 or 0/255 are allowed), ``'threshold'`` (>=128 is change; for
            JPEG-compressed labels) or ``None`` (already 0/1 with 255 = ignore).
        ignore_index (int): Label value that is ignored by losses and metrics.
        **kwargs: Passed to :class:`mmengine.dataset.BaseDataset`.
    """

    METAINFO = dict(classes=('unchanged', 'changed'), palette=[[0, 0, 0], [255, 255, 255]])

    def __init__(self,
                 data_root: str = '',
                 data_prefix: Optional[Dict[str, str]] = None,
                 ann_file: str = '',
                 img_suffix: Union[str, Tuple[str, ...]] = '.png',
                 seg_map_suffix: str = '.png',
                 format_seg_map: Optional[str] = 'to_binary',
                 ignore_index: int = 255,
                 **kwargs) -> None:
        if format_seg_map not in ('to_binary', 'threshold', None):
            raise ValueError(f'format_seg_map must be "to_binary", "threshold" or None, '
                             f'got {format_seg_map!r}')
        self.img_suffix = (img_suffix, ) if isinstance(img_suffix, str) else tuple(img_suffix)
        self.seg_map_suffix = seg_map_suffix
        self.format_seg_map = format_seg_map
        self.ignore_index = ignore_index
        prefix = dict(DEFAULT_PREFIX)
        prefix.update(data_prefix or {})
        # mmengine joins an empty prefix with data_root, so remember whether labels exist.
        self.labelled = bool(prefix.get('seg_map_path'))
        super().__init__(data_root=data_root, data_prefix=prefix, ann_file=ann_file, **kwargs)

    def _folder(self, key: str) -> str:
        folder = self.data_prefix.get(key, '')
        if not osp.isdir(folder):
            raise FileNotFoundError(
                f'{type(self).__name__}: folder for {key!r} not found: {folder!r}. Expected the '
                f'layout {self.data_root or "."}/<split>/{{A,B,label}} (see data_prefix).')
        return folder

    def _list_stems(self, folder: str) -> List[str]:
        """Stems (paths relative to ``folder`` without suffix) of the images in ``folder``."""
        from mmengine.utils import scandir
        stems = []
        for rel in scandir(folder, suffix=self.img_suffix, recursive=True):
            stems.append(self._strip_suffix(rel))
        return sorted(stems)

    def _strip_suffix(self, name: str) -> str:
        for suffix in self.img_suffix:
            if suffix and name.endswith(suffix):
                return name[:-len(suffix)]
        return name

    def _image_file(self, folder: str, stem: str) -> str:
        """The existing image file ``folder/stem<suffix>`` (first suffix that exists)."""
        for suffix in self.img_suffix:
            path = osp.join(folder, stem + suffix)
            if osp.isfile(path):
                return path
        return osp.join(folder, stem + self.img_suffix[0])

    def _read_stems(self) -> List[Sequence[str]]:
        """One tuple per sample: ``(stem,)`` or ``(stem_from, stem_to, stem_label)``."""
        if self.ann_file:
            if not osp.isfile(self.ann_file):
                raise FileNotFoundError(
                    f'{type(self).__name__}: ann_file not found: {self.ann_file!r}')
            lines = [line.split() for line in list_from_file(self.ann_file) if line.strip()]
            for lineno, parts in enumerate(lines, 1):
                if len(parts) not in (1, 3, 5):
                    raise ValueError(
                        f'{self.ann_file}:{lineno}: expected 1 stem, or 3 (from, to, label) or '
                        f'5 stems per line, got {len(parts)}: {" ".join(parts)!r}')
            return lines
        return [(stem, ) for stem in self._list_stems(self._folder('img_path_from'))]

    def load_data_list(self) -> List[dict]:
        """Collect the samples and check that every file of every pair is present."""
        dir_from = self._folder('img_path_from')
        dir_to = self._folder('img_path_to')
        dir_label = self.data_prefix.get('seg_map_path', '')
        has_labels = self.labelled and (not self.test_mode or osp.isdir(dir_label))
        if has_labels:
            self._folder('seg_map_path')
        entries = self._read_stems()
        if not entries:
            raise ValueError(
                f'{type(self).__name__}: no samples found in {dir_from!r} '
                f'(suffix {self.img_suffix}); is the folder empty or laid out differently?')
        if not self.ann_file:
            self._check_same_listing(dir_from, dir_to, [e[0] for e in entries])
        data_list = []
        for parts in entries:
            stem_from, stem_to, stem_label = (parts[0], ) * 3 if len(parts) == 1 else parts[:3]
            info = dict(
                img_path=[self._image_file(dir_from, stem_from),
                          self._image_file(dir_to, stem_to)],
                seg_map_path=None,
                format_seg_map=self.format_seg_map,
                ignore_index=self.ignore_index,
                reduce_zero_label=False,
                seg_fields=[])
            for path in info['img_path']:
                if not osp.isfile(path):
                    raise FileNotFoundError(
                        f'{type(self).__name__}: image of the pair missing: {path!r} '
                        f'(partner of sample {stem_from!r})')
            if has_labels:
                label = osp.join(dir_label, stem_label + self.seg_map_suffix)
                if not osp.isfile(label):
                    raise FileNotFoundError(
                        f'{type(self).__name__}: change label missing: {label!r} '
                        f'(for sample {stem_from!r})')
                info['seg_map_path'] = label
            data_list.append(info)
        return data_list

    def _check_same_listing(self, dir_from: str, dir_to: str, stems_from: List[str]) -> None:
        stems_to = set(self._list_stems(dir_to))
        missing = sorted(set(stems_from) - stems_to)
        if missing:
            raise FileNotFoundError(
                f'{type(self).__name__}: {len(missing)} image(s) of {dir_from!r} have no partner '
                f'in {dir_to!r}, e.g. {self._image_file(dir_to, missing[0])!r}')
        extra = sorted(stems_to - set(stems_from))
        if extra:
            raise FileNotFoundError(
                f'{type(self).__name__}: {len(extra)} image(s) of {dir_to!r} have no partner '
                f'in {dir_from!r}, e.g. {self._image_file(dir_from, extra[0])!r}')
