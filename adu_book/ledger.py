"""The claims ledger: each claim, the paper's evidence, ours per tier and recipe, and a verdict from fixed rules.

A row is a claim of the paper or of this project (``whose``), measured under a recipe (the paper's text, and for the
claims on ADU's training also the authors' released code). Our evidence is one paired effect
(:mod:`adu_book.effects`) of two rows of the claim's page, read from the results store (nothing is trained here).
The verdict follows written rules, never judgement, on the effect's primary interval (stratified over forget sets,
seeds as replicates; over forget sets where a grid has one seed):

* a *direction* claim ("ADU raises H") is **supported** when the 95 % interval of the effect excludes 0 in the
  claim's direction, **contradicted** when it excludes 0 the other way, **inconclusive** when it covers 0 (or when
  there is one pair only, so no interval);
* a *stability* claim ("H stays the same over γ") is **supported** when the whole interval lies within
  ±:data:`STABILITY_MARGIN` H points, **contradicted** when it lies wholly outside that band, **inconclusive**
  otherwise;
* a *non-inferiority* claim ("matches ADU") is **supported** when the whole interval lies above
  −:data:`NONINFERIORITY_MARGIN` H points (no worse by more than the margin; better counts as matching),
  **contradicted** when it lies wholly below it, **inconclusive** otherwise;
* **not tested here**: no run of that tier (and recipe) exists for the claim;
* **qualitative**: the paper shows a figure only; the ledger gives our measured numbers and no verdict.

The same rule is applied to the interval over forget sets ("would it hold for another forget set"); a row whose two
verdicts differ is marked: its verdict rests on the choice of interval. Each claim compares like with like: the
paper's side is computed with our side's definition, on the |D_forget| our runs cover.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .effects import best_by, effect_text, interval_text, paired
from .facts import signed
from .names import METHOD_NAMES, PAPER_METHODS, dataset_name
from .plans import (
    PROBE_GATE,
    TABLE2_VARIANTS,
    TABLE3_VARIANTS,
    PlannedRun,
    Variant,
    method_variants,
    table1_variants,
    tier_grid,
)

__all__ = ["CLAIMS", "NONINFERIORITY_MARGIN", "RECIPE_LABELS", "RECIPE_ROWS", "STABILITY_MARGIN", "VERDICTS", "Claim",
           "checked", "collect", "config_mismatches", "display", "evidence_plans", "ledger_rows", "recipe_view",
           "runs_csv", "verdict", "verdict_counts"]

STABILITY_MARGIN = 2.0  # H points: the band a "stable" claim must stay within
NONINFERIORITY_MARGIN = 2.0  # H points a "matches" claim may lose and still match (the stability band's width)
STABILITY_TOP = 100.0  # the largest γ and λ of the sensitivity page's grids, set against the default
VERDICTS = ("supported", "contradicted", "inconclusive", "not tested here", "qualitative")
RECIPE_LABELS = {"paper": "paper's text", "authors_code": "authors' code"}
KVW = METHOD_NAMES.get("kvw", "kvw")  # the row's label, as Table 1 writes it (method_variants)
# Per evidence table, the rows (variant keys) whose training the recipe changes; the other rows (LP++, CLIPFit,
# BBF, zero-shot CLIP, the gates) are the same under every recipe.
RECIPE_ROWS: dict[str, tuple[str, ...]] = {"t1": ("adu", "baseline"),
                                           "t3": ("instapg_only", "mmd_only", "ce_only", "adu")}


def verdict(effect: Mapping[str, Any] | None, direction: str, margin: float | None = None) -> str:
    """The rule of the module doc for one interval (``direction``: "+", "-", "=" stability, ">=" non-inferiority,
    "q" qualitative). ``effect``: a :func:`adu_book.effects.paired` entry or one of its intervals."""
    if direction == "q":
        return "qualitative"
    if not effect or not effect.get("n"):
        return "not tested here"
    lo, hi = effect.get("lo", math.nan), effect.get("hi", math.nan)
    if effect["n"] < 2 or math.isnan(lo) or math.isnan(hi):
        return "inconclusive"
    if direction == "=":
        m = STABILITY_MARGIN if margin is None else margin
        if -m <= lo and hi <= m:
            return "supported"
        if lo > m or hi < -m:
            return "contradicted"
        return "inconclusive"
    if direction == ">=":
        m = NONINFERIORITY_MARGIN if margin is None else margin
        return "supported" if lo > -m else "contradicted" if hi < -m else "inconclusive"
    sign = 1 if direction == "+" else -1
    if sign * lo > 0 and sign * hi > 0:
        return "supported"
    if sign * lo < 0 and sign * hi < 0:
        return "contradicted"
    return "inconclusive"


# --- the runs a claim rests on --------------------------------------------------------------------------------------
def _sweep_variant(field_: str, value: Any) -> Variant:
    return Variant(f"{field_}={value}", f"{value:g}" if isinstance(value, float) else str(value), "adu",
                   ((field_, value),))


def alternative_recipes() -> tuple[str, ...]:
    """The recipes besides the paper's text that this version of ``adu_core`` can run."""
    from adu_core import config

    return tuple(r for r in getattr(config, "RECIPES", {}) if r != "paper")


def _in_recipe(v: Variant, recipe: str) -> Variant:
    over = () if recipe == "paper" else (("recipe", recipe),)
    return Variant(v.key if recipe == "paper" else f"{v.key}/{recipe}", v.label, v.method, over + v.overrides,
                   v.switches)


def _tagged(pg, name: str, variants: Sequence[Variant], forget: Sequence[Sequence[str]]) -> list[PlannedRun]:
    """The evidence ``name``'s rows under the paper's recipe, and its recipe-dependent rows (:data:`RECIPE_ROWS`)
    again under each alternative recipe; every run labelled ``recipe`` and ``recipe_specific``."""
    specific = set(RECIPE_ROWS.get(name, ()))
    plan: list[PlannedRun] = []
    for v in variants:
        plan += pg.plan([v], forget, recipe="paper", recipe_specific=v.key in specific)
    for recipe in alternative_recipes() if specific else ():
        for v in variants:
            if v.key in specific:
                plan += pg.plan([_in_recipe(v, recipe)], forget, recipe=recipe, recipe_specific=True)
    return plan


def evidence_plans(pg) -> dict[str, list[PlannedRun]]:
    """Per piece of evidence, the runs it reads: the same configs (and folders) as the pages the claims link to."""
    from adu_core.methods import list_methods

    all_sets = pg.forget("all", "1,2,3")
    singles = pg.forget("all", "1")
    art = pg.forget_like_art("auto", "1")
    figure = pg.figure_forget("all", "1")  # the sweep pages' default: every one-domain forget set
    have = set(list_methods())
    methods = [m for m in ("zeroshot", "gate", "lp++", "clipfit", "bbf", "baseline", "adu", "kvw") if m in have]
    return {
        "t1": _tagged(pg, "t1", table1_variants(methods), all_sets),
        "t2": _tagged(pg, "t2", TABLE2_VARIANTS, pg.forget("all", tier_grid("ablation", "n_forget", None, pg.tier))),
        "t3": _tagged(pg, "t3", TABLE3_VARIANTS, singles),
        "t4": _tagged(pg, "t4", method_variants(["zeroshot", "baseline", "adu"]), art),
        "gamma": _tagged(pg, "gamma", [_sweep_variant("gamma", STABILITY_TOP), Variant("adu", "default", "adu")],
                         figure),
        "lam": _tagged(pg, "lam", [_sweep_variant("lam", STABILITY_TOP), Variant("adu", "default", "adu")], figure),
        "shots": _tagged(pg, "shots", [Variant("adu", "ADU@8", "adu"), Variant("adu@16", "ADU@16", "adu",
                                                                                (("shots", 16),)),
                                       Variant("baseline", "Baseline@8", "baseline"),
                                       Variant("baseline@16", "Baseline@16", "baseline", (("shots", 16),))], figure),
        "pseudo": _tagged(pg, "pseudo", [Variant("adu", "full labels", "adu"),
                                         Variant("adu/zeroshot@0", "zero-shot pseudo-labels, no domain label", "adu",
                                                 (("domain_label_fraction", 0.0), ("pseudo_labeler", "zeroshot"))),
                                         Variant("adu/kmeans@0.05", "k-means pseudo-labels, 5 % labelled", "adu",
                                                 (("domain_label_fraction", 0.05), ("pseudo_labeler", "kmeans")))],
                          figure),
    }


# Fields that say where and how fast a run ran, not what it computed: a run.json may differ from the plan in them.
RUNTIME_FIELDS = ("device", "precision", "checkpoint_interval_s", "grad_checkpointing", "eval_batch_size",
                  "data_root")


def config_mismatches(planned: Any, recorded: Mapping[str, Any]) -> list[str]:
    """Where a run.json's ``config`` differs from the planned ``RunConfig`` (runtime fields aside), one
    ``"field: recorded X, planned Y"`` each. A field the run predates (absent from its config) matches when the plan
    holds that field's default, which is what the older code ran."""
    from dataclasses import MISSING, fields

    want = json.loads(json.dumps(planned.to_dict()))
    defaults = {f.name: (f.default if f.default is not MISSING else f.default_factory())  # type: ignore[misc]
                for f in fields(planned)}
    out = []
    for key, value in want.items():
        if key in RUNTIME_FIELDS:
            continue
        if key not in recorded:
            if value != json.loads(json.dumps(defaults.get(key))):
                out.append(f"{key}: absent (older run), planned {value!r}")
        elif recorded[key] != value:
            out.append(f"{key}: recorded {recorded[key]!r}, planned {value!r}")
    return out


def checked(status) -> tuple[pd.DataFrame, list[str]]:
    """The runs of ``status`` (:class:`adu_book.runs.RunStatus`) whose run.json holds the config its folder was
    planned for, and one line per run that does not (left out: a folder holding another run's result)."""
    from pathlib import Path

    from .runs import short_path

    runs = status.runs
    if not len(runs) or "path" not in runs:
        return runs, []
    shown = set(runs["path"].astype(str))
    bad: dict[str, str] = {}
    for p in status.planned:
        path = Path(p.labels["_path"]) / "run.json"
        if str(path) not in shown or str(path) in bad:
            continue
        diff = config_mismatches(p.cfg, json.loads(path.read_text())["config"])
        if diff:
            bad[str(path)] = (f"{short_path(path)}: its config differs from the plan ({'; '.join(diff[:3])}); "
                              "left out (delete it to train the planned run)")
    return runs[~runs["path"].astype(str).isin(bad)], list(bad.values())


def collect(pg) -> dict[str, pd.DataFrame]:
    """The runs of every claim's page that exist under the page's results store (budget 0: nothing is trained),
    each checked against its plan (:func:`checked`); ``"_problems"`` lists the runs left out."""
    saved, pg.budget = pg.budget, 0
    out: dict[str, pd.DataFrame] = {}
    problems: list[str] = []
    try:
        for name, plan in evidence_plans(pg).items():
            runs, bad = checked(pg.ensure(plan, progress=False))
            out[name] = runs
            problems += [b for b in bad if b not in problems]
    finally:
        pg.budget = saved
    out["_problems"] = pd.DataFrame({"problem": problems})
    return out


def recipe_view(runs: pd.DataFrame | None, recipe: str) -> pd.DataFrame:
    """The rows of an evidence table under ``recipe``: its recipe-dependent rows trained under it, and the rows the
    recipe does not change."""
    if runs is None:
        return pd.DataFrame()
    if "recipe" not in runs:  # runs without recipe labels are the default recipe's
        return runs if recipe == "paper" else runs.iloc[0:0]
    specific = runs["recipe_specific"].astype(bool) if "recipe_specific" in runs else False
    return runs[(runs["recipe"] == recipe) | ~specific]


# --- the claims -----------------------------------------------------------------------------------------------------
Rows = str | Callable[[pd.DataFrame], "str | None"]


@dataclass(frozen=True)
class Claim:
    """One claim of the ledger: what is claimed, where, by whom, and the two rows whose paired difference measures
    it (``a`` − ``b`` of ``metric`` in the evidence table ``evidence``; a row may be chosen from the runs, e.g. the
    strongest rival). ``paper(paper_numbers, sizes)`` gives the paper's side for the |D_forget| ``sizes`` ours
    covers (None: all). ``depends`` names the testbed properties its verdict rests on (:mod:`adu_book.regime`)."""

    key: str
    claim: str
    source: str  # the paper's table or figure
    page: str  # the book page with the details
    direction: str  # "+", "-", "=" (stability), ">=" (non-inferiority) or "q" (qualitative)
    evidence: str  # the evidence table (:func:`evidence_plans`); "" for qualitative claims
    a: Rows | None
    b: Rows | None
    effect_of: str  # what the effect is, in words
    paper: Callable[[pd.DataFrame, Sequence[int] | None], str]
    metric: str = "h"
    whose: str = "paper"  # "paper": the paper claims it; "ours": this project's own question
    recipes: tuple[str, ...] = ("paper",)
    depends: tuple[str, ...] = field(default=())

    def rows(self, runs: pd.DataFrame) -> tuple[str | None, str | None]:
        """The labels of the two rows this claim compares, on these runs."""
        def pick(r: Rows | None) -> str | None:
            return r(runs) if callable(r) else r

        return pick(self.a), pick(self.b)

    def effect(self, evidence: Mapping[str, pd.DataFrame] | None, recipe: str = "paper") -> dict[str, Any] | None:
        """The paired effect ``a − b`` under ``recipe`` (None: no runs, or a qualitative claim)."""
        if self.direction == "q" or evidence is None:
            return None
        runs = recipe_view(evidence.get(self.evidence), recipe)
        if runs is None or not len(runs):
            return None
        a, b = self.rows(runs)
        return paired(runs, a, b, self.metric).get("all") if a and b else None


def _strongest_rival(runs: pd.DataFrame, me: str = "ADU") -> str | None:
    """The paper's Table 1 row (not ours: zero-shot, the gates, KVW) with the highest mean H, on the (forget set,
    seed) pairs every one of them has."""
    rivals = {METHOD_NAMES.get(m, m) for m in PAPER_METHODS} - {me}
    if not len(runs):
        return None
    best = best_by(runs[runs["variant"].isin(rivals)], by=None).get("all")
    return str(best["best"]) if best else None


def _label(table: Sequence[Variant], key: str) -> str:
    return next(v.label for v in table if v.key == key)


T2_SINGLES = (_label(TABLE2_VARIANTS, "instapg_only"), _label(TABLE2_VARIANTS, "ddl_only"))


def _better_single(runs: pd.DataFrame) -> str | None:
    """The single component (InstaPG only, DDL only) with the higher mean H, on the pairs both have."""
    best = best_by(runs[runs["variant"].isin(T2_SINGLES)], by=None).get("all") if len(runs) else None
    return str(best["best"]) if best else None


# --- the paper's side, with our definitions ---------------------------------------------------------------------------
def _cells(paper: pd.DataFrame, table: int, sizes: Sequence[int] | None, metric: str = "h") -> pd.DataFrame:
    part = paper[(paper["table"] == table) & (paper["metric"] == metric)]
    return part if sizes is None else part[part["n_forget"].isin(list(sizes))]


def _select(part: pd.DataFrame, sel: Mapping[str, Any]) -> pd.Series:
    rows = part
    for k, v in sel.items():
        rows = rows[rows[k] == v]
    return rows.groupby(["dataset", "n_forget"])["value"].mean()


def _sizes_note(sizes: Sequence[int] | None) -> str:
    return "mean over |D_forget|" if sizes is None else f"|D_forget| = {', '.join(map(str, sorted(sizes)))}" + (
        ", mean" if len(sizes) > 1 else "")


def _per_dataset(diff: pd.Series) -> str:
    diff = diff.dropna()
    return "; ".join(f"{dataset_name(ds)} {signed(float(g.mean()))}" for ds, g in diff.groupby(level=0)) or "–"


def paper_gap(table: int, a: Mapping[str, Any], b: Mapping[str, Any], words: str) -> Callable:
    """The paper's ``a − b`` (rows selected by column values) per dataset, over the |D_forget| ours covers."""
    def side(paper: pd.DataFrame, sizes: Sequence[int] | None) -> str:
        part = _cells(paper, table, sizes)
        return f"{words}, H ({_sizes_note(sizes)}): " + _per_dataset(_select(part, a) - _select(part, b))
    return side


def _paper_vs_best_of(table: int, me: Mapping[str, Any], others: Sequence[tuple[str, Mapping[str, Any]]],
                      words: str) -> Callable:
    """The paper's ``me`` − the one of ``others`` with the highest mean H over the sizes (per dataset), as ours
    picks the strongest row on its runs; the row picked is named."""
    def side(paper: pd.DataFrame, sizes: Sequence[int] | None) -> str:
        part = _cells(paper, table, sizes)
        mine = _select(part, me)
        out = []
        for ds in dict.fromkeys(mine.index.get_level_values(0)):
            best_name, best = None, None
            for name, sel in others:
                s = _select(part, sel)
                s = s[s.index.get_level_values(0) == ds]
                if len(s) and (best is None or s.mean() > best.mean()):
                    best_name, best = name, s
            if best is None:
                continue
            gap = (mine[mine.index.get_level_values(0) == ds] - best).dropna()
            out.append(f"{dataset_name(ds)} {signed(float(gap.mean()))} (vs {best_name})")
        return f"{words}, H ({_sizes_note(sizes)}): " + ("; ".join(out) or "–")
    return side


def _text(words: str) -> Callable:
    return lambda paper, sizes: words


def _paper_t4(paper: pd.DataFrame, sizes: Sequence[int] | None = None) -> str:
    t4 = paper[paper["table"] == 4]
    return "Office-Home, Art forgotten, domain accuracy: " + "; ".join(
        f"{METHOD_NAMES.get(m, m)} {v:.2f} %" for m, v in zip(t4["method"], t4["value"], strict=True))


_RIVALS = [(METHOD_NAMES[m], {"method": m}) for m in PAPER_METHODS if m != "adu"]
_SINGLES = [("InstaPG only", {"instapg": True, "ddl": False}), ("DDL only", {"instapg": False, "ddl": True})]
_BOTH, _NONE = {"instapg": True, "ddl": True}, {"instapg": False, "ddl": False}
_STABLE = "\"Performance stabilizes once γ and λ exceed certain thresholds\" (no values printed)"
T2, T3 = {v.key: v.label for v in TABLE2_VARIANTS}, {v.key: v.label for v in TABLE3_VARIANTS}
BOTH_RECIPES = ("paper", "authors_code")

CLAIMS: tuple[Claim, ...] = (
    Claim("t1_best", "ADU has the best H of all methods, at every |D_forget| and on every dataset", "Table 1",
          "main_results", "+", "t1", "ADU", _strongest_rival, "ADU − the strongest of the paper's other rows by mean H",
          _paper_vs_best_of(1, {"method": "adu"}, _RIVALS, "ADU − the strongest other row by mean H"),
          recipes=BOTH_RECIPES, depends=("separable", "classes", "tuning_gain", "trained_mem")),
    Claim("t1_baseline", "ADU's H is far above the Baseline's (vision prompts with the unlearning losses only)",
          "Table 1", "main_results", "+", "t1", "ADU", "Baseline", "ADU − Baseline",
          paper_gap(1, {"method": "adu"}, {"method": "baseline"}, "ADU − Baseline"),
          recipes=BOTH_RECIPES, depends=("separable", "classes", "tuning_gain", "trained_mem")),
    Claim("t2_instapg", "InstaPG alone raises H over the Baseline", "Table 2", "ablation", "+", "t2",
          T2["instapg_only"], T2["baseline"], "InstaPG only − Baseline",
          paper_gap(2, {"instapg": True, "ddl": False}, _NONE, "InstaPG only − Baseline"),
          depends=("tuning_gain", "classes")),
    Claim("t2_ddl", "DDL alone raises H over the Baseline", "Table 2", "ablation", "+", "t2", T2["ddl_only"],
          T2["baseline"], "DDL only − Baseline", paper_gap(2, {"instapg": False, "ddl": True}, _NONE,
                                                           "DDL only − Baseline"),
          depends=("separable", "classes")),
    Claim("t2_both", "DDL and InstaPG together raise H most", "Table 2", "ablation", "+", "t2", T2["adu"],
          _better_single, "both − the better single component (by mean H)",
          _paper_vs_best_of(2, _BOTH, _SINGLES, "both − the better single component by mean H"),
          depends=("separable", "classes")),
    Claim("t3_ce", "DDL needs its domain-classification CE term (MMD alone is worse)", "Table 3", "ablation", "+",
          "t3", T3["adu"], T3["mmd_only"], "CE + MMD − MMD only",
          paper_gap(3, {"ddl_ce": True, "ddl_mmd": True}, {"ddl_ce": False, "ddl_mmd": True}, "CE + MMD − MMD only"),
          recipes=BOTH_RECIPES, depends=("separable",)),
    Claim("t3_mmd", "DDL needs its MMD term (CE alone is worse)", "Table 3", "ablation", "+", "t3", T3["adu"],
          T3["ce_only"], "CE + MMD − CE only",
          paper_gap(3, {"ddl_ce": True, "ddl_mmd": True}, {"ddl_ce": True, "ddl_mmd": False}, "CE + MMD − CE only"),
          recipes=BOTH_RECIPES, depends=("separable",)),
    Claim("t4_domains", "ADU makes the domains more separable (domain classification accuracy)", "Table 4",
          "domain_accuracy", "+", "t4", "ADU", "Baseline", "ADU − Baseline, domain accuracy of a linear probe (%)",
          _paper_t4, metric="domain_acc_probe", depends=("separable",)),
    Claim("sens_gamma", "H stays stable once γ passes a threshold", "Sensitivity figure", "sensitivity", "=",
          "gamma", f"{STABILITY_TOP:g}", "default", f"H at γ = {STABILITY_TOP:g} − H at the default γ",
          _text(_STABLE), depends=("separable",)),
    Claim("sens_lam", "H stays stable once λ passes a threshold", "Sensitivity figure", "sensitivity", "=", "lam",
          f"{STABILITY_TOP:g}", "default", f"H at λ = {STABILITY_TOP:g} − H at the default λ", _text(_STABLE),
          depends=("separable",)),
    Claim("shots_adu", "ADU keeps improving with more training images", "Shots figure", "shots", "+", "shots",
          "ADU@16", "ADU@8", "ADU: H with 16 shots − with 8",
          _text("\"the proposed method continues to improve\" (Mini DomainNet; no values printed)"),
          depends=("tuning_gain",)),
    Claim("shots_baseline", "The Baseline overfits as training images increase", "Shots figure", "shots", "-",
          "shots", "Baseline@16", "Baseline@8", "Baseline: H with 16 shots − with 8",
          _text("\"the Baseline exhibits overfitting tendencies\" (Mini DomainNet; no values printed)"),
          depends=("tuning_gain",)),
    Claim("pseudo", "ADU keeps working when domain labels are pseudo-labels", "Appendix", "pseudo_labels", "=",
          "pseudo", "zero-shot pseudo-labels, no domain label", "full labels",
          "H with zero-shot pseudo-labels and no domain label − with every label",
          _text("\"it worked well\" (appendix; no values available to us)"), depends=("detector", "captions")),
    Claim("tsne", "After ADU the features form one cluster per domain (zero-shot CLIP mixes them)", "t-SNE figure",
          "tsne", "q", "", None, None, "silhouette of the domains, before and after (figure page)",
          _text("Zero-shot CLIP's domains intermixed; ADU's four clusters (Mini DomainNet; figure only)"),
          depends=("separable",)),
    Claim("attention", "After ADU the attention on the object fades in the forgotten domain only",
          "Attention figure", "attention", "q", "", None, None, "rollout entropy per domain (figure page)",
          _text("Attention on the object weakens in the forgotten domain, kept elsewhere (figure only)")),
    # --- this project's own questions (the paper has no such rows) ---
    Claim("t1_gate", "Training is needed: ADU beats a training-free domain gate (zero-shot CLIP that answers at "
          "random on images its zero-shot domain prompts detect as a forgotten domain)", "Table 1 (our row)",
          "main_results", "+", "t1", "ADU", METHOD_NAMES["gate"], "ADU − domain gate",
          _text("not in the paper (it compares trained methods only); carried to its datasets in closed form on "
                "the regime page"), whose="ours", depends=("detector", "captions", "classes")),
    Claim("t1_gate_probe", "Training is needed even against a gate whose detector learns the domains from the "
          "few-shot images only (a linear probe on frozen features, the data every trained method gets)",
          "Table 1 (our row)", "main_results", "+", "t1", "ADU", PROBE_GATE.label, "ADU − domain gate (probe)",
          _text("not in the paper"), whose="ours", depends=("separable", "classes")),
    Claim("t1_kvw", f"A training-free weight edit (KVW) matches ADU: its H is at most "
          f"{NONINFERIORITY_MARGIN:g} points below (non-inferiority)", "Table 1 (our row)", "main_results", ">=",
          "t1", KVW, "ADU", "KVW − ADU", _text("not in the paper"), whose="ours",
          depends=("separable", "classes")),
)


# --- the table ------------------------------------------------------------------------------------------------------
def _ours(c: Claim, effect: Mapping[str, Any] | None) -> str:
    if c.direction == "q":
        return "(see the figure page)"
    return "no runs" if not effect or not effect.get("n") else effect_text(effect)


def _disagrees(agree: Any) -> bool:
    """Whether an ``intervals agree`` cell (:func:`_robust`) says the two intervals' verdicts differ."""
    return str(agree).startswith("no")


def _robust(c: Claim, effect: Mapping[str, Any] | None) -> tuple[str, str]:
    """The interval over forget sets in words with its verdict, and whether the two verdicts agree."""
    if c.direction == "q" or not effect or not effect.get("n"):
        return "–", "–"
    over = effect["over_sets"]
    text = f"{verdict(over, c.direction)}: {interval_text(over, 'forget sets')}"
    if effect.get("basis") != "stratified":
        return text, "– (the primary interval is this one)"
    agree = verdict(over, c.direction) == verdict(effect, c.direction)
    return text, "yes" if agree else "no: the verdict rests on the choice of interval"


def _sizes(c: Claim, evidence: Mapping[str, pd.DataFrame] | None) -> tuple[int, ...] | None:
    runs = recipe_view((evidence or {}).get(c.evidence), "paper") if c.evidence else None
    if runs is None or not len(runs) or "n_forget" not in runs:
        return None
    a, b = c.rows(runs)
    part = runs[runs["variant"].isin([a, b])]
    return tuple(sorted({int(k) for k in part["n_forget"]})) or None


def ledger_rows(evidence: Mapping[str, Mapping[str, pd.DataFrame] | None], paper: pd.DataFrame) -> pd.DataFrame:
    """One row per (claim, recipe it is measured under): the paper's evidence (on the |D_forget| the first tier's
    runs cover), and per tier (``evidence``: tier -> collected runs, None when that tier has no runs here) our
    effect, its verdict, the interval over forget sets with its verdict, and whether the two agree."""
    first = next(iter(evidence.values()), None)
    rows = []
    for c in CLAIMS:
        said = c.paper(paper, _sizes(c, first))
        for recipe in c.recipes:
            row: dict[str, Any] = {"key": c.key, "recipe": recipe, "whose": c.whose, "claim": c.claim,
                                   "paper's evidence": said, "source": c.source, "measured as": c.effect_of,
                                   "page": c.page}
            for tier, ev in evidence.items():
                effect = c.effect(ev, recipe)
                row[f"{tier}: ours"] = _ours(c, effect)
                row[f"{tier}: verdict"] = verdict(effect, c.direction)
                row[f"{tier}: over forget sets"], row[f"{tier}: intervals agree"] = _robust(c, effect)
                # the rule the book used before: every (forget set, seed) pair an independent sample
                row[f"{tier}: verdict if pairs were independent"] = verdict((effect or {}).get("pooled") or effect,
                                                                            c.direction)
            rows.append(row)
    return pd.DataFrame(rows)


def _counts(column: pd.Series) -> str:
    counts = column.value_counts()
    return ", ".join(f"{int(counts[v])} {v}" for v in VERDICTS if v in counts) or "none"


def verdict_counts(table: pd.DataFrame, first: str, dataset: str, backbone: str = "") -> dict[str, str]:
    """Glued phrases for the headline: the tier, dataset and backbone in one sentence; the verdicts of the paper's
    claims and of the project's own, apart, under the paper's recipe; the rows measured under other recipes; and
    the rows whose verdict rests on the choice of interval. Also the paper tier's counts."""
    def part(tier: str, whose: str, recipe: str = "paper") -> str:
        col = f"{tier}: verdict"
        rows = table[(table["whose"] == whose) & (table["recipe"] == recipe)] if col in table else table.iloc[0:0]
        n = len(rows)
        return f"{n} claim{'s' if n != 1 else ''}: {_counts(rows[col]) if n else 'none'}"

    def under(recipe: str) -> str:
        rows = table[table["recipe"] == recipe]
        return (f"under the {RECIPE_LABELS.get(recipe, recipe)} recipe, {_counts(rows[f'{first}: verdict'])} "
                f"({'; '.join(rows['measured as'])})")

    others = [r for r in dict.fromkeys(table["recipe"]) if r != "paper"]
    recipe_text = "; ".join(under(r) for r in others) or "no claim is measured under another recipe"
    col = f"{first}: intervals agree"
    split = table[table[col].map(_disagrees)] if col in table else table.iloc[0:0]
    names = [f"{c} [{RECIPE_LABELS.get(r, r)}]" for c, r in zip(split["measured as"], split["recipe"], strict=True)]
    disagree = f"{len(split)} ({'; '.join(names)})" if len(split) else "none"
    return {"ledger_margin": f"{STABILITY_MARGIN:g}", "ledger_ni_margin": f"{NONINFERIORITY_MARGIN:g}",
            "ledger_first_tier": first, "ledger_dataset": dataset_name(dataset), "ledger_backbone": backbone,
            "ledger_first_paper_counts": part(first, "paper"), "ledger_first_our_counts": part(first, "ours"),
            "ledger_first_recipes": recipe_text, "ledger_first_disagree": disagree,
            "ledger_paper_paper_counts": part("paper", "paper"), "ledger_paper_our_counts": part("paper", "ours")}


def display(table: pd.DataFrame, tiers: Sequence[str], property_names: Mapping[str, str] | None = None
            ) -> pd.DataFrame:
    """The ledger as the page shows it: the claim (linked to its page) and the recipe, whose claim it is, the
    paper's evidence, then per tier ours and the verdict (and, for a tier with measured rows, the interval over forget
    sets, marked where its verdict differs); with ``property_names``, the testbed properties each verdict rests on."""
    shown = table.assign(claim=[f'{c} (<a href="{p}.html">{s}</a>)' for c, p, s in
                                zip(table["claim"], table["page"], table["source"], strict=True)],
                         recipe=table["recipe"].map(lambda r: RECIPE_LABELS.get(r, r)),
                         whose=table["whose"].map({"paper": "the paper", "ours": "ours"}))
    columns = ["whose", "paper's evidence", "measured as"]
    for tier in tiers:
        columns += [f"{tier}: ours", f"{tier}: verdict"]
        over = f"{tier}: over forget sets"
        if over in table and (table[over] != "–").any():  # a tier with measured rows; whether the two intervals
            # agree is said in the same cell (a column of its own made the table wider than the page)
            shown[over] = [f"{text} (differs from the primary verdict: it rests on the choice of interval)"
                           if _disagrees(agree) else text
                           for text, agree in zip(table[over], table[f"{tier}: intervals agree"], strict=True)]
            columns.append(over)
    if property_names is not None:
        by_key = {c.key: c.depends for c in CLAIMS}
        shown["rests on (testbed regime)"] = [", ".join(property_names.get(p, p) for p in by_key.get(k, ())) or "–"
                                              for k in table["key"]]
        columns.append("rests on (testbed regime)")
    return shown.set_index(["claim", "recipe"])[columns]


# --- every run behind the book, as one table -------------------------------------------------------------------------
def runs_csv(results: Sequence[Any], path: Any) -> tuple[int, list[str]]:
    """Write one CSV row per valid run.json under the ``results`` folders (every tier's store): config, metrics,
    seed, tier, code version, weights and data hashes, device, precision and time. Returns (rows, problems).
    Written by the book's build (the ledger page), so it never drifts from the pages."""
    from pathlib import Path

    from adu_core.paths import project_relative
    from adu_core.results import RunFileError, read_run

    rows, problems = [], []
    for root in results:
        for run_json in sorted(Path(root).rglob("run.json")):
            try:
                run = read_run(run_json)
            except RunFileError as err:
                problems.append(str(err))
                continue
            cfg, m, prov = run["config"], run["metrics"], run.get("provenance", {})
            code, weights = prov.get("code") or {}, prov.get("weights") or {}
            row = {"path": project_relative(run_json), "tier": cfg["tier"], "dataset": cfg["dataset"],
                   "method": cfg["method"], "forget": "+".join(sorted(cfg["forget"])), "seed": cfg["seed"],
                   "overrides": json.dumps(run.get("overrides", {}), sort_keys=True),
                   **{k: m.get(k) for k in ("h", "mem", "for", "domain_acc_probe", "domain_acc_head")},
                   **{f"train_{k}": (m.get("train") or {}).get(k) for k in ("mem", "for", "h")},
                   "commit": code.get("commit"), "dirty": code.get("dirty"),
                   "weights": weights.get("pretrained") or weights.get("name"), "weights_sha256": weights.get("sha256"),
                   "data_sha256": prov.get("data_sha256"), "precision": prov.get("precision"),
                   "device": (prov.get("hardware") or {}).get("gpu") or (prov.get("hardware") or {}).get("device"),
                   "total_s": (run.get("timings") or {}).get("total_s"),
                   "config": json.dumps(cfg, sort_keys=True)}
            rows.append(row)
    frame = pd.DataFrame(rows)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return len(frame), problems
