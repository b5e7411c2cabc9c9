"""Packing the high-quality copy of a pair as its own field, with the host's own packer."""
import copy
from typing import Union

import torch
from mmcv.transforms import BaseTransform

from hicd_mm.registry import TRANSFORMS

HQ_RESULTS_KEY = 'img_hq'
HQ_INPUTS_KEY = 'inputs_hq'


@TRANSFORMS.register_module()
class PackHQPair(BaseTransform):
    """Run a host packing step on the LQ pair and again on its HQ copy (``inputs_hq``).

    The last step of a HiCD training pipeline: ``DegradeImage(keep_hq=True)`` right before it
    stored the untouched pair in ``results['img_hq']``. Packers that keep only the keys they
    know (Open-CD's ``MultiImgPackSegInputs``) would drop it, so this step wraps the host's
    packer: its output is the packer's own (``inputs``, ``data_samples``) plus ``inputs_hq``,
    the HQ pair packed by the same packer, which the student's data preprocessor then treats
    exactly like ``inputs`` (:class:`~hicd_mm.models.HQPairDataPreprocessor`) and which reaches
    ``HiCDDistiller.forward(inputs_hq=...)`` by name.

    A HiCD config replaces the host's packing step with it, e.g.::

        pipeline=[*_base_.train_dataloader.dataset.pipeline[:-1],
                  _base_.train_degradation,      # hicd_mm.DegradeImage(keep_hq=True)
                  dict(type='hicd_mm.PackHQPair',
                       packer=_base_.train_dataloader.dataset.pipeline[-1])]

    Args:
        packer (dict | callable): The host's packing transform (its type resolves in the
            config's default scope, e.g. Open-CD's ``MultiImgPackSegInputs``).
    """

    def __init__(self, packer: Union[dict, BaseTransform]) -> None:
        self.packer = TRANSFORMS.build(packer) if isinstance(packer, dict) else packer
        if not callable(self.packer):
            raise TypeError(f'PackHQPair: packer must be a transform config, got {packer!r}')

    def transform(self, results: dict) -> dict:
        if HQ_RESULTS_KEY not in results:
            raise KeyError(
                "PackHQPair: results has no 'img_hq' (the high-quality copy of the pair). Put "
                "dict(type='hicd_mm.DegradeImage', ..., keep_hq=True) in the pipeline right "
                'before this packing step (after the augmentations)')
        hq_results = copy.copy(results)
        hq_results['img'] = results[HQ_RESULTS_KEY]
        packed = self.packer(results)
        hq_inputs = self.packer(hq_results)['inputs']
        lq_inputs = packed['inputs']
        if not isinstance(hq_inputs, torch.Tensor) or hq_inputs.shape != lq_inputs.shape:
            raise RuntimeError(
                f'PackHQPair: the packed HQ pair has shape {tuple(getattr(hq_inputs, "shape", ()))}'
                f', the LQ pair {tuple(lq_inputs.shape)}; the degradation must keep the size')
        packed[HQ_INPUTS_KEY] = hq_inputs
        return packed

    def __repr__(self) -> str:
        return f'{type(self).__name__}(packer={self.packer!r})'
