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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from adu_core.config import RECIPES

from .effects import paired
from .names import METHOD_NAMES
from .plans import TABLE3_VARIANTS, PlannedRun, Variant, parse_ints, parse_list

__all__ = ["RECIPE_NAMES", "SWITCHES", "Switch", "matched_cells", "page_plan", "recipe_effects", "recipe_plan",
           "recipe_variants", "select_switches", "switch_effects", "switch_plan", "table3_variants"]

RECIPE_NAMES = {"paper": "paper's text", "authors_code": "authors' code"}


@dataclass(frozen=True)
class Switch:
    """One difference of the released code, as config overrides on the paper's recipe."""

    key: str
    label: str
    overrides: tuple[tuple[str, Any], ...]
    changes_baseline: bool  # the Baseline has the part it changes (text side, loss, batches, crops)


# A short label and whether the Baseline has the part it changes, per switched difference of
# :mod:`adu_book.authors_code` (which holds the switches themselves, the paper's words and the code's file).
_SHORT: dict[str, tuple[str, bool]] = {
    "text_prompts": ("learnable text prompts", True),
    "instapg": ("InstaPG as released (one block, last prompted layer)", False),
    "forget_loss": ("L_forget = −entropy", True),
    "mmd_weight": ("MMD weight 0.5 (not λ = 10)", False),
    "mmd_on": ("MMD on the domain logits", False),
    "mmd_kernel": ("one Gaussian, per-pair median bandwidth", False),
    "domain_head": ("domain classifier with |D|·|C| outputs", False),
    "batch": ("batch 128, random sampler", True),
    "augment": ("crops of the whole image, bicubic", True),
}


def _switches() -> tuple[Switch, ...]:
    from .authors_code import DIFFERENCES

    switched = [d for d in DIFFERENCES if d.switch]
    missing = [d.key for d in switched if d.key not in _SHORT]
    if missing:
        raise ValueError(f"switched differences without a label here: {missing}")
    return tuple(Switch(d.key, _SHORT[d.key][0], tuple(d.switch.items()), _SHORT[d.key][1]) for d in switched)


# In the order of the page's table of differences; together they are exactly the authors_code preset (tested).
SWITCHES: tuple[Switch, ...] = _switches()


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


def switch_plan(page, forget: Sequence[Sequence[str]], switches: Sequence[Switch] = SWITCHES,
                reference_precision: str | None = None) -> list[PlannedRun]:
    """The paper's-recipe ADU and Baseline (``switch="none"``), then each switch alone for ADU and, when it changes
    it, the Baseline; labelled ``switch`` and ``method_key``.

    ``reference_precision`` (e.g. ``"fp32"``) plans the paper-recipe reference a second time at that precision
    (``switch="none"`` too): a switch is compared with the reference that ran at its own precision
    (:func:`switch_effects`), never across precisions."""
    plan: list[PlannedRun] = []
    for m in ("baseline", "adu"):
        plan += page.plan([Variant(m, METHOD_NAMES[m], m)], forget, switch="none", method_key=m)
        if reference_precision:
            plan += page.plan([Variant(f"{m}@{reference_precision}", f"{METHOD_NAMES[m]} ({reference_precision})", m,
                                       (("precision", reference_precision),))], forget, switch="none", method_key=m)
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

    precision = runs["precision"].fillna("unrecorded") if "precision" in runs else pd.Series("unrecorded", runs.index)

    def of(switch: str, method: str, at: str | None = None) -> pd.DataFrame:
        part = runs[(runs["switch"] == switch) & (runs["method_key"] == method)]
        return part if at is None else part[precision.loc[part.index] == at]

    for s in switches:
        # the precision the switch's runs ran at; the reference runs at the same one
        ran = precision.loc[of(s.key, "adu").index]
        at = ran.mode().iloc[0] if len(ran) else "unrecorded"  # a switch's runs share one precision (mode: safety)
        ref_adu, ref_base = of("none", "adu", at), of("none", "baseline", at)
        base_s = of(s.key, "baseline", at) if s.changes_baseline else ref_base
        gap = pd.concat([_gap(runs, ref_adu, ref_base).assign(variant="paper"),
                         _gap(runs, of(s.key, "adu", at), base_s).assign(variant=s.key)])
        adu = pd.concat([ref_adu.assign(variant="paper"), of(s.key, "adu", at).assign(variant=s.key)])
        row: dict[str, Any] = {"switch": s.key, "label": s.label,
                               "precision": at if ran.nunique() <= 1 else "mixed",
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


def page_plan(page, recipes: str, forget_sets, n_forget, switch_n_forget, switches, table3_n_forget,
              reference_precision: str | None = None) -> dict[str, list[PlannedRun]]:
    """The runs of the page "The paper and its code": ``table1`` (ADU and the Baseline under each recipe),
    ``switches`` (one switch at a time) and ``table3`` (Table 3's rows under the authors' code)."""
    names = parse_list(recipes)
    sets1 = page.forget(forget_sets, n_forget)
    sizes_s = parse_ints(switch_n_forget)
    sets_s = [s for s in page.forget(forget_sets, switch_n_forget) if len(s) in sizes_s]
    sizes_3 = parse_ints(table3_n_forget)
    sets_3 = [s for s in page.forget(forget_sets, table3_n_forget) if len(s) in sizes_3]
    return {"table1": recipe_plan(page, names, sets1),
            "switches": switch_plan(page, sets_s, select_switches(switches), reference_precision),
            "table3": page.plan(table3_variants("authors_code"), sets_3, table=3, recipe="authors_code")}


# --- what the page shows ---------------------------------------------------------------------------------------------
def split_runs(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The page's runs by grid (:func:`page_plan`'s parts, told apart by their labels)."""
    empty = runs.iloc[0:0] if runs is not None else pd.DataFrame()
    if runs is None or runs.empty:
        return {"table1": empty, "switches": empty, "table3": empty}
    switch = runs["switch"] if "switch" in runs else pd.Series(index=runs.index, dtype=object)
    table = runs["table"] if "table" in runs else pd.Series(index=runs.index, dtype=object)
    return {"table1": runs[switch.isna() & table.isna()], "switches": runs[switch.notna()],
            "table3": runs[table.notna()]}


def recipe_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Table 1's ADU and Baseline under each recipe: mean ± sample std over runs and n, per |D_forget|."""
    from .tables import ours_table

    if runs.empty:
        return ours_table(runs, ["recipe", "n_forget", "variant"])
    shown = runs.assign(recipe=runs["recipe"].map(lambda r: RECIPE_NAMES.get(r, r)),
                        variant=runs["method_key"].map(lambda m: METHOD_NAMES.get(m, m)))
    return ours_table(shown, ["recipe", "n_forget", "variant"],
                      key_names={"recipe": "recipe", "n_forget": "|D_forget|", "variant": "method"})


def _by_recipe(runs: pd.DataFrame, metric: str) -> dict[str, dict[Any, dict[str, Any]]]:
    out = {}
    for recipe in [r for r in RECIPE_NAMES if r in set(runs.get("recipe", []))]:
        part = runs[runs["recipe"] == recipe]
        out[recipe] = paired(part.assign(variant=part["method_key"]), "adu", "baseline", metric, by="n_forget")
    return out


def plot_recipe_effects(runs: pd.DataFrame):
    """Forest plot: ADU − Baseline in H, Mem and For under each recipe, per |D_forget| and over all."""
    from .forest import effect_rows, forest

    parts = []
    for metric, name in (("h", "H"), ("mem", "Mem"), ("for", "For")):
        for recipe, effects in _by_recipe(runs, metric).items():
            labelled = {f"{RECIPE_NAMES[recipe]}, {'all' if k == 'all' else f'|D_forget| = {k}'}": e
                        for k, e in sorted(effects.items(), key=lambda kv: (kv[0] != "all", str(kv[0])))}
            parts.append(effect_rows(labelled, group=f"ADU − Baseline, {name}"))
    rows = pd.concat(parts, ignore_index=True) if parts else effect_rows({}, "")
    return forest(rows, "difference (points)")


def switch_table(effects: pd.DataFrame) -> pd.DataFrame:
    """The one-switch grid in words: per switch, its change to ADU − Baseline (H) and to ADU's Mem, For and H."""
    if effects.empty:
        return pd.DataFrame(columns=["difference", "Δ (ADU − Baseline), H", "Δ ADU Mem", "Δ ADU For", "Δ ADU H"])
    return pd.DataFrame({
        "difference": effects["label"],
        "Δ (ADU − Baseline), H": effects["gap_h"].map(_text),
        "Δ ADU Mem": effects["adu_mem"].map(_text),
        "Δ ADU For": effects["adu_for"].map(_text),
        "Δ ADU H": effects["adu_h"].map(_text),
    }).set_index("difference")


def _text(e: Any) -> str:
    from .effects import effect_text

    return effect_text(e if isinstance(e, dict) else None)


def plot_switch_effects(effects: pd.DataFrame):
    """Forest plot of the one-switch grid: each switch's change to ADU − Baseline (H) and to ADU's Mem."""
    from .forest import effect_rows, forest

    def rows(column: str, group: str) -> pd.DataFrame:
        pairs = zip(effects.get("label", []), effects.get(column, []), strict=True)
        return effect_rows({label: e if isinstance(e, dict) else None for label, e in pairs}, group=group)

    gap, mem = rows("gap_h", "change in ADU − Baseline, H"), rows("adu_mem", "change in ADU's Mem")
    return forest(pd.concat([gap, mem], ignore_index=True), "points, switch on − paper's recipe")


def table3_table(table3: pd.DataFrame) -> pd.DataFrame:
    """Table 3's rows under the authors' code (its full row, CE + MMD, is Table 1's authors'-code ADU on the same
    forget sets and seeds): mean ± std and n, and each row − the full recipe in H, paired."""
    from .tables import ours_table

    full = next(v.label for v in table3_variants("authors_code") if v.key == "adu/authors_code")
    table = ours_table(table3, ["variant"], key_names={"variant": "row (authors' code)"})
    table["Δ H against CE + MMD"] = ["–" if row == full else _text(paired(table3, row, full, "h").get("all"))
                                      for row in table.index]
    return table


def matched_cells(t1: pd.DataFrame) -> pd.DataFrame:
    """The runs of the (forget set, seed) cells where every recipe has both ADU and the Baseline: the recipes
    compared on the same cells, not the paper's full grid against the authors' partial one."""
    if t1 is None or t1.empty:
        return t1
    cell = t1["forget"].astype(str) + "|" + t1["seed"].astype(str)
    groups = [set(cell[(t1["recipe"] == r) & (t1["method_key"] == m)])
              for r in t1["recipe"].unique() for m in ("adu", "baseline")]
    common = set.intersection(*groups) if groups else set()
    return t1[cell.isin(common)]


def _gap_effect(runs: pd.DataFrame, recipe: str) -> dict[str, Any] | None:
    """ADU − Baseline in H under ``recipe``, paired over the (forget set, seed) cells of ``runs``."""
    part = runs[runs["recipe"] == recipe] if len(runs) else runs
    return paired(part.assign(variant=part["method_key"]), "adu", "baseline", "h").get("all") if len(part) else None


def _whole_grid_clause(t1: pd.DataFrame, both: pd.DataFrame) -> str:
    """The paper recipe's ADU − Baseline on its whole grid, as a clause for the conclusion's parenthesis; said once
    when the shared cells are that whole grid, so the page does not print the same interval twice."""
    if _covers_paper_grid(t1, both):
        return "these cells are the paper recipe's whole grid"
    return "on the paper recipe's whole grid: " + _compare_gap(t1, "paper")


def _covers_paper_grid(t1: pd.DataFrame, both: pd.DataFrame) -> bool:
    """Whether the cells both recipes share (:func:`matched_cells`) hold every run of the paper recipe."""
    paper = t1[t1["recipe"] == "paper"] if len(t1) else t1
    return bool(len(paper)) and len(both[both["recipe"] == "paper"]) == len(paper)


def _compare_gap(runs: pd.DataFrame, recipe: str, labelled: bool = False) -> str:
    """ADU − Baseline in H under ``recipe`` as a sentence, paired over the (forget set, seed) cells of ``runs``;
    ``labelled`` names the recipe after "ADU's H", for pages where the sentence stands without a recipe heading."""
    from .facts import compare

    subject = f"ADU's H ({RECIPE_NAMES[recipe]})" if labelled else "ADU's H"
    return compare(_gap_effect(runs, recipe), subject, "the Baseline's", unit="H points")


def page_facts(runs: Mapping[str, pd.DataFrame], effects: pd.DataFrame,
               planned: Mapping[str, Sequence[PlannedRun]]) -> dict[str, str]:
    """The glued phrases of the page's conclusion: ADU − Baseline under each recipe (the paper's on its whole grid,
    and both on the cells the two share), ADU's Mem and For under each and their change between recipes, paired;
    whether the one-switch grid is complete (``planned``: :func:`page_plan`'s parts)."""
    from .facts import compare

    t1 = runs["table1"]
    both = matched_cells(t1)
    n_sets = both["forget"].nunique() if len(both) else 0
    facts: dict[str, str] = {
        "ac_matched": (f"{n_sets} forget set{'s' if n_sets != 1 else ''} (|D_forget| = "
                       f"{', '.join(str(k) for k in sorted(both['n_forget'].unique()))}) × "
                       f"seeds {', '.join(str(s) for s in sorted(both['seed'].unique()))}" if len(both)
                       else "no cell has runs under both recipes yet"),
        "ac_gap_paper_all": _whole_grid_clause(t1, both)}
    adu = both[both["method_key"] == "adu"] if len(both) else both
    for recipe, short in (("paper", "paper"), ("authors_code", "authors")):
        facts[f"ac_gap_{short}"] = _compare_gap(both, recipe)
        mine = adu[adu["recipe"] == recipe] if len(adu) else adu
        for metric in ("mem", "for"):
            facts[f"ac_{metric}_{short}"] = (f"{mine[metric].mean():.2f} % (n = {len(mine)} runs)" if len(mine)
                                             else "not measured yet")
    for metric, label in (("mem", "Mem"), ("for", "For")):
        e = paired(adu, "authors_code", "paper", metric, key="recipe").get("all") if len(adu) else None
        facts[f"ac_{metric}_change"] = compare(e, f"ADU's {label} under the authors' code",
                                               "under the paper's text", unit="points")
    facts["ac_precision"] = precision_effect(runs["switches"])
    facts["ac_top_gap"] = _top(effects, "gap_h", "ADU − Baseline in H")
    facts["ac_top_mem"] = _top(effects, "adu_mem", "ADU's Mem")
    facts["ac_switch_grid"] = _grid_state(len(runs["switches"]), len(planned["switches"]))
    return facts


def _grid_state(found: int, planned: int) -> str:
    """The one-switch grid's completeness, as the sentence that qualifies its ranking."""
    if found >= planned:
        return f"The one-switch grid is complete ({planned} runs)."
    return (f"The one-switch grid is not complete ({found} of {planned} runs): each switch's n is stated, and a "
            "switch without paired runs is not ranked.")


def _top(effects: pd.DataFrame, column: str, what: str) -> str:
    """Which switch moves ``column`` most, as a clause: the largest change among the switches whose interval
    excludes 0 (a larger point estimate whose interval covers 0 is named as such, never as the one that moves it
    most), or, when no interval excludes 0, that none does and which estimate is largest."""
    from .effects import effect_text

    if effects.empty:
        return "not measured yet"
    measured = [(row["label"], row[column]) for _, row in effects.iterrows()
                if isinstance(row[column], dict) and row[column].get("n")]
    if not measured:
        return "not measured yet"
    def size(le):
        return abs(le[1]["mean"])

    largest = max(measured, key=size)
    clear = [le for le in measured if le[1]["excludes_zero"]]
    if not clear:
        return (f"no switch changes {what} measurably (none of {len(measured)}); the largest point estimate is "
                f"{largest[0]}'s, {effect_text(largest[1])} points")
    label, e = max(clear, key=size)
    text = (f"the switch that moves {what} most is {label}, by {effect_text(e)} points; {len(clear)} of "
            f"{len(measured)} switches change it measurably")
    others = [lbl for lbl, _ in clear if lbl != label]
    if others:
        text += f" (also: {', '.join(others)})"
    if largest[0] != label:
        text += (f"; {largest[0]} has a larger point estimate, {effect_text(largest[1])} points, but shows no "
                 "measurable difference from the paper's recipe")
    return text


def table1_by_recipe(table1: pd.DataFrame, authors: pd.DataFrame) -> pd.DataFrame:
    """Table 1's ADU and Baseline runs (the paper's recipe) and those under the authors' code, labelled ``recipe``
    and ``method_key`` for :func:`plot_recipe_effects` and :func:`gap_sentences`."""
    parts = []
    if len(table1):
        paper = table1[table1["method"].isin(["baseline", "adu"])]
        parts.append(paper.assign(recipe="paper", method_key=paper["method"]))
    if len(authors):
        parts.append(authors.assign(recipe="authors_code", method_key=authors["method"]))
    return pd.concat(parts, ignore_index=True) if parts else table1.iloc[0:0]


def gap_sentences(runs: pd.DataFrame) -> dict[str, str]:
    """Per recipe, ADU − Baseline in H as one sentence naming both sides, the unit and the recipe: the paper's on its
    whole grid (``main_gap_paper``), and both on the cells they share (``main_gap_{paper,authors}_matched``)."""
    both = matched_cells(runs)
    return {"main_gap_paper": _compare_gap(runs, "paper", labelled=True),
            "main_gap_authors_matched": _compare_gap(both, "authors_code", labelled=True),
            # the same interval twice would read as a second finding
            "main_gap_paper_matched": ("these cells are the paper recipe's whole grid, so its figure is the one above"
                                       if _covers_paper_grid(runs, both) else _compare_gap(both, "paper", labelled=True))}


def precision_effect(switch_runs: pd.DataFrame) -> str:
    """The paper recipe's reference run twice, at the precision Table 1 ran in and at the one the switches ran in
    (``switch="none"``): how much the precision alone moves ADU's and the Baseline's H, paired."""
    from .facts import compare

    ref = switch_runs[switch_runs["switch"] == "none"] if len(switch_runs) else switch_runs
    if ref.empty or "precision" not in ref or ref["precision"].nunique() < 2:
        return "not measured (the reference ran at one precision only)"
    lo, hi = sorted(ref["precision"].dropna().unique())[:2]
    parts = []
    for m in ("adu", "baseline"):
        part = ref[ref["method_key"] == m]
        e = paired(part.assign(variant=part["precision"]), lo, hi, "h").get("all")
        parts.append(compare(e, f"{METHOD_NAMES[m]}'s H in {lo}", f"in {hi}", unit="H points"))
    return "; ".join(parts)
