"""Split files: one ``<path> <label> <domain>`` line per image, checked by sha256 on load.

Committed files live in the package, ``adu_core/splits/<dataset>/``, next to an ``index.json`` that records each
file's sha256 and how it was made. Files for datasets whose lists are only known once the user has the data are
generated at first use into the cache dir (``<cache>/splits/<dataset>/<train-list hash>/``) with a ``.sha256``
sidecar, and checked against it on every later load.

Rules (version ``adu-split-v1``), chosen so that any machine with the same file list gets the same files without a
random number generator whose algorithm could change between Python or NumPy versions:

- **few-shot**: for every (domain, class), the train images are ordered by
  ``sha256("adu-fewshot-v1|<dataset>|<seed>|<path>")`` and the first K are taken. The subsets are nested
  (K=1 ⊂ K=2 ⊂ ... for one seed), so a shots sweep adds images instead of redrawing them. A class with fewer than K
  train images in a domain contributes all it has, and the shortfall is reported (warning + log).
- **held-out test split** (datasets without an official one): per (domain, class), images ordered by
  ``sha256("adu-split-v1|<dataset>|<path>")``; the first ``round(fraction * n)`` (at least 1) are test, the rest train.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from .base import DataError, FewShotShortfallWarning, Sample

log = logging.getLogger(__name__)

PACKAGE_SPLITS = Path(__file__).resolve().parent.parent / "splits"
INDEX_NAME = "index.json"
FEWSHOT_RULE = "adu-fewshot-v1"
HOLDOUT_RULE = "adu-split-v1"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fewshot_filename(shots: int, seed: int) -> str:
    return f"fewshot_k{shots}_seed{seed}.txt"


def format_samples(samples: Iterable[Sample]) -> str:
    lines = []
    for s in samples:
        if any(ch.isspace() for ch in s.path) or any(ch.isspace() for ch in s.domain):
            raise DataError(f"split files cannot hold whitespace in a path or domain: {s.path!r} ({s.domain!r})")
        lines.append(f"{s.path} {s.label} {s.domain}\n")
    return "".join(lines)


def parse_samples(text: str, source: str, n_classes: int, domains: Sequence[str]) -> list[Sample]:
    """Parse split-file text; a malformed line raises :class:`DataError` naming ``source`` and the line number."""
    out: list[Sample] = []
    valid = set(domains)
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 3:
                raise ValueError("expected '<path> <label> <domain>'")
            path, label, domain = parts[0], int(parts[1]), parts[2]
            if not 0 <= label < n_classes:
                raise ValueError(f"label {label} outside [0, {n_classes})")
            if domain not in valid:
                raise ValueError(f"unknown domain {domain!r} (valid: {', '.join(domains)})")
        except ValueError as err:
            raise DataError(f"{source}:{lineno}: {err}: {line!r}") from None
        out.append(Sample(path, label, domain))
    return out


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder + rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these files are package data and shared caches
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def samples_sha256(samples: Iterable[Sample]) -> str:
    return sha256_bytes(format_samples(samples).encode())


def _order_key(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


def group_by_cell(samples: Iterable[Sample]) -> dict[tuple[str, int], list[Sample]]:
    cells: dict[tuple[str, int], list[Sample]] = defaultdict(list)
    for s in samples:
        cells[(s.domain, s.label)].append(s)
    return cells


def sample_few_shot(train: Sequence[Sample], shots: int, seed: int, dataset: str,
                    domains: Sequence[str], n_classes: int) -> list[Sample]:
    """K images per (domain, class) from ``train`` by the ``adu-fewshot-v1`` rule (see the module doc)."""
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    cells = group_by_cell(train)
    out: list[Sample] = []
    for domain in domains:
        for label in range(n_classes):
            pool = cells.get((domain, label), [])
            ranked = sorted(pool, key=lambda s: (_order_key(FEWSHOT_RULE, dataset, seed, s.path), s.path))
            out.extend(ranked[:shots])
    return out


def holdout_split(samples: Sequence[Sample], dataset: str, test_fraction: float) -> tuple[list[Sample], list[Sample]]:
    """(train, test) by the ``adu-split-v1`` rule: per (domain, class), ``round(f * n)`` (>= 1) images to test."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    train: list[Sample] = []
    test: list[Sample] = []
    for _, pool in sorted(group_by_cell(samples).items()):
        ranked = sorted(pool, key=lambda s: (_order_key(HOLDOUT_RULE, dataset, s.path), s.path))
        n_test = max(1, round(test_fraction * len(ranked))) if len(ranked) > 1 else 0
        test.extend(ranked[:n_test])
        train.extend(ranked[n_test:])
    key = lambda s: (s.domain, s.label, s.path)  # noqa: E731 - stable, readable file order
    return sorted(train, key=key), sorted(test, key=key)


def shortfalls(pool: Iterable[Sample], shots: int, domains: Sequence[str],
               n_classes: int) -> list[tuple[str, int, int]]:
    """(domain, label, available) for every cell of ``pool`` with fewer than ``shots`` images."""
    counts = Counter((s.domain, s.label) for s in pool)
    return [(d, c, counts.get((d, c), 0)) for d in domains for c in range(n_classes)
            if counts.get((d, c), 0) < shots]


def report_shortfalls(dataset: str, classnames: Sequence[str], shots: int,
                      short: Sequence[tuple[str, int, int]]) -> str | None:
    """Warn (and log) once about cells with fewer than K images; returns the message, or None when balanced."""
    if not short:
        return None
    cells = ", ".join(f"{d}/{classnames[c]}={n}" for d, c, n in short[:12])
    more = f" and {len(short) - 12} more" if len(short) > 12 else ""
    msg = (f"{dataset}: {len(short)} (domain, class) cell(s) have fewer than {shots} training images, so the "
           f"{shots}-shot set is unbalanced there (all available images are used): {cells}{more}")
    log.warning(msg)
    warnings.warn(msg, FewShotShortfallWarning, stacklevel=3)
    return msg


# --- committed files ------------------------------------------------------------------------------------------------

def load_index(folder: Path) -> dict:
    path = folder / INDEX_NAME
    if not path.is_file():
        return {"files": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not valid JSON ({err}); restore it from git") from None


def read_checked(folder: Path, filename: str, index: dict) -> str:
    """The text of a committed split file, after checking its sha256 against ``index.json``."""
    entry = index.get("files", {}).get(filename)
    path = folder / filename
    if entry is None:
        raise DataError(f"{path} is not listed in {folder / INDEX_NAME}")
    if not path.is_file():
        raise DataError(f"committed split file {path} is missing; restore it from git (git checkout -- {path})")
    data = path.read_bytes()
    digest = sha256_bytes(data)
    if digest != entry["sha256"]:
        raise DataError(f"committed split file {path} was modified: sha256 {digest[:12]}... != "
                        f"{entry['sha256'][:12]}... recorded in {INDEX_NAME}. Restore it from git, or regenerate "
                        "the folder with data_scripts/make_splits.py")
    return data.decode()


def check_subset(samples: Sequence[Sample], pool: Iterable[Sample], source: str, dataset: str) -> None:
    """Every sample of a split file must be in the dataset's pool (e.g. the train split of this copy)."""
    pool_set = set(pool)
    missing = [s for s in samples if s not in pool_set]
    if missing:
        raise DataError(f"{source} lists {len(missing)} image(s) that are not in the train split of your copy of "
                        f"{dataset} (first: {missing[0].path}); your copy differs from the one the split was made "
                        f"from: run `adu data verify {dataset}`")


# --- generated files in the cache ----------------------------------------------------------------------------------

def cached_split(folder: Path, filename: str, make, parse) -> list[Sample]:
    """Load ``folder/filename`` if its ``.sha256`` sidecar matches, else ``make()`` it and write both atomically.

    An unwritable cache is not an error: the generated list is returned and a warning logged.
    """
    path = folder / filename
    sidecar = path.with_name(path.name + ".sha256")
    if path.is_file() and sidecar.is_file():
        data = path.read_bytes()
        if sha256_bytes(data) == sidecar.read_text().split()[0]:
            return parse(data.decode(), str(path))
        log.warning("cached split %s does not match its sha256 sidecar; regenerating it", path)
    samples = make()
    text = format_samples(samples)
    try:
        write_text_atomic(path, text)
        write_text_atomic(sidecar, f"{sha256_bytes(text.encode())}  {filename}\n")
    except OSError as err:
        log.warning("could not write the generated split %s (%s); using it from memory", path, err)
    return samples
