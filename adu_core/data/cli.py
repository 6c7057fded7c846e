"""``adu data ...``: list, download, verify, cache. ``add_parser`` plugs into ``adu``; ``main`` runs standalone.

Exit codes: 0 success, 1 a data problem (message names the file or folder and the fix), 2 usage error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence


def _err(msg: str) -> int:
    print(f"adu data: error: {msg}", file=sys.stderr)
    return 1


def _logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")


def cmd_list(args: argparse.Namespace) -> int:
    from . import data_root, get_dataset, list_datasets

    print(f"data root: {data_root(args.root)}")
    for name in list_datasets():
        ds = get_dataset(name, root=args.root)
        if not ds.on_disk:
            where = "in-process"
        else:
            layout = "" if not ds.dir.is_dir() or ds.layout == "standard" else f", layout {ds.layout}"
            where = f"present at {ds.dir}{layout}" if ds.dir.is_dir() else f"not downloaded ({ds.dir})"
        n_classes = "1000" if name == "imagenet" else str(len(ds.classnames))  # no open_clip import for a listing
        print(f"  {name:<15} {len(ds.domains)} domains ({', '.join(ds.domains)}), {n_classes} classes; {where}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from . import DataError, get_dataset
    from .download import download_dataset

    _logging()
    try:
        ds = get_dataset(args.name, root=args.root)
    except KeyError as err:
        return _err(str(err))
    if not ds.on_disk:
        print(f"{ds.name} is generated in-process: nothing to download")
        return 0
    if ds.download_note:
        print(ds.download_note)
    for res in ds.resources:
        check = f"{'sha256' if res.sha256 else 'md5'} ({res.checksum_source})" if res.verified else \
            "trust-on-first-use"
        print(f"  {res.filename}: {res.urls[0]}  [{check}]")
    try:
        report = download_dataset(ds, keep_archives=args.keep_archives, timeout=args.timeout,
                                  retries=args.retries, verify=not args.no_verify)
    except DataError as err:
        return _err(str(err))
    if report is None:
        print(f"{ds.name}: installed under {ds.dir} (not verified)")
        return 0
    print(report.render())
    return 0 if report.ok else 1


def cmd_verify(args: argparse.Namespace) -> int:
    from . import DataError, get_dataset

    try:
        report = get_dataset(args.name, root=args.root).verify(deep=args.deep)
    except (KeyError, DataError) as err:
        return _err(str(err))
    print(report.render())
    return 0 if report.ok else 1


def cmd_cache(args: argparse.Namespace) -> int:
    from . import DataError, get_dataset
    from .tensor_cache import build_cache

    try:
        ds = get_dataset(args.name, root=args.root)
        targets = [("few-shot", args.shots)] if args.shots else [(s, None) for s in args.split]
        for split, shots in targets:
            path, n = build_cache(ds, split, args.size, shots=shots, seed=args.seed, cache_dir=args.cache_dir,
                                  fingerprint=args.fingerprint)
            label = f"{shots}-shot seed {args.seed}" if shots else split
            print(f"{ds.name} {label}: {n} images at {args.size}px -> {path or 'in memory (in-process dataset)'}")
    except (KeyError, DataError) as err:
        return _err(str(err))
    return 0


def _fill(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(title="data commands", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    root_help = "data root (default $ADU_DATA_ROOT, else the user cache dir)"

    q = sub.add_parser("list", help="registered datasets and whether they are present")
    q.add_argument("--data-root", "--root", dest="root", default=None, help=root_help)
    q.set_defaults(func=cmd_list)

    q = sub.add_parser("download", help="download, check, extract and verify a dataset")
    q.add_argument("name")
    q.add_argument("--data-root", "--root", dest="root", default=None, help=root_help)
    q.add_argument("--keep-archives", action="store_true", help="keep the archives in <root>/_downloads")
    q.add_argument("--timeout", type=float, default=30.0, help="seconds per network operation (default 30)")
    q.add_argument("--retries", type=int, default=3, help="retries per file, each resuming (default 3)")
    q.add_argument("--no-verify", action="store_true", help="skip the verification at the end")
    q.set_defaults(func=cmd_download)

    q = sub.add_parser("verify", help="check folders, lists, counts per domain and class, committed splits")
    q.add_argument("name")
    q.add_argument("--data-root", "--root", dest="root", default=None, help=root_help)
    q.add_argument("--deep", action="store_true", help="also decode every image and check content hashes")
    q.set_defaults(func=cmd_verify)

    q = sub.add_parser("cache", help="decode + resize once into the uint8 tensor cache (GPU input pipeline)")
    q.add_argument("name")
    q.add_argument("--size", type=int, required=True, help="side of the square images, e.g. 224")
    q.add_argument("--split", nargs="+", default=["train", "test"], choices=["train", "test"])
    q.add_argument("--shots", type=int, default=None, help="cache the K-shot set instead of whole splits")
    q.add_argument("--seed", type=int, default=1, help="few-shot seed (with --shots)")
    q.add_argument("--data-root", "--root", dest="root", default=None, help=root_help)
    q.add_argument("--cache-dir", default=None, help="cache dir (default $ADU_CACHE_DIR, else the user cache dir)")
    q.add_argument("--fingerprint", choices=["content", "stat"], default="content",
                   help="file identity in the cache key: sha256 of the bytes (default) or size+mtime")
    q.set_defaults(func=cmd_cache)


def add_parser(subparsers) -> None:
    """Add the ``data`` command (with list/download/verify/cache) to ``adu``'s subparsers."""
    p = subparsers.add_parser("data", help="datasets: list, download, verify, build the tensor cache",
                              description="Datasets: list, download (with checksums and resume), verify, cache.")
    _fill(p)


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (``python -m adu_core.data.cli verify pacs``; the data_scripts wrappers)."""
    p = argparse.ArgumentParser(prog="adu data", description="Datasets: list, download, verify, cache.")
    _fill(p)
    args = p.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
