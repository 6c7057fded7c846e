"""The paper's numbers (``book/paper_numbers.csv``), and which of them stands beside each of ours.

Where the paper has no numbers for our dataset, its numbers for the closest dataset it has are shown (labelled as
such); where a page forgets a domain the paper names (Table 4's Office-Home *Art*, the attention figure's *real*),
our dataset's domain of the same kind stands for it.
"""

from __future__ import annotations

import io
import json
import os
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from adu_core.paths import project_root

from .names import METHOD_NAMES, dataset_name

__all__ = ["FIGURE_DOMAINS", "PAPER_CSV_COLUMNS", "analogous_domain", "figure_forget_sets", "like_domain",
           "load_paper_numbers", "method_rows", "paper_for_variants", "paper_label", "paper_reference"]

PAPER_CSV_COLUMNS = ("table", "dataset", "n_forget", "forget", "method", "instapg", "ddl", "ddl_ce", "ddl_mmd",
                     "metric", "value", "source", "flag", "note")
SWITCHES = ("instapg", "ddl", "ddl_ce", "ddl_mmd")
# PACS and the synthetic styles pair domain by domain with Mini DomainNet (photo~real, art/painting, cartoon~clipart,
# sketch); Office-Home is next; ImageNet has only two domains.
REFERENCE_ORDER = ("mini_domainnet", "office_home", "imagenet")
# The paper's figures: the attention figure forgets Mini DomainNet's *real* domain; Table 4 forgets Office-Home's
# *Art*. "auto" forget sets of the figure pages use the datasets' matching domains (PACS: photo, art_painting).
FIGURE_DOMAINS = (("real", "photo"), ("art", "painting"))


# --- the numbers ---------------------------------------------------------------------------------------------------
def paper_numbers_path() -> Path:
    return project_root() / "book" / "paper_numbers.csv"


def load_paper_numbers(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The paper's Tables 1-4 as a tidy frame: one row per printed number, switches as nullable booleans.

    ``value`` is the number as printed (float); ``flag`` names a known inconsistency (empty when none).
    """
    explicit = path is not None
    path = Path(path) if explicit else paper_numbers_path()
    if path.is_file():
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    else:
        url = None if explicit else _installed_repo_file("book/paper_numbers.csv")
        if url is None:
            raise FileNotFoundError(f"{path} is missing: the paper's numbers live in book/paper_numbers.csv of the "
                                    "repository (clone it, or set ADU_PROJECT_ROOT to a clone)")
        with urllib.request.urlopen(url, timeout=30) as response:  # a pip install from git (Colab): same commit
            df = pd.read_csv(io.StringIO(response.read().decode()), dtype=str, keep_default_na=False)
    missing = set(PAPER_CSV_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)}")
    df["table"] = df["table"].astype(int)
    df["n_forget"] = df["n_forget"].astype(int)
    df["value"] = df["value"].astype(float)
    for col in SWITCHES:
        df[col] = df[col].map({"true": True, "false": False, "": pd.NA}).astype("boolean")
    return df


def _installed_repo_file(relpath: str) -> str | None:
    """The raw URL of ``relpath`` at the commit that pip installed adu-core from, for an install from a GitHub
    repository (PEP 610 ``direct_url.json``), e.g. the set-up cell on Colab; None otherwise."""
    try:
        info = json.loads(metadata.distribution("adu-core").read_text("direct_url.json") or "{}")
    except (metadata.PackageNotFoundError, json.JSONDecodeError):
        return None
    url, commit = info.get("url", ""), (info.get("vcs_info") or {}).get("commit_id")
    prefix = "https://github.com/"
    if not commit or not url.startswith(prefix):
        return None
    repo = url[len(prefix):].removesuffix(".git").strip("/")
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{relpath}"


# --- which of the paper's rows --------------------------------------------------------------------------------------
def paper_reference(dataset: str, paper: pd.DataFrame, table: int) -> str:
    """``dataset`` itself when the paper's ``table`` has it, else the closest dataset it has (see REFERENCE_ORDER)."""
    have = set(paper.loc[paper["table"] == table, "dataset"])
    if dataset in have:
        return dataset
    for name in REFERENCE_ORDER:
        if name in have:
            return name
    raise ValueError(f"the paper's Table {table} has no dataset")


def paper_label(dataset: str, reference: str) -> str:
    """Column label for the paper's numbers, naming the paper's dataset when it is not ours."""
    return "paper" if dataset == reference else f"paper ({dataset_name(reference)})"


def method_rows(paper: pd.DataFrame, table: int, dataset: str, sizes: Iterable[int] | None = None) -> pd.DataFrame:
    """The paper's rows of ``table`` for ``dataset`` (and the |D_forget| ``sizes``, when given), with a ``variant``
    column holding the method's display name (Tables 1 and 4: one row per method)."""
    rows = paper[(paper["table"] == table) & (paper["dataset"] == dataset)]
    if sizes is not None:
        rows = rows[rows["n_forget"].isin(list(sizes))]
    return rows.assign(variant=rows["method"].map(METHOD_NAMES))


def paper_for_variants(paper: pd.DataFrame, table: int, dataset: str, variants: Sequence[Any],
                       sizes: Iterable[int] | None = None) -> pd.DataFrame:
    """The paper's rows of ``table`` for ``dataset`` with a ``variant`` column: rows are matched on the method (when
    the variant has no switches) or on the switches (:class:`adu_book.plans.Variant`); only the |D_forget|
    ``sizes``, when given."""
    rows = paper[(paper["table"] == table) & (paper["dataset"] == dataset)]
    parts = []
    for v in variants:
        if v.switches:
            mask = pd.Series(True, index=rows.index)
            for name, value in v.switches:
                mask &= rows[name].fillna(False).astype(bool) == value
        else:
            mask = rows["method"] == v.method
        parts.append(rows[mask].assign(variant=v.label))
    out = pd.concat(parts, ignore_index=True) if parts else rows.assign(variant=pd.Series(dtype=str))
    return out if sizes is None else out[out["n_forget"].isin(list(sizes))]


# --- our domains standing for the paper's ---------------------------------------------------------------------------
def like_domain(domains: Sequence[str], keys: Iterable[str]) -> str | None:
    """The first domain with one of ``keys`` (in order) as a word of its id (``real_world`` has ``real``)."""
    for key in keys:
        for d in domains:
            if key in d.split("_"):
                return d
    return None


def analogous_domain(domains: Sequence[str], wanted: str = "art") -> str:
    """The domain with ``wanted`` as a word of its id (Table 4 forgets Office-Home's Art: PACS has art_painting),
    else the painting-like one, else the first domain."""
    return like_domain(domains, (wanted, "painting")) or domains[0]


def figure_forget_sets(domains: Sequence[str], spec: Any = "auto", n: int | None = None,
                       parse: Callable[[Any], Iterable[tuple[str, ...]]] | None = None) -> list[tuple[str, ...]]:
    """``"auto"``: one single-domain forget set per entry of :data:`FIGURE_DOMAINS` that the dataset has (the
    real/photo-like domain, then the art/painting-like one), the first ``n`` of them; anything else goes to
    ``parse(spec)`` (the page's own parser, e.g. ``Page.forget``)."""
    if isinstance(spec, str) and spec.strip().lower() == "auto":
        found = [like_domain(domains, keys) for keys in FIGURE_DOMAINS]
        sets = list(dict.fromkeys((d,) for d in found if d is not None)) or [(domains[0],)]
        return sets[:n] if n else sets
    if parse is None:
        raise ValueError(f"forget sets {spec!r}: only 'auto' is understood without a parser")
    return list(parse(spec))
