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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from adu_core.paths import project_root

from .facts import signed
from .names import METHOD_NAMES, PAPER_METHODS, dataset_name

__all__ = ["COMPARISONS", "FIGURE_DOMAINS", "PAPER_CSV_COLUMNS", "Comparison", "analogous_domain",
           "Beside", "backbone_of", "beside", "context_label", "context_note", "figure_forget_sets", "like_domain", "load_paper_numbers", "method_rows",
           "paper_difference", "paper_difference_text", "paper_differences", "paper_for_variants", "paper_label",
           "paper_reference", "same_setting", "sizes_note"]

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


def context_label(dataset: str, reference: str, backbone: str | None = None) -> str:
    """The paper's column when it is context: "paper (Mini DomainNet, ViT-B/16): context"; "paper" when it
    measures what ours does (:func:`same_setting`)."""
    if same_setting(dataset, reference, backbone):
        return "paper"
    return f"paper ({dataset_name(reference)}, ViT-B/16): context"


def context_note(dataset: str, reference: str, backbone: str | None, table: int, tier: str,
                 flagged: pd.DataFrame | None = None) -> str:
    """A Markdown paragraph above a table: which dataset and backbone the paper's column is, whether Δ = ours −
    paper is shown (only in the same setting), and the known inconsistencies of the paper's rows shown."""
    ref = dataset_name(reference)
    if same_setting(dataset, reference, backbone):
        text = (f"The paper's column and ours are both {ref} on ViT-B/16 (ours: `{tier}` tier), so Δ = ours − paper "
                "is the reproduction gap.")
    else:
        ours = f"{dataset_name(dataset)} on {'the testbed' + chr(39) + 's small CLIP' if tier == 'testbed' else backbone}"
        why = (f"the paper's Table {table} has no {dataset_name(dataset)}" if dataset != reference else
               "the paper's numbers are on ViT-B/16")
        text = (f"The paper's column is {ref} on CLIP ViT-B/16; ours is {ours}. The two measure different things, so "
                f"the paper's value is context and no difference is taken ({why}).")
    if flagged is not None and len(flagged) and "flag" in flagged:
        for note in flagged.loc[flagged["flag"] != "", "note"].unique():
            text += f"\n\nKnown inconsistency in the paper ({ref}): {note}."
    return text


@dataclass(frozen=True)
class Beside:
    """What stands beside ours on a table page: the paper's dataset (``reference``), whether it measures what ours
    does (``same``: then Δ = ours − paper is shown), the paper column's label, and the note above the table."""

    reference: str
    same: bool
    label: str
    note: str


def beside(pg: Any, table: int, flagged: pd.DataFrame | None = None) -> Beside:
    """:class:`Beside` for page ``pg`` (:class:`adu_book.notebook.Page`) and the paper's ``table``."""
    ref = pg.reference(table)
    backbone = pg.session_cfg().backbone
    return Beside(ref, same_setting(pg.dataset, ref, backbone), context_label(pg.dataset, ref, backbone),
                  context_note(pg.dataset, ref, backbone, table, pg.tier, flagged))


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


# --- the paper's own differences (one function for every page and the ledger) ------------------------------------
PAPER_BACKBONE = "ViT-B-16"  # every number of the paper is on open_clip's ViT-B/16 with OpenAI's weights


def backbone_of(cfg: Any) -> str:
    """The backbone of a run config (``cfg.backbone``), as :func:`same_setting` compares it."""
    return str(getattr(cfg, "backbone", "") or "")


def same_setting(dataset: str, reference: str, backbone: str | None = None) -> bool:
    """Whether our numbers and the paper's measure the same thing: the same dataset and the paper's backbone.
    Only then is ours − paper a reproduction gap; otherwise the paper's value is context, and no Δ is shown."""
    return dataset == reference and (backbone is None or backbone == PAPER_BACKBONE)


Selection = Mapping[str, Any]


@dataclass(frozen=True)
class Comparison:
    """One of the paper's differences: the row ``a`` minus the row ``b`` of ``table`` (rows selected by column values
    of ``book/paper_numbers.csv``), or minus the strongest of ``rivals`` (by mean over the |D_forget| compared, per
    dataset: the row picked is named), in ``metric``; ``words`` says it in a sentence ("ADU − Baseline")."""

    table: int
    a: Selection
    b: Selection | None
    words: str
    metric: str = "h"
    rivals: tuple[tuple[str, Selection], ...] = ()


_NONE, _BOTH = {"instapg": False, "ddl": False}, {"instapg": True, "ddl": True}
_RIVALS = tuple((METHOD_NAMES[m], {"method": m}) for m in PAPER_METHODS if m != "adu")
_SINGLES = (("InstaPG only", {"instapg": True, "ddl": False}), ("DDL only", {"instapg": False, "ddl": True}))
# The paper's differences the book states, by the ledger's claim keys (the ledger and the pages compute the paper's
# side of each with :func:`paper_difference`, so a page and the ledger never quote two numbers for one difference).
COMPARISONS: dict[str, Comparison] = {
    "t1_best": Comparison(1, {"method": "adu"}, None, "ADU − the strongest other row by mean H", rivals=_RIVALS),
    "t1_baseline": Comparison(1, {"method": "adu"}, {"method": "baseline"}, "ADU − Baseline"),
    "t2_instapg": Comparison(2, {"instapg": True, "ddl": False}, _NONE, "InstaPG only − Baseline"),
    "t2_ddl": Comparison(2, {"instapg": False, "ddl": True}, _NONE, "DDL only − Baseline"),
    "t2_adu": Comparison(2, _BOTH, _NONE, "DDL + InstaPG − Baseline"),
    "t2_both": Comparison(2, _BOTH, None, "both − the better single component by mean H", rivals=_SINGLES),
    "t2_both_vs_ddl": Comparison(2, _BOTH, {"instapg": False, "ddl": True}, "DDL + InstaPG − DDL only"),
    "t3_ce": Comparison(3, {"ddl_ce": True, "ddl_mmd": True}, {"ddl_ce": False, "ddl_mmd": True},
                        "CE + MMD − MMD only"),
    "t3_mmd": Comparison(3, {"ddl_ce": True, "ddl_mmd": True}, {"ddl_ce": True, "ddl_mmd": False},
                         "CE + MMD − CE only"),
    "t3_mmd_only": Comparison(3, {"ddl_ce": False, "ddl_mmd": True}, {"ddl_ce": False, "ddl_mmd": False},
                              "MMD only − InstaPG without DDL"),
    "t3_ce_only": Comparison(3, {"ddl_ce": True, "ddl_mmd": False}, {"ddl_ce": False, "ddl_mmd": False},
                             "CE only − InstaPG without DDL"),
    "t3_adu": Comparison(3, {"ddl_ce": True, "ddl_mmd": True}, {"ddl_ce": False, "ddl_mmd": False},
                         "CE + MMD − InstaPG without DDL"),
    **{f"t1_{m}_vs_baseline": Comparison(1, {"method": m}, {"method": "baseline"},
                                         f"{METHOD_NAMES[m]} − Baseline")
       for m in PAPER_METHODS if m != "baseline"},
}


def _cells(paper: pd.DataFrame, table: int, metric: str, sizes: Iterable[int] | None) -> pd.DataFrame:
    part = paper[(paper["table"] == table) & (paper["metric"] == metric)]
    return part if sizes is None else part[part["n_forget"].isin(list(sizes))]


def _select(part: pd.DataFrame, sel: Selection) -> pd.Series:
    rows = part
    for k, v in sel.items():
        rows = rows[rows[k].fillna(False).astype(bool) == v] if k in SWITCHES else rows[rows[k] == v]
    return rows.groupby(["dataset", "n_forget"])["value"].mean()


def paper_difference(paper: pd.DataFrame, comparison: str | Comparison, sizes: Iterable[int] | None = None,
                     dataset: str | None = None) -> pd.DataFrame:
    """The paper's difference ``a − b`` from its printed means, one row per (dataset, |D_forget|) it prints, on the
    |D_forget| ``sizes`` (None: every size the paper prints) and the ``dataset`` (None: each it has). Columns:
    dataset, n_forget, value, versus (the row subtracted: its name when picked among rivals, else "")."""
    c = COMPARISONS[comparison] if isinstance(comparison, str) else comparison
    part = _cells(paper, c.table, c.metric, sizes)
    if dataset is not None:
        part = part[part["dataset"] == dataset]
    mine = _select(part, c.a)
    rows = []
    for ds in dict.fromkeys(mine.index.get_level_values(0)):
        if c.b is not None:
            other, versus = _select(part, c.b), ""
            other = other[other.index.get_level_values(0) == ds]
        else:  # the strongest rival by its mean over the sizes compared, as ours picks the strongest on its runs
            best = None
            for name, sel in c.rivals:
                s = _select(part, sel)
                s = s[s.index.get_level_values(0) == ds]
                if len(s) and (best is None or s.mean() > best[1].mean()):
                    best = (name, s)
            if best is None:
                continue
            versus, other = best
        diff = (mine[mine.index.get_level_values(0) == ds] - other).dropna()
        rows += [{"dataset": d, "n_forget": int(k), "value": float(v), "versus": versus}
                 for (d, k), v in diff.items()]
    return pd.DataFrame(rows, columns=["dataset", "n_forget", "value", "versus"])


def paper_differences(paper: pd.DataFrame, comparison: str | Comparison, sizes: Iterable[int] | None = None,
                      dataset: str | None = None) -> dict[str, float]:
    """:func:`paper_difference` as ``dataset -> mean over the |D_forget| compared`` (the paper's figure for a page or
    the ledger: one number per dataset)."""
    d = paper_difference(paper, comparison, sizes, dataset)
    return {ds: float(g["value"].mean()) for ds, g in d.groupby("dataset", sort=False)}


def sizes_note(sizes: Iterable[int]) -> str:
    """``|D_forget| = 1`` or ``|D_forget| = 1, 2, 3, mean``: which of the paper's columns a figure rests on."""
    sizes = sorted(set(int(k) for k in sizes))
    return f"|D_forget| = {', '.join(map(str, sizes))}" + (", mean" if len(sizes) > 1 else "")


def paper_difference_text(paper: pd.DataFrame, comparison: str | Comparison, sizes: Iterable[int] | None = None,
                          dataset: str | None = None, lead: bool = True) -> str:
    """The paper's difference in words, e.g. ``InstaPG only − Baseline, H (|D_forget| = 1): Mini DomainNet +1.99;
    Office-Home +3.82`` (``lead`` False: without the words before the colon). The |D_forget| named are those the
    numbers rest on."""
    c = COMPARISONS[comparison] if isinstance(comparison, str) else comparison
    d = paper_difference(paper, c, sizes, dataset)
    parts = []
    for ds, g in d.groupby("dataset", sort=False):
        versus = g["versus"].iloc[0]
        parts.append(f"{dataset_name(ds)} {signed(float(g['value'].mean()))}" + (f" (vs {versus})" if versus else ""))
    used = sorted(set(d["n_forget"])) if len(d) else sorted(set(sizes or []))
    metric = METRIC_SHORT.get(c.metric, c.metric)
    head = f"{c.words}, {metric} ({sizes_note(used) if used else 'no |D_forget| in common'})"
    body = "; ".join(parts) or "–"
    return f"{head}: {body}" if lead else body


METRIC_SHORT = {"h": "H", "mem": "Mem", "for": "For", "domain_acc": "domain accuracy"}
