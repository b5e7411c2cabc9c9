"""Student-gradient geometry of the distillation terms on a small FC-Siam-diff student.

For every distillation term the gradient of its loss w.r.t. the student's parameters is taken
on the same batches; the script prints the cosine of every pair of terms, each term's gradient
norm relative to the task loss's, and the norm ratio and cosine of the summed distillation
gradient against the task gradient. Two term sets are compared:

* ``before``: the five HiCD terms with the global correlation over the whole ``BN x BN``
  batch affinity (``blocks='all'``, the definition whose diagonal blocks repeat the self term);
* ``after``: the five terms with the cross-image global correlation (off-diagonal blocks only,
  the default now), plus the change-aware options: class-balanced ``chg_self``
  (``class_balance='rows'``), a CIRKD-style cross-image KL term on the change feature
  (``tau=0.1``, 256 sampled positions per image) and response KD on the change logits;
* ``pool`` (``--sets pool``, ``--pool-check N``): the two change-feature terms on the full map
  and average-pooled to ``N`` per side; the cosine of each term with its pooled twin says how
  much of its gradient direction pooling keeps (the cost/fidelity question of
  ``docs/speed.md``).

Measured at two student states: at initialisation and after ``--student-iters`` task-only
iterations on LQ pairs. The teacher is the same detector trained ``--teacher-iters``
iterations on HQ pairs of the synthetic generator; B is degraded by ``multi`` x4.

Usage::

    python tools/analysis/term_gradient_cosines.py --size 64 --batch 8 --teacher-iters 60 \\
        --student-iters 60 --out work_dirs/term_gradient_cosines.json
"""
import argparse
import copy
import itertools
import json
import os
import os.path as osp
import sys
from typing import Dict, List

import numpy as np
import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)

from mmengine.config import Config  # noqa: E402
from mmengine.structures import PixelData  # noqa: E402
from mmseg.structures import SegDataSample  # noqa: E402

from hicd_mm.datasets.degradations import degrade  # noqa: E402
from hicd_mm.datasets.synthetic import make_synthetic_pair  # noqa: E402
from hicd_mm.models.distillers import default_hicd_terms  # noqa: E402
from hicd_mm.registry import MODELS  # noqa: E402
from hicd_mm.utils import register_all_modules  # noqa: E402

DETECTOR = 'configs/fc_siam_diff/fc_siam_diff_cpu-1k_synthetic.py'


def term_sets(pool_check: int = 32) -> Dict[str, dict]:
    """The ``before``, ``after`` and ``pool`` term sets (see the module docstring)."""
    before = default_hicd_terms()
    for name in ('sem_global', 'chg_global'):
        before[name]['loss']['blocks'] = 'all'
    after = default_hicd_terms()
    after['chg_self_cb'] = dict(feature='change', loss=dict(
        type='SelfCorrelationLoss', pool_size=64, class_balance='rows'))
    after['chg_global_kl'] = dict(feature='change', loss=dict(
        type='GlobalCorrelationLoss', pool_size=64, distance='kl', tau=0.1,
        sample_pixels=256))
    after['chg_kd'] = dict(feature='change_logits', loss=dict(type='ResponseKDLoss', tau=1.0))
    pool = {}
    for name in ('chg_self', 'chg_global'):
        full = copy.deepcopy(after[name])
        full['loss']['pool_size'] = None
        pooled = copy.deepcopy(full)
        pooled['loss']['pool_size'] = pool_check
        pool[name], pool[f'{name}_pool{pool_check}'] = full, pooled
    return dict(before=before, after=after, pool=pool)


def make_data(count: int, size: int, seed: int) -> List[dict]:
    """``count`` synthetic pairs with a ``multi`` x4 degraded copy of B."""
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(count):
        img_a, img_b, label = make_synthetic_pair(size, rng)
        lq_b, _ = degrade(img_b, 'multi', rng, scale=4)
        items.append(dict(a=img_a, b=img_b, b_lq=lq_b, label=(label > 0).astype(np.int64)))
    return items


def to_batch(items: List[dict], with_hq: bool, lq: bool) -> dict:
    """A data batch in the form the data preprocessor expects."""
    def pair(a: np.ndarray, b: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.concatenate([a, b], axis=2)).permute(2, 0, 1)

    inputs, inputs_hq, samples = [], [], []
    for item in items:
        inputs.append(pair(item['a'], item['b_lq'] if lq else item['b']))
        inputs_hq.append(pair(item['a'], item['b']))
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(item['label'])[None])
        sample.set_metainfo(dict(ori_shape=item['label'].shape,
                                 img_shape=item['label'].shape))
        samples.append(sample)
    batch = dict(inputs=inputs, data_samples=samples)
    if with_hq:
        batch['inputs_hq'] = inputs_hq  # the HQ pair, its own field (HQPairDataPreprocessor)
    return batch


def train(model: torch.nn.Module, items: List[dict], iters: int, batch: int, lq: bool,
          seed: int) -> None:
    """Task-only training with AdamW 2e-3 (the project's CPU schedule LR)."""
    model.train()
    optim = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    rng = np.random.default_rng(seed)
    for _ in range(iters):
        chosen = [items[i] for i in rng.choice(len(items), batch, replace=False)]
        data = model.data_preprocessor(to_batch(chosen, False, lq), True)
        loss, _ = model.parse_losses(model.loss(data['inputs'], data['data_samples']))
        optim.zero_grad()
        loss.backward()
        optim.step()


def flat_grad(value: torch.Tensor, params: List[torch.nn.Parameter]) -> torch.Tensor:
    grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten()
                      for g, p in zip(grads, params)])


def measure(student_state: dict, teacher_state: dict, detector_cfg: dict, terms: dict,
            batches: List[List[dict]], seed: int) -> dict:
    """Per-term and task student gradients summed over ``batches``, and their geometry."""
    distiller = MODELS.build(dict(type='HiCDDistiller', student=detector_cfg,
                                  distill_terms=copy.deepcopy(terms),
                                  allow_random_teacher=True))
    distiller.student.load_state_dict(student_state)
    distiller.teacher.load_state_dict(teacher_state)
    distiller.train()
    params = [p for p in distiller.student.parameters() if p.requires_grad]
    grads: Dict[str, torch.Tensor] = {}
    torch.manual_seed(seed)
    for items in batches:
        data = distiller.data_preprocessor(to_batch(items, True, True), True)
        losses = distiller(**data, mode='loss')
        task = sum(v for k, v in losses.items() if 'loss' in k and not k.startswith('distill.'))
        parts = {'task': task}
        parts.update({k[len('distill.loss_'):]: v for k, v in losses.items()
                      if k.startswith('distill.')})
        for name, value in parts.items():
            g = flat_grad(value, params)
            grads[name] = grads[name] + g if name in grads else g
    distill = sum(g for name, g in grads.items() if name != 'task')
    task_norm = grads['task'].norm()
    names = [n for n in grads if n != 'task']

    def cos(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(torch.nn.functional.cosine_similarity(a, b, dim=0))

    return dict(
        norm_over_task={n: float(grads[n].norm() / task_norm) for n in names},
        cosine={f'{a}|{b}': cos(grads[a], grads[b]) for a, b in itertools.combinations(names, 2)},
        cosine_with_task={n: cos(grads[n], grads['task']) for n in names},
        distill_over_task=float(distill.norm() / task_norm),
        distill_task_cosine=cos(distill, grads['task']))


def print_table(title: str, result: dict) -> None:
    print(f'\n## {title}')
    print(f"distill/task gradient-norm ratio {result['distill_over_task']:.2f}, cosine "
          f"{result['distill_task_cosine']:+.3f}")
    print('term: norm/task, cos with task: ' + ', '.join(
        f"{n} {v:.2f} ({result['cosine_with_task'][n]:+.2f})"
        for n, v in result['norm_over_task'].items()))
    for pair, value in result['cosine'].items():
        print(f'  cos {pair:32s} {value:+.3f}')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=64, help='crop side (pixels)')
    parser.add_argument('--pairs', type=int, default=32, help='synthetic pairs generated')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--batches', type=int, default=2,
                        help='batches whose gradients are summed per measurement')
    parser.add_argument('--teacher-iters', type=int, default=60)
    parser.add_argument('--student-iters', type=int, default=60,
                        help='task-only LQ iterations before the second measurement')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--sets', nargs='+', default=['before', 'after'],
                        choices=['before', 'after', 'pool'], help='term sets measured')
    parser.add_argument('--pool-check', type=int, default=32,
                        help='pool size of the pooled twins in the "pool" set')
    parser.add_argument('--out', help='write the results as JSON here')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.batch > args.pairs:
        raise SystemExit(f'--batch {args.batch} exceeds --pairs {args.pairs}')
    torch.set_num_threads(args.threads)
    register_all_modules(init_default_scope=True)
    detector_cfg = Config.fromfile(osp.join(REPO_ROOT, DETECTOR)).model
    items = make_data(args.pairs, args.size, args.seed)
    torch.manual_seed(args.seed)
    teacher = MODELS.build(detector_cfg)
    train(teacher, items, args.teacher_iters, args.batch, lq=False, seed=args.seed)
    torch.manual_seed(args.seed + 1)
    student = MODELS.build(detector_cfg)
    rng = np.random.default_rng(args.seed + 2)
    batches = [[items[i] for i in rng.choice(args.pairs, args.batch, replace=False)]
               for _ in range(args.batches)]
    states = {'init': copy.deepcopy(student.state_dict())}
    train(student, items, args.student_iters, args.batch, lq=True, seed=args.seed + 3)
    states[f'after {args.student_iters} task-only LQ iterations'] = student.state_dict()
    results = {}
    for state_name, state in states.items():
        for set_name, terms in term_sets(args.pool_check).items():
            if set_name not in args.sets:
                continue
            key = f'{set_name}, student at {state_name}'
            results[key] = measure(state, teacher.state_dict(), detector_cfg, terms, batches,
                                   args.seed)
            print_table(key, results[key])
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(args=vars(args), results=results), f, indent=2)


if __name__ == '__main__':
    main()
