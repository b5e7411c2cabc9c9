"""Convert a HiCD distiller checkpoint into a plain detector checkpoint.

HiCD training already writes ``student_final.pth`` (``StudentCheckpointHook``); this tool does
the same for any distiller checkpoint (e.g. ``best_F1_iter_*.pth``). Both use
:func:`hicd_mm.utils.checkpoint.save_student_checkpoint`. ``tools/test.py`` and
``tools/infer.py`` also take a distiller checkpoint directly and say that they use its student.

Example::

    python tools/export_student.py work_dirs/hicd/iter_1000.pth work_dirs/hicd/student.pth
    python tools/test.py configs/fc_siam_diff/fc_siam_diff_cpu-1k_synthetic.py \
        work_dirs/hicd/student.pth
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

import hicd_mm  # noqa: F401  (checkpoint safe globals)
from hicd_mm.utils.checkpoint import read_checkpoint, save_student_checkpoint


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments of the tool."""
    parser = argparse.ArgumentParser(description='Export the student of a HiCD checkpoint')
    parser.add_argument('checkpoint', help='distiller checkpoint (tools/train.py output)')
    parser.add_argument('out', help='output file for the plain detector checkpoint')
    parser.add_argument('--force', action='store_true', help='overwrite OUT if it exists')
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """Check the paths, read the distiller checkpoint and write its student."""
    if osp.exists(args.checkpoint) and osp.abspath(args.checkpoint) == osp.abspath(args.out):
        raise ValueError('OUT must differ from CHECKPOINT (refusing to overwrite the input)')
    if osp.exists(args.out) and not args.force:
        raise FileExistsError(f'{args.out} exists; pass --force to overwrite it')
    ckpt = read_checkpoint(args.checkpoint)
    try:
        count = save_student_checkpoint(
            ckpt['state_dict'], args.out,
            dict(ckpt.get('meta') or {}, exported_from=osp.abspath(args.checkpoint)))
    except ValueError as exc:
        raise ValueError(f'{args.checkpoint}: {exc} (a plain detector checkpoint is already '
                         'what this tool writes: use it directly)') from exc
    print(f'saved {count} student tensors to {args.out}')


def main(argv: Optional[List[str]] = None) -> int:
    """Run the tool; returns 0 on success and 2 (message on stderr) for bad input."""
    args = parse_args(argv)
    try:
        run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f'export_student.py: error: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
