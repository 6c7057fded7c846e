"""Regenerate the committed split files in adu_core/splits/ (PACS and Office-Home).

    python data_scripts/make_splits.py pacs --root ../shared/datasets
    python data_scripts/make_splits.py office_home --lists DIR     # Art.txt, Clipart.txt, Product.txt, Real_World.txt
    python data_scripts/make_splits.py office_home --root R        # or scan a downloaded copy under R/office_home

The rules are in adu_core/data/splits.py; the tests check that the committed files equal what this produces.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without an install

from adu_core.data import get_dataset  # noqa: E402
from adu_core.data import make_splits as ms  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=["pacs", "office_home"])
    p.add_argument("--root", default=None, help="data root holding the dataset (default $ADU_DATA_ROOT)")
    p.add_argument("--lists", default=None, help="Office-Home: folder with the per-domain image lists")
    p.add_argument("--out", default=None, help="output folder (default adu_core/splits/<dataset>)")
    args = p.parse_args(argv)
    ds = get_dataset(args.dataset, root=args.root)
    out = Path(args.out) if args.out else ds.splits_dir
    if args.dataset == "pacs":
        files, extra = ms.pacs_files(ds)
    else:
        everything = (ms.office_home_samples_from_lists(Path(args.lists)) if args.lists
                      else ms.office_home_samples_from_folder(ds.require_dir()))
        files, extra = ms.office_home_files(ds, everything)
    ms.write_folder(out, ds.name, files, **extra)
    print(f"wrote {len(files)} files + index.json to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
