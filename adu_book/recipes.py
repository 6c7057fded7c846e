"""The paper's text against the authors' released code: which runs compare the two recipes, and how.

Two recipes, one code path (``RunConfig.recipe``, :data:`adu_core.config.RECIPES`): ``paper`` follows the paper's
text and is every page's default; ``authors_code`` turns on every switch in which the released code (commit
50a43db) differs. Two grids measure what the difference does:

* **Table 1 under each recipe**: ADU and the Baseline on every forget set and seed, so that ADU − Baseline, ADU's
  Mem and For are read under both recipes (the paper-text runs are Table 1's own);
* **one switch at a time**: each difference of the released code alone, on the paper's recipe, for ADU and (when
  the switch changes it) the Baseline, on the one-domain forget sets; its effect is the paired change it makes to
  ADU − Baseline and to ADU's Mem against the paper's recipe.

The switches are fixed here, before any run: the grid is not chosen after seeing results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from adu_core.config import RECIPES

from .effects import paired
from .names import METHOD_NAMES
from .plans import TABLE3_VARIANTS, PlannedRun, Variant, parse_ints, parse_list

__all__ = ["RECIPE_NAMES", "SWITCHES", "Switch", "page_plan", "recipe_effects", "recipe_plan", "recipe_variants",
           "select_switches", "switch_effects", "switch_plan", "table3_variants"]

RECIPE_NAMES = {"paper": "paper's text", "authors_code": "authors' code"}


@dataclass(frozen=True)
class Switch:
    """One difference of the released code, as config overrides on the paper's recipe."""

    key: str
    label: str
    overrides: tuple[tuple[str, Any], ...]
    changes_baseline: bool  # the Baseline has the part it changes (text side, loss, batches, crops)


# In the order of the protocol page's table; together they are exactly the authors_code preset (tested).
SWITCHES: tuple[Switch, ...] = (
    Switch("text_prompts", "learnable text prompts", (("text_ctx", "@n_ctx"),), True),
    Switch("instapg", "InstaPG as released (one block, last prompted layer)",
           (("instapg_form", "authors"), ("instapg_layers", (-1,))), False),
    Switch("forget_loss", "L_forget = −entropy", (("forget_loss", "neg_entropy"),), True),
    Switch("mmd_weight", "MMD weight 0.5 (not λ = 10)", (("lam", 0.5),), False),
    Switch("mmd_input", "MMD on the domain logits", (("mmd_on", "domain_logits"),), False),
    Switch("mmd_kernel", "one Gaussian, per-pair median bandwidth", (("mmd_median", "pair"), ("mmd_bandwidths", (2.0,))),
           False),
    Switch("domain_head", "domain classifier with |D|·|C| outputs", (("domain_head", "domains_x_classes"),), False),
    Switch("batch", "batch 128, random sampler", (("batch_size", 128), ("sampler", "random")), True),
    Switch("augment", "crops of the whole image, bicubic", (("augment", "full_image"),), True),
)


def switches_as_preset() -> dict[str, Any]:
    """Every switch's overrides merged: what ``RECIPES["authors_code"]`` must be."""
    return {k: v for s in SWITCHES for k, v in s.overrides}


def _recipe_overrides(recipe: str) -> tuple[tuple[str, Any], ...]:
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    return () if recipe == "paper" else (("recipe", recipe),)


def recipe_variants(recipe: str, methods: Sequence[str] = ("baseline", "adu")) -> list[Variant]:
    """Table 1's rows of ``methods`` under ``recipe`` (the paper's recipe: Table 1's own runs)."""
    over = _recipe_overrides(recipe)
    suffix = "" if recipe == "paper" else f" ({RECIPE_NAMES[recipe]})"
    return [Variant(m if recipe == "paper" else f"{m}/{recipe}", METHOD_NAMES.get(m, m) + suffix, m, over)
            for m in methods]


def recipe_plan(page, recipes: Sequence[str], forget: Sequence[Sequence[str]],
                methods: Sequence[str] = ("baseline", "adu")) -> list[PlannedRun]:
    """ADU and the Baseline under each recipe, labelled ``recipe`` and ``method``."""
    plan: list[PlannedRun] = []
    for recipe in recipes:
        for v in recipe_variants(recipe, methods):
            plan += page.plan([v], forget, recipe=recipe, method_key=v.method)
    return plan


def switch_plan(page, forget: Sequence[Sequence[str]], switches: Sequence[Switch] = SWITCHES) -> list[PlannedRun]:
    """The paper's-recipe ADU and Baseline (``switch="none"``), then each switch alone for ADU and, when it changes
    it, the Baseline; labelled ``switch`` and ``method_key``."""
    plan: list[PlannedRun] = []
    for m in ("baseline", "adu"):
        plan += page.plan([Variant(m, METHOD_NAMES[m], m)], forget, switch="none", method_key=m)
    for s in switches:
        for m in ("baseline", "adu") if s.changes_baseline else ("adu",):
            plan += page.plan([Variant(f"{m}/{s.key}", f"{METHOD_NAMES[m]}, {s.label}", m, s.overrides)], forget,
                              switch=s.key, method_key=m)
    return plan


def _gap(runs: pd.DataFrame, adu: pd.DataFrame, base: pd.DataFrame, metric: str = "h") -> pd.DataFrame:
    """ADU − Baseline of ``metric`` per (forget set, seed), from two frames of runs."""
    a = adu.set_index(["forget", "seed"])[metric]
    b = base.set_index(["forget", "seed"])[metric]
    return (a - b).dropna().rename("gap").reset_index()


def switch_effects(runs: pd.DataFrame, switches: Sequence[Switch] = SWITCHES) -> pd.DataFrame:
    """Per switch, paired over (forget set, seed) against the paper's recipe: the change it makes to ADU − Baseline
    in H, and to ADU's Mem, For and H. One row per switch; effects as :func:`adu_book.effects.paired` entries."""
    rows = []
    if runs is None or runs.empty:
        return pd.DataFrame(columns=["switch", "label", "gap_h", "adu_mem", "adu_for", "adu_h"])

    def of(switch: str, method: str) -> pd.DataFrame:
        return runs[(runs["switch"] == switch) & (runs["method_key"] == method)]

    base_gap = _gap(runs, of("none", "adu"), of("none", "baseline")).assign(variant="paper")
    for s in switches:
        base_s = of(s.key, "baseline") if s.changes_baseline else of("none", "baseline")
        gap = pd.concat([base_gap, _gap(runs, of(s.key, "adu"), base_s).assign(variant=s.key)])
        adu = pd.concat([of("none", "adu").assign(variant="paper"), of(s.key, "adu").assign(variant=s.key)])
        row: dict[str, Any] = {"switch": s.key, "label": s.label,
                               "gap_h": paired(gap, s.key, "paper", "gap").get("all")}
        for metric in ("mem", "for", "h"):
            row[f"adu_{metric}"] = paired(adu, s.key, "paper", metric).get("all")
        rows.append(row)
    return pd.DataFrame(rows)


def recipe_effects(runs: pd.DataFrame, by: str | None = "n_forget") -> dict[str, dict[str, Any]]:
    """Per recipe: ADU − Baseline in H, Mem and For (paired), and ADU's own means; ``runs`` from
    :func:`recipe_plan` (labelled ``recipe``)."""
    out: dict[str, dict[str, Any]] = {}
    if runs is None or runs.empty:
        return out
    for recipe, part in runs.groupby("recipe", sort=False):
        part = part.assign(variant=part["method_key"])
        out[str(recipe)] = {metric: paired(part, "adu", "baseline", metric, by=by) for metric in ("h", "mem", "for")}
        adu = part[part["method_key"] == "adu"]
        out[str(recipe)]["adu_means"] = {m: float(adu[m].mean()) for m in ("h", "mem", "for")} if len(adu) else {}
    return out


def select_switches(spec) -> list[Switch]:
    """``"all"`` -> every switch; else the switches whose keys ``spec`` lists (comma-separated)."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return list(SWITCHES)
    keys = parse_list(spec)
    known = {s.key: s for s in SWITCHES}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise ValueError(f"unknown switches {unknown}; valid: {', '.join(known)}")
    return [known[k] for k in keys]


def table3_variants(recipe: str = "authors_code") -> list[Variant]:
    """Table 3's rows (CE x MMD inside DDL, InstaPG on) under ``recipe``."""
    over = _recipe_overrides(recipe)
    suffix = "" if recipe == "paper" else f" ({RECIPE_NAMES[recipe]})"
    return [Variant(v.key if recipe == "paper" else f"{v.key}/{recipe}", v.label + suffix, v.method,
                    over + v.overrides, v.switches) for v in TABLE3_VARIANTS]


def page_plan(page, recipes: str, forget_sets, n_forget, switch_n_forget, switches, table3_n_forget
              ) -> dict[str, list[PlannedRun]]:
    """The runs of the page "The paper and its code": ``table1`` (ADU and the Baseline under each recipe),
    ``switches`` (one switch at a time) and ``table3`` (Table 3's rows under the authors' code)."""
    names = parse_list(recipes)
    sets1 = page.forget(forget_sets, n_forget)
    sizes_s = parse_ints(switch_n_forget)
    sets_s = [s for s in page.forget(forget_sets, switch_n_forget) if len(s) in sizes_s]
    sizes_3 = parse_ints(table3_n_forget)
    sets_3 = [s for s in page.forget(forget_sets, table3_n_forget) if len(s) in sizes_3]
    return {"table1": recipe_plan(page, names, sets1),
            "switches": switch_plan(page, sets_s, select_switches(switches)),
            "table3": page.plan(table3_variants("authors_code"), sets_3, table=3, recipe="authors_code")}
