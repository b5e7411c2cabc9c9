"""Convert a HiCD distiller checkpoint into a plain detector checkpoint.

Example::

    python tools/export_student.py work_dirs/hicd/iter_1000.pth work_dirs/hicd/student.pth
    python tools/test.py configs/fc_siam_diff/fc_siam_diff_cpu-1k_synthetic.py \
        work_dirs/hicd/student.pth
"""
import argparse
import os.path as osp

import torch

import hicd_mm  # noqa: F401  (checkpoint safe globals)
from hicd_mm.models.distillers import student_state_dict


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export the student of a HiCD checkpoint')
    parser.add_argument('checkpoint', help='distiller checkpoint (tools/train.py output)')
    parser.add_argument('out', help='output file for the plain detector checkpoint')
    parser.add_argument('--force', action='store_true', help='overwrite OUT if it exists')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if osp.abspath(args.checkpoint) == osp.abspath(args.out):
        raise SystemExit('OUT must differ from CHECKPOINT (refusing to overwrite the input)')
    if osp.exists(args.out) and not args.force:
        raise SystemExit(f'{args.out} exists; pass --force to overwrite it')
    ckpt = torch.load(args.checkpoint, map_location='cpu')
    state = student_state_dict(ckpt.get('state_dict', ckpt))
    meta = dict(ckpt.get('meta', {}), exported_from=osp.abspath(args.checkpoint))
    torch.save(dict(state_dict=state, meta=meta), args.out)
    print(f'saved {len(state)} student tensors to {args.out}')


if __name__ == '__main__':
    main()
