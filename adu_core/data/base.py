"""Types every dataset of the registry shares.

A dataset is a set of domains that share one class list. Each sample carries (path, label, domain); images are
opened through the dataset, so in-process datasets (``synthetic``) and on-disk ones look the same to the trainer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """One image: ``path`` is relative to the dataset's folder (a virtual id for in-process data)."""

    path: str
    label: int
    domain: str


class DataError(RuntimeError):
    """Missing, incomplete or corrupt data; the message names the file or folder and the fix."""


class UnknownNameError(KeyError, ValueError):
    """An unknown dataset name; the message lists the valid ones.

    Both a ``KeyError`` (a registry look-up) and a ``ValueError`` (a bad argument), so either ``except`` catches it.
    ``str()`` is the plain message (``KeyError`` would otherwise wrap it in quotes).
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class FewShotShortfallWarning(UserWarning):
    """A class has fewer than K training images in some domain, so the few-shot set is unbalanced there."""


def canonical_id(name: str) -> str:
    """``"Real World"``, ``"real-world"``, ``"REAL_WORLD"`` -> ``"real_world"`` (one rule for datasets and domains)."""
    return re.sub(r"[\s\-]+", "_", name.strip()).lower()


def join_names(names: Iterable[str]) -> str:
    return ", ".join(names)


def read_split_list(path: Path, domain: str, classes: Sequence[str]) -> list[tuple[int, int, Sample]]:
    """A split list of lines ``<domain>/<class folder>/<file> <label>`` (PACS, DomainNet) as (line number, listed
    label, sample) triples. The sample's label comes from its class folder; the caller judges the listed one.
    A line that does not parse, lies outside ``domain`` or names an unknown class folder is a DataError.
    """
    index = {c: i for i, c in enumerate(classes)}
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rel, raw = line.split()
            dom, cls, _ = rel.split("/")
            listed = int(raw)
            if dom != domain:
                raise ValueError(f"the path is not in domain {domain!r}")
            if cls not in index:
                raise ValueError(f"unknown class folder {cls!r}")
        except ValueError as err:
            raise DataError(f"{path}:{lineno}: malformed line {line!r}: {err}") from None
        out.append((lineno, listed, Sample(rel, index[cls], domain)))
    return out
