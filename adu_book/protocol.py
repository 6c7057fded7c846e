"""The protocol page: every configuration field beside what the paper states, and the choices made in code.

Everything here is read from the library itself (``RunConfig``'s field docs, the methods' options, the modules'
docstrings), so the page cannot drift from what runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from adu_core.config import TIERS, field_docs, make_config
from adu_core.data import get_dataset
from adu_core.methods import get_method, list_methods
from adu_core.paths import project_root

from .names import dataset_name
from .paper import analogous_domain, load_paper_numbers, paper_reference
from .plans import TIER_SEEDS, parse_list
from .runs import TIER_RUN_BUDGET

__all__ = ["CHOICE_MODULES", "PAPER_PROTOCOL", "choice_docs", "rst_to_markdown", "inconsistencies", "kvw_defaults",
           "method_options_table",
           "protocol_facts", "protocol_table", "reference_note", "tier_presets"]

# What the paper states for each RunConfig field (with its source tag from PAPER.md); fields not listed: not stated.
PAPER_PROTOCOL: dict[str, str] = {
    "dataset": "ImageNet (+ a 2nd domain), Office-Home, Mini DomainNet, a 4th dataset [KB, PN]",
    "forget": "every forget/keep combination for |D_forget| = 1, 2, 3 [KB Table 1 caption]",
    "method": "ADU; Baseline, LP++, CLIPFit, BBF [KB Table 1]",
    "seed": "3 seeds, averaged [I6]",
    "backbone": "CLIP ViT-B/16 [PN]",
    "pretrained": "CLIP (OpenAI weights) [PN]",
    "templates": "\"a photo of a [CLASS].\" [PP Fig. 2a]",
    "shots": "\"8 labeled samples per domain\" [PN]",
    "n_ctx": "8 [PN]",
    "prompt_depth": "9 (first 9 layers) [PN]",
    "instapg": "on (Table 2 switch) [KB]",
    "ddl": "on (Table 2 switch) [KB]",
    "ddl_ce": "on (Table 3 switch) [PN]",
    "ddl_mmd": "on (Table 3 switch) [PN]",
    "gamma": "30 [PN]",
    "lam": "10 [PN]",
    "epochs": "50 [PN]",
    "lr": "0.0025, SGD [PN]",
}
# Modules whose docstrings state the choices made outside the configuration (splits, metrics, methods).
CHOICE_MODULES = ("adu_core.data.splits", "adu_core.data.pacs", "adu_core.data.office_home",
                  "adu_core.data.domainnet", "adu_core.data.imagenet", "adu_core.metrics", "adu_core.evaluate",
                  "adu_core.methods.prompt", "adu_core.methods.zeroshot", "adu_core.methods.lpp",
                  "adu_core.methods.clipfit", "adu_core.methods.bbf", "adu_core.methods.gate", "adu_core.methods.kvw",
                  "adu_core.recovery")


def rst_to_markdown(doc: str) -> str:
    """A docstring written for Sphinx, as Markdown for a page: roles (``:func:`x` ``) become code, double
    backticks single ones, and ``text::`` + an indented block becomes ``text:`` + a fenced code block."""
    import re
    import textwrap

    doc = re.sub(r":(?:py:)?[a-z]+:`~?([^`]+)`", r"`\1`", doc)
    doc = doc.replace("``", "`")
    lines, out, i = doc.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::"):
            head = line.rstrip()[:-2].rstrip()
            if head:
                out.append(head + ":")
            i += 1
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                block.append(lines[i])
                i += 1
            body = textwrap.dedent("\n".join(block)).strip("\n")
            out += ["", "```text", body, "```", ""] if body else []
            continue
        if line.startswith("    ") and (not out or not out[-1].strip()) and not _in_list(out):
            block = []  # an indented block after a blank line: Markdown's code block; shown as text, not Python
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                block.append(lines[i])
                i += 1
            out += ["```text", textwrap.dedent("\n".join(block)).strip("\n"), "```", ""]
            continue
        out.append(line)
        i += 1
    return _public("\n".join(out))


def _in_list(out: list[str]) -> bool:
    """Whether the last paragraph of ``out`` is a list item (its indented lines continue the item)."""
    for line in reversed(out):
        if not line.strip():
            continue
        return line.lstrip().startswith(("- ", "* ")) or line.startswith("  ")
    return False


def _public(doc: str) -> str:
    """References to the project's private notes on the paper (``PAPER.md``, not in the repository) dropped from a
    docstring shown on a page: "(see PAPER.md §1: X)" keeps X, "(PAPER.md §4)" goes."""
    import re

    doc = re.sub(r"\(see PAPER\.md\s*§\s*\d+:\s*", "(", doc)
    doc = re.sub(r"\s*\((?:see )?PAPER\.md(?:\s*§\s*\d+)?\)", "", doc)
    doc = re.sub(r"(?:see )?PAPER\.md(?:\s*§\s*\d+)?", "the paper (as the project read it)", doc)
    return doc


def _cell(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value) if value else "()"
    if isinstance(value, dict):
        return json.dumps(value) if value else "{}"
    return "None" if value is None else str(value)


def protocol_table(paper_dataset: str = "office_home", testbed_dataset: str = "pacs",
                   tier: str = "testbed") -> pd.DataFrame:
    """Every RunConfig field: the paper's value (or "not stated"), our paper-tier default, the value at ``tier``
    (the testbed by default), whether that tier changes it, whether the choice is ours ([G] in its doc), and the
    field's doc line."""
    paper_cfg = make_config(paper_dataset, "paper").to_dict()
    testbed_cfg = make_config(testbed_dataset, tier).to_dict()
    authors_cfg = make_config(paper_dataset, "paper", recipe="authors_code").to_dict()
    root = str(project_root())
    rows = []
    for name, doc in field_docs().items():
        p, t = paper_cfg[name], testbed_cfg[name]
        t_text = _cell(t).replace(root + os.sep, "") if isinstance(t, str) else _cell(t)
        identity = name in ("dataset", "tier", "forget", "method", "seed")
        rows.append({
            "field": name,
            "paper": PAPER_PROTOCOL.get(name, "not stated"),
            "paper tier (default)": _cell(p),
            f"{tier} tier": t_text,
            f"{tier} differs": "" if identity or p == t else "yes",
            "authors' code (paper tier)": _cell(authors_cfg[name]) if authors_cfg[name] != p else "",
            "our choice [G]": "yes" if "[G" in doc else "",
            "doc": doc,
        })
    return pd.DataFrame(rows)


def kvw_defaults(path: str | os.PathLike | None = None, top: int = 8) -> tuple[pd.DataFrame, dict[str, str]]:
    """How KVW's defaults were chosen (``models/testbed/kvw_defaults.json``, written by
    ``data_scripts/choose_kvw_defaults.py``): the ``top`` grid points by validation H, the chosen one first, and the
    glued facts (grid size, rule, data, the chosen point's validation numbers against zero-shot's)."""
    file = project_root() / "models" / "testbed" / "kvw_defaults.json" if path is None else Path(path)
    record = json.loads(file.read_text())
    rows = []
    for point in record["points"]:
        rows.append({**point["options"], "validation H": point["val"]["h"], "Mem": point["val"]["mem"],
                     "For": point["val"]["for"]})
    frame = pd.DataFrame(rows).sort_values("validation H", ascending=False, kind="stable").head(top)
    frame.insert(0, "rank", range(1, len(frame) + 1))
    zero = [v["zero_shot_val"]["h"] for v in record["per_forget"].values()]
    data = record["data"]
    facts = {"kvw_grid_points": str(len(record["points"])), "kvw_rule": record["rule"],
             "kvw_val_data": (f"{data['dataset']} seed {data['seed']}'s few-shot pool, split {data['n_fit']} to fit and "
                              f"{data['n_val']} to validate (stratified by {' and '.join(data['stratified_by'])}; "
                              f"the test set unused)"),
             "kvw_chosen": ", ".join(f"{k}={v}" for k, v in record["chosen"].items()),
             "kvw_chosen_val": (f"validation H {record['chosen_val']['h']:.1f} (Mem {record['chosen_val']['mem']:.1f}, "
                                f"For {record['chosen_val']['for']:.1f}) against zero-shot CLIP's "
                                f"{sum(zero) / len(zero):.1f} on the same images")}
    return frame.round(2).set_index("rank"), facts


def protocol_facts(table: pd.DataFrame, tier: str) -> dict[str, str]:
    """The counts the page's sentence under :func:`protocol_table` glues."""
    return {"proto_n_fields": str(len(table)),
            "proto_n_choices": str(int((table["our choice [G]"] == "yes").sum())),
            "proto_n_reduced": str(int((table[f"{tier} differs"] == "yes").sum()))}


def tier_presets() -> pd.DataFrame:
    """Per tier: the seeds a table averages, the missing runs one execution may train, and the field overrides."""
    presets = pd.DataFrame({
        "seeds per cell": {t: ", ".join(map(str, TIER_SEEDS.get(t, ()))) for t in TIERS},
        "new runs per execution (default)": {t: TIER_RUN_BUDGET.get(t) for t in TIERS},
        "field overrides": {t: ", ".join(f"{k}={v}" for k, v in TIERS[t].items()) for t in TIERS},
    })
    presets.index.name = "tier"
    return presets


def method_options_table(methods: Any = "all") -> pd.DataFrame:
    """The registered methods' own options (``method_options``): default and doc line; ``methods``: "all" or a
    list (comma-separated) of those to show."""
    rows = []
    for name in list_methods():
        cls = get_method(name).options_cls
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else "required")
            doc = f.metadata.get("doc", "")
            rows.append({"method": name, "option": f.name, "default": _cell(default), "our choice [G]":
                         "yes" if "[G" in doc else "", "doc": doc})
        if not dataclasses.fields(cls):
            rows.append({"method": name, "option": "–", "default": "", "our choice [G]": "",
                         "doc": (cls.__doc__ or "").strip()})
    table = pd.DataFrame(rows)
    return table if methods == "all" else table[table["method"].isin(parse_list(methods))]


def choice_docs(modules: tuple[str, ...] = CHOICE_MODULES) -> Iterator[tuple[str, str]]:
    """(module, docstring) of each module that this version of the library has."""
    for name in modules:
        try:
            doc = importlib.import_module(name).__doc__ or "(no documentation)"
        except ImportError:
            continue  # not part of this version of adu_core
        yield name, rst_to_markdown(doc.strip())


def reference_note(dataset: str) -> str:
    """Which of the paper's datasets stands beside each of ours, and which domain stands for Table 4's Art."""
    paper = load_paper_numbers()
    reference = {ds: paper_reference(ds, paper, 1)
                 for ds in ("pacs", "synthetic", "office_home", "mini_domainnet", "imagenet")}
    domains = tuple(get_dataset(dataset).domains)
    return ("**The paper's numbers beside ours** (Table 1's dataset for each of ours): "
            + "; ".join(f"{dataset_name(k)} → {dataset_name(v)}" for k, v in reference.items())
            + f". Table 4 forgets Office-Home's Art; on {dataset} its page forgets "
            + f"`{analogous_domain(domains, 'art')}`.")


def inconsistencies() -> tuple[int, pd.DataFrame]:
    """The paper's values printed differently in two places: (number of table cells, the values per table)."""
    paper = load_paper_numbers()
    flagged = paper[paper["flag"] != ""]
    n_cells = flagged[["dataset", "n_forget", "method"]].drop_duplicates().shape[0]
    table = flagged.pivot_table(index=["flag", "dataset", "n_forget", "metric"], columns="table", values="value",
                                aggfunc="first").rename(columns=lambda t: f"Table {t}")
    return n_cells, table
