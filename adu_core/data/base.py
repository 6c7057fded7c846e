"""Types every dataset of the registry shares.

A dataset is a set of domains that share one class list. Each sample carries (path, label, domain); images are
opened through the dataset, so in-process datasets (``synthetic``) and on-disk ones look the same to the trainer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


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
