"""Write a degraded copy of a change-detection split: only image B changes.

Examples::

    # LEVIR-CD test split, B downsampled x4 (bicubic) and back, fixed seed 0
    python tools/degrade_dataset.py data/LEVIR-CD/test data/LEVIR-CD-x4/test \\
        --degradation resolution --scale 4 --seed 0 --link
    # single degradation at severity 3; SV-CD labels live in OUT/
    python tools/degrade_dataset.py data/SVCD/test data/SVCD-jpeg3/test \\
        --degradation jpeg --severity 3 --label-dir OUT
    # BSRGAN-style multi-degradation, scale factor 8
    python tools/degrade_dataset.py SRC DST --degradation multi --scale 8

DST mirrors SRC: every file is copied (or, with ``--link``, hard/sym-linked) except the images
of the target folder (B by default), which are degraded and written with the same name and
format (png stays png; jpg is re-encoded at quality 100, 4:4:4). ``DST/manifest.json`` records
the command, the seed and the parameters drawn for every image.

Sample ``i`` (its position in the sorted list of A stems, or its line in ``--ann-file``: the
order ``BaseCDDataset`` uses) is degraded with ``numpy.random.default_rng([seed, i])``, the
generator of ``DegradeImage(seed=seed)`` for ``sample_idx == i``, so this offline set equals
the on-the-fly transform (images are read like ``MultiImgLoadImageFromFile``: 8-bit only,
3-channel BGR; a grey target image is refused unless ``--allow-grey``, as in training).
Group names (``blur``, ``noise``, ``single``) are accepted as in ``tools/test.py``.

SRC is only read. An existing DST is refused unless ``--overwrite`` is given, and even then
only when it is empty or was written by this tool (it holds a ``manifest.json``); DST equal
to, inside, or containing SRC is always refused. Output is written to a temporary sibling
folder and renamed into place when complete.
"""
import argparse
import json
import os
import os.path as osp
import shlex
import shutil
import sys
from typing import List, Optional, Sequence, Tuple

import cv2
from mmengine.utils import ProgressBar

from hicd_mm.datasets.degradations import apply_spec, build_specs, check_image, degradation_rng
from hicd_mm.datasets.transforms.loading import GREY_HELP, is_grey, read_image, to_bgr
from hicd_mm.version import __version__
from hicd_tools.test_options import resolve_degradation, valid_degradation_names

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp')
MANIFEST = 'manifest.json'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Write a degraded copy of a change-detection split (only B changes).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('src', help='source split folder (holds A/, B/, label/)')
    p.add_argument('dst', help='destination folder (must not exist, see --overwrite)')
    p.add_argument('--degradation', nargs='+', required=True, metavar='NAME',
                   help=f'degradation name(s) or group(s); several: one drawn per image. '
                   f'Valid: {", ".join(valid_degradation_names())}')
    p.add_argument('--severity', nargs='+', type=int, metavar='K',
                   help='severity 1-5 of single degradations (several: drawn per image)')
    p.add_argument('--scale', nargs='+', type=float, metavar='S',
                   help='resolution: factor >= 1, or two numbers LO HI for a range; '
                   'multi: the scale factor sf (4 or 8 in the paper)')
    p.add_argument('--kernel', nargs='+', metavar='K',
                   help='resolution downsampling kernel(s): bicubic, bilinear, area, nearest')
    p.add_argument('--up-kernel', help='resolution kernel back to full size (bicubic)')
    p.add_argument('--seed', type=int, default=0, help='seed of the degradations')
    p.add_argument('--target', choices=('A', 'B'), default='B', help='image to degrade')
    p.add_argument('--a-dir', default='A', help='folder of the t1 images inside SRC')
    p.add_argument('--b-dir', default='B', help='folder of the t2 images inside SRC')
    p.add_argument('--label-dir', default='label',
                   help='folder of the labels inside SRC (SV-CD: OUT); copied as is')
    p.add_argument('--img-suffix', nargs='+', default=list(IMAGE_SUFFIXES),
                   help='image suffixes listed in the A folder (match the dataset config)')
    p.add_argument('--ann-file', help='list file inside SRC with "from to label" stems per '
                   'line (BANDON-style); the sample index is the line number')
    p.add_argument('--link', nargs='?', const='hard', choices=('hard', 'sym'),
                   help='hard-link (default) or symlink unchanged files instead of copying')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing DST written by this tool')
    p.add_argument('--allow-grey', action='store_true',
                   help='degrade a grey (1-band) target image as 3 identical channels (the '
                   'loader refuses a grey image next to a colour one unless allowed)')
    p.add_argument('--workers', type=int, default=1, help='worker processes')
    p.add_argument('--quiet', action='store_true', help='no progress output')
    return p.parse_args(argv)


def build_degradation(args: argparse.Namespace):
    """The validated specs (raises ValueError/TypeError with a clear message)."""
    resolved = []
    for name in args.degradation:
        found = resolve_degradation(name)
        resolved += found if isinstance(found, list) else [found]
    names = resolved[0] if len(resolved) == 1 else resolved
    severity = None
    if args.severity:
        severity = args.severity[0] if len(args.severity) == 1 else list(args.severity)
    scale = None
    if args.scale:
        if len(args.scale) > 2:
            raise ValueError(f'--scale takes one factor or a range LO HI, got {args.scale}')
        scale = args.scale[0] if len(args.scale) == 1 else tuple(args.scale)
    kernel = None
    if args.kernel:
        kernel = args.kernel[0] if len(args.kernel) == 1 else list(args.kernel)
    options = dict(severity=severity, scale=scale, kernel=kernel, up_kernel=args.up_kernel)
    return build_specs(names, **options), dict(degradation=names, **options)


def _find_image(folder: str, stem: str, suffixes: Sequence[str]) -> Optional[str]:
    for suffix in suffixes:
        if osp.isfile(osp.join(folder, stem + suffix)):
            return stem + suffix
    return None


def list_samples(src: str, args: argparse.Namespace) -> List[Tuple[str, str, str]]:
    """``(stem, a_rel, b_rel)`` per sample in dataset order (paths relative to SRC)."""
    suffixes = tuple(args.img_suffix)
    a_root, b_root = osp.join(src, args.a_dir), osp.join(src, args.b_dir)
    if args.ann_file:
        ann = osp.join(src, args.ann_file)
        if not osp.isfile(ann):
            raise FileNotFoundError(f'--ann-file not found: {ann!r}')
        with open(ann) as f:
            pairs = [line.split()[:2] for line in f if line.strip()]
        pairs = [(p[0], p[0] if len(p) == 1 else p[1]) for p in pairs]
    else:
        if not osp.isdir(a_root):
            raise FileNotFoundError(
                f'no A folder {a_root!r}: SRC must be one split folder holding '
                f'{args.a_dir}/, {args.b_dir}/ and {args.label_dir}/ (see --a-dir/--b-dir)')
        stems = []
        for dirpath, _, files in os.walk(a_root):
            for name in files:
                for suffix in suffixes:
                    if name.endswith(suffix):
                        rel = osp.relpath(osp.join(dirpath, name), a_root)
                        stems.append(rel[:-len(suffix)])
                        break
        pairs = [(s, s) for s in sorted(stems)]
    if not pairs:
        raise ValueError(f'no images with suffix {suffixes} found in {a_root!r}')
    samples = []
    for stem_a, stem_b in pairs:
        a_rel, b_rel = _find_image(a_root, stem_a, suffixes), _find_image(b_root, stem_b, suffixes)
        if a_rel is None or b_rel is None:
            missing = osp.join(a_root if a_rel is None else b_root,
                               (stem_a if a_rel is None else stem_b) + suffixes[0])
            raise FileNotFoundError(f'image of sample {stem_a!r} missing: {missing!r}')
        samples.append((stem_a, osp.join(args.a_dir, a_rel), osp.join(args.b_dir, b_rel)))
    return samples


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_destination(src: str, dst: str, overwrite: bool) -> None:
    """Refuse DST overlapping SRC, and an existing DST without ``--overwrite``."""
    if not osp.isdir(src):
        raise FileNotFoundError(f'SRC is not a folder: {src!r}')
    rs, rd = osp.realpath(src), osp.realpath(dst)
    if _inside(rd, rs) or _inside(rs, rd):
        raise ValueError(f'DST {dst!r} must not be SRC, lie inside it or contain it')
    if osp.lexists(dst):
        if not overwrite:
            raise FileExistsError(f'DST {dst!r} exists; pass --overwrite to replace it')
        if not osp.isdir(dst) or osp.islink(dst):
            raise FileExistsError(f'DST {dst!r} exists and is not a folder; remove it yourself')
        if os.listdir(dst) and not osp.isfile(osp.join(dst, MANIFEST)):
            raise FileExistsError(
                f'DST {dst!r} is not empty and holds no {MANIFEST} (it was not written by '
                'this tool): refusing to replace it even with --overwrite; remove it yourself')


def _place(src_file: str, dst_file: str, link: Optional[str], warned: list) -> None:
    os.makedirs(osp.dirname(dst_file), exist_ok=True)
    if link == 'sym':
        os.symlink(osp.abspath(src_file), dst_file)
        return
    if link == 'hard':
        try:
            os.link(src_file, dst_file)
            return
        except OSError as err:
            if not warned:
                print(f'warning: hard link failed ({err}); copying instead', file=sys.stderr)
                warned.append(True)
    shutil.copy2(src_file, dst_file)


def _write_image(path: str, img) -> None:
    ext = osp.splitext(path)[1].lower()
    params = []
    if ext in ('.jpg', '.jpeg'):
        params = [cv2.IMWRITE_JPEG_QUALITY, 100,
                  cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, img, params):
        raise OSError(f'could not write {path!r}')


_JOB = {}


def _init_worker(job: dict) -> None:
    cv2.setNumThreads(1)
    _JOB.update(job)


def degrade_sample(task: Tuple[int, str, str]) -> dict:
    """Degrade sample ``index``: read ``src/rel``, write ``tmp/rel``, return its record."""
    index, rel = task[0], task[1]
    src_file = osp.join(_JOB['src'], rel)
    img = read_image(src_file, 'color_keep_grey')  # 8-bit only, as the dataset loader
    if is_grey(img):
        if not _JOB['allow_grey']:
            raise ValueError(f'{src_file!r} is grey (1 band): {GREY_HELP}; pass --allow-grey to '
                             'degrade it as 3 identical channels')
        img = to_bgr(img, src_file)
    check_image(img, src_file)
    out, record = apply_spec(img, _JOB['specs'], degradation_rng(_JOB['seed'], index))
    record.update(target=_JOB['target'], seed=_JOB['seed'], sample_idx=index)
    _write_image(osp.join(_JOB['tmp'], rel), out)
    return dict(index=index, stem=task[2], file=rel, degradation=record)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        specs, config = build_degradation(args)
        if args.seed < 0:
            raise ValueError(f'--seed must be >= 0, got {args.seed}')
        if args.workers < 1:
            raise ValueError(f'--workers must be >= 1, got {args.workers}')
        check_destination(args.src, args.dst, args.overwrite)
        samples = list_samples(args.src, args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    targets = [(i, s[2] if args.target == 'B' else s[1], s[0]) for i, s in enumerate(samples)]
    target_files = [t[1] for t in targets]
    others = {s[1] if args.target == 'B' else s[2] for s in samples}
    if len(set(target_files)) != len(target_files) or others & set(target_files):
        print('error: an image is the target of two samples, or the target of one and the '
              'other image of another; such a split cannot be degraded offline (use '
              'DegradeImage on the fly)', file=sys.stderr)
        return 2

    dst = osp.abspath(args.dst)
    tmp = f'{dst}.partial-{os.getpid()}'
    if osp.lexists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    job = dict(src=args.src, tmp=tmp, specs=specs, seed=args.seed, target=args.target,
               allow_grey=args.allow_grey)
    try:
        # 1. everything except the target images: copied or linked.
        warned: list = []
        skip = {osp.normpath(f) for f in target_files}
        for dirpath, _, files in os.walk(args.src):
            for name in files:
                rel = osp.normpath(osp.relpath(osp.join(dirpath, name), args.src))
                if rel not in skip:
                    _place(osp.join(args.src, rel), osp.join(tmp, rel), args.link, warned)
        # 2. the target images, degraded in dataset order.
        progress = None if args.quiet else ProgressBar(len(targets), file=sys.stderr)
        records = []
        if args.workers == 1:
            _init_worker(job)
            for task in targets:
                records.append(degrade_sample(task))
                if progress is not None:
                    progress.update()
        else:
            import multiprocessing as mp
            with mp.get_context('fork').Pool(args.workers, _init_worker, (job, )) as pool:
                for rec in pool.imap(degrade_sample, targets, chunksize=4):
                    records.append(rec)
                    if progress is not None:
                        progress.update()
        command = ' '.join(shlex.quote(a) for a in ['tools/degrade_dataset.py'] +
                           list(sys.argv[1:] if argv is None else argv))
        manifest = dict(
            tool='tools/degrade_dataset.py', hicd_mm_version=__version__, command=command,
            src=args.src, degradation=config, specs=[dict(s) for s in specs],
            seed=args.seed, target=args.target,
            rng='numpy.random.default_rng([seed, index]); index = position of the sample '
                'in the sorted A stems (or the line of --ann-file)',
            count=len(records), images=records)
        with open(osp.join(tmp, MANIFEST), 'w') as f:
            json.dump(manifest, f, indent=1)
            f.write('\n')
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, (ValueError, FileNotFoundError)):  # bad data: nothing written
            print(f'error: {err}', file=sys.stderr)
            return 2
        raise
    old = None
    if osp.lexists(dst):
        old = f'{dst}.old-{os.getpid()}'
        os.rename(dst, old)
    os.rename(tmp, dst)
    if old:
        shutil.rmtree(old)
    if not args.quiet:
        print(f'\nwrote {len(records)} degraded {args.target} images and {MANIFEST} to {dst}',
              file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
