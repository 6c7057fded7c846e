"""What each page's closing paragraph says: its glued facts, one function per page of ``book/``.

Every function returns ``{name: text}`` for the ``{glue:text}`name``` references of its page's prose; the page glues
them with :func:`adu_book.facts.glue_all`. Numbers come from the page's own tables and runs, never from typing.

Every comparison names both sides and its unit (:func:`adu_book.facts.compare`; a test of the built book applies
:func:`adu_book.facts.comparison_problems` to every glued phrase). A difference whose 95 % interval covers 0 is "no
measurable difference", never an effect. The paper's side of a difference comes from
:func:`adu_book.paper.paper_difference`, the function the ledger's figure uses too, on the |D_forget| named. Points
of a grid that a sentence tests are named before looking (the grid's ends, the paper's setting, fraction 0), never
the point that happens to lie farthest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from adu_core.data import get_dataset

from .effects import best_by, paired
from .facts import (
    compare,
    describe_curve,
    describe_levels,
    fmt,
    plateau,
    signed,
    with_unit,
)
from .grids import LABELLERS, SWEEPS, SweepPoint, orders, split_reference
from .names import METHOD_NAMES, dataset_name
from .paper import paper_difference, sizes_note
from .plans import TABLE2_VARIANTS, TABLE3_VARIANTS, forget_text
from .runs import RunStatus, count_runs

__all__ = ["ablation", "against_paper_setting", "attention", "domain_accuracy", "main_results", "named_points",
           "paper_said", "pseudo_labels", "sensitivity", "sensitivity_counts", "shots", "testbed_words", "tsne"]

NAN = math.nan
BEFORE = METHOD_NAMES["zeroshot"]  # "before unlearning" on the figure pages


# --- shared phrases ---------------------------------------------------------------------------------------------------
def testbed_words(pg) -> str:
    """Whose verdict a sentence gives: "on this testbed (PACS, a small CLIP the project pretrained)" at the testbed
    tier, so that no testbed verdict reads as a verdict on the paper's CLIP."""
    if pg.tier == "testbed":
        return f"on this testbed ({dataset_name(pg.dataset)}, a small CLIP the project pretrained)"
    return f"on {dataset_name(pg.dataset)} ({pg.tier} tier, {pg.session_cfg().backbone})"


def paper_said(paper: pd.DataFrame, comparison: str, dataset: str, sizes: Sequence[int] | None,
               unit: str = "H points") -> str:
    """The paper's difference for ``comparison`` (:data:`adu_book.paper.COMPARISONS`) on ``dataset``, from its
    printed means, on the |D_forget| ``sizes``: "+1.99 H points (Mini DomainNet, |D_forget| = 1)"; per size and
    their mean when several."""
    d = paper_difference(paper, comparison, sizes, dataset)
    if not len(d):
        return "not printed by the paper for these |D_forget|"
    where = f"{dataset_name(dataset)}, {sizes_note(d['n_forget'])}"
    if len(d) == 1:
        return f"{signed(float(d['value'].iloc[0]))} {unit} ({where})"
    each = ", ".join(f"{signed(v)} at {k}" for k, v in zip(d["n_forget"], d["value"], strict=True))
    return f"{signed(float(d['value'].mean()))} {unit} ({where}; {each})"


def per_size(effects: Mapping[Any, Mapping[str, Any]], sizes: Sequence[int], a: str, b: str,
             unit: str = "H points") -> str:
    """One comparison per |D_forget|, joined: "at |D_forget| = 1, ADU's H shows no measurable difference from the
    Baseline's (...); at 2, ..."."""
    parts = [f"at |D_forget| = {k}, {compare(effects.get(k), a, b, unit)}" for k in sizes if k in effects]
    return "; ".join(parts) if parts else f"{a} against {b}: not measurable yet (no paired runs)"


def seeds_shown(planned: Sequence[int], runs: pd.DataFrame) -> str:
    """The seeds the runs shown have, and the planned ones still missing: "1 (2, 3 not run yet)"."""
    have = sorted({int(s) for s in runs["seed"]}) if len(runs) and "seed" in runs else []
    missing = [s for s in planned if s not in have]
    text = ", ".join(str(s) for s in have) or "none"
    return f"{text} ({', '.join(str(s) for s in missing)} not run yet)" if missing else text


def best_method(best: Mapping[Any, Mapping[str, Any]], key: Any, what: str = "method") -> str:
    """Who leads by mean H in group ``key`` (whoever it is), and whether the lead over the runner-up is outside the
    noise, naming both and the unit."""
    entry = best.get(key)
    if not entry:
        return "not measurable yet (no runs)"
    n = entry.get("n")
    text = f"{entry['best']} has the highest mean H ({entry['best_mean']:.2f} %{f', n = {n}' if n else ''})"
    if "runner_up" not in entry:
        return text
    lead = entry.get("lead")
    runner = f"that of {entry['runner_up']}, the next {what} ({entry['runner_up_mean']:.2f} %),"
    return f"{text}; {compare(lead, 'its H', runner)}"


# --- the tables' pages ------------------------------------------------------------------------------------------------
def main_results(pg, summary: pd.DataFrame, runs: pd.DataFrame, ref: str, sizes: Sequence[int]) -> dict[str, str]:
    """Table 1: ADU against the Baseline in the paper (its printed means) and in ours (paired by forget set and seed,
    with 95 % intervals); the best method by H, whoever it is; and the training-free gate against ADU."""
    ours = {m: paired(runs, "ADU", "Baseline", m, by="n_forget") for m in ("h", "for", "mem")}
    gate = METHOD_NAMES["gate"]
    best = best_by(runs)
    paper_for = paper_difference(pg.paper, _comp(1, "for"), sizes, ref)
    paper_mem = paper_difference(pg.paper, _comp(1, "mem"), sizes, ref)
    facts = {
        "main_ref": dataset_name(ref),
        "main_dataset": dataset_name(pg.dataset),
        "main_tier": pg.tier,
        "main_where": testbed_words(pg),
        "main_n_runs": str(count_runs(runs)),
        "main_seeds": seeds_shown(pg.seeds, runs),
        "main_paper_h": paper_said(pg.paper, "t1_baseline", ref, sizes),
        "main_paper_for": (f"{signed(float(paper_for['value'].mean()))} points" if len(paper_for) else "n/a"),
        "main_paper_mem": (f"{signed(float(paper_mem['value'].mean()))} points" if len(paper_mem) else "n/a"),
        "main_h_effect": compare(ours["h"].get("all"), "ADU's H", "the Baseline's"),
        "main_h_per_size": per_size(ours["h"], sizes, "ADU's H", "the Baseline's"),
        "main_for_effect": compare(ours["for"].get("all"), "ADU's For", "the Baseline's", unit="points"),
        "main_mem_effect": compare(ours["mem"].get("all"), "ADU's Mem", "the Baseline's", unit="points"),
        "main_best_all": best_method(best, "all"),
        "main_best_per_size": "; ".join(f"at |D_forget| = {k}, {best_method(best, k)}" for k in sizes if k in best)
                              or "not measurable yet (no runs)",
        "main_gate_vs_adu": compare(paired(runs, gate, "ADU").get("all"), "the domain gate's H", "ADU's"),
        "main_gate_for_vs_adu": compare(paired(runs, gate, "ADU", "for").get("all"), "its For", "ADU's", unit="points"),
        "main_gate_mem_vs_adu": compare(paired(runs, gate, "ADU", "mem").get("all"), "its Mem", "ADU's", unit="points"),
        "main_gate_detector": fmt(runs.loc[runs["variant"] == gate, "domain_acc_head"].mean()
                                  if len(runs) and "domain_acc_head" in runs else NAN),
    }
    return facts


def _comp(table: int, metric: str):
    """The paper's ADU − Baseline of ``table`` in ``metric`` (Table 1's rows)."""
    from dataclasses import replace

    from .paper import COMPARISONS

    return replace(COMPARISONS["t1_baseline"], metric=metric)


def ablation(pg, summary2: pd.DataFrame, summary3: pd.DataFrame, runs: pd.DataFrame, ref2: str, ref3: str,
             sizes2: Sequence[int]) -> dict[str, str]:
    """Tables 2 and 3: each component's change in H against the row without it: the paper's (its printed means, on
    the |D_forget| ours covers, the same function the ledger uses) and ours, paired by (forget set, seed) with a
    95 % interval."""
    labels2 = {v.key: v.label for v in TABLE2_VARIANTS}
    labels3 = {v.key: v.label for v in TABLE3_VARIANTS}
    runs2 = runs[runs["table"] == 2] if len(runs) else runs
    runs3 = runs[runs["table"] == 3] if len(runs) else runs
    sizes3 = sorted({int(k) for k in runs3["n_forget"]}) if len(runs3) else [1]
    facts = {
        "abl_ref2": dataset_name(ref2),
        "abl_ref3": dataset_name(ref3),
        "abl_dataset": dataset_name(pg.dataset),
        "abl_where": testbed_words(pg),
        "abl_n_runs": str(count_runs(runs)),
        "abl_seeds": seeds_shown(pg.seeds, runs),
        "abl_sizes": sizes_note(sizes2),
    }
    words2 = {"instapg_only": "H with InstaPG alone", "ddl_only": "H with DDL alone", "adu": "H with both"}
    for key, comp in (("instapg_only", "t2_instapg"), ("ddl_only", "t2_ddl"), ("adu", "t2_adu")):
        facts[f"abl_paper_{key}"] = paper_said(pg.paper, comp, ref2, sizes2)
        facts[f"abl_ours_{key}"] = compare(paired(runs2, labels2[key], labels2["baseline"]).get("all"), words2[key],
                                           "the Baseline's")
    words3 = {"mmd_only": "H with MMD alone", "ce_only": "H with CE alone", "adu": "H with CE + MMD"}
    for key, comp in (("mmd_only", "t3_mmd_only"), ("ce_only", "t3_ce_only"), ("adu", "t3_adu")):
        facts[f"abl3_paper_{key}"] = paper_said(pg.paper, comp, ref3, sizes3)
        facts[f"abl3_ours_{key}"] = compare(paired(runs3, labels3[key], labels3["instapg_only"]).get("all"),
                                            words3[key], "InstaPG's without DDL")
    facts["abl_paper_both_vs_ddl"] = paper_said(pg.paper, "t2_both_vs_ddl", ref2, sizes2)
    facts["abl_ours_both_vs_ddl"] = compare(paired(runs2, labels2["adu"], labels2["ddl_only"]).get("all"),
                                            "H with both", "with DDL alone")
    facts["abl_best"] = best_method(best_by(runs2, by=None), "all", what="row")
    return facts


def domain_accuracy(pg, summary: pd.DataFrame, runs: pd.DataFrame, ref: str, sets: Sequence[Sequence[str]],
                    chance: float) -> dict[str, str]:
    """Table 4: domain accuracy before unlearning, after the Baseline and after ADU (probe, and ADU's head)."""
    def value(method, metric, column):
        row = summary[(summary["variant"] == METHOD_NAMES[method]) & (summary["metric"] == metric)]
        return float(row[column].iloc[0]) if len(row) and pd.notna(row[column].iloc[0]) else NAN

    facts = {"dom_chance": fmt(chance, 1), "dom_n_domains": str(len(pg.domains)),
             "dom_paper_chance": fmt(100.0 / len(get_dataset(ref).domains), 1),
             "dom_dataset": dataset_name(pg.dataset),
             "dom_where": testbed_words(pg),
             "dom_forget": forget_text(sets),
             "dom_n_runs": str(count_runs(runs))}
    for m in ("zeroshot", "baseline", "adu"):
        facts[f"dom_paper_{m}"] = fmt(value(m, "domain_acc", "paper"))
        facts[f"dom_probe_{m}"] = fmt(value(m, "domain_acc", "mean"))
    facts["dom_head_adu"] = fmt(value("adu", "domain_acc_head", "mean"))
    facts["dom_verdict"] = compare(
        paired(runs, METHOD_NAMES["adu"], METHOD_NAMES["baseline"], "domain_acc_probe").get("all"),
        "the probe's accuracy on ADU's features", "on the Baseline's", unit="percentage points")
    facts["dom_vs_before"] = compare(
        paired(runs, METHOD_NAMES["adu"], METHOD_NAMES["zeroshot"], "domain_acc_probe").get("all"),
        "the probe's accuracy on ADU's features", "on zero-shot CLIP's (before unlearning)",
        unit="percentage points")
    return facts


# --- the analyses' pages ----------------------------------------------------------------------------------------------
def sensitivity_counts(points: Mapping[str, Sequence[SweepPoint]], sets: Sequence[Sequence[str]],
                       status: RunStatus) -> dict[str, str]:
    """The sensitivity page's grid: distinct configurations, forget sets and runs in all."""
    return {"sens_n_points": str(len({p.overrides for pts in points.values() for p in pts})),
            "sens_n_sets": str(len(sets)),
            "sens_n_planned": str(status.n_unique)}


def settling(labels: Sequence[Any], values: Sequence[float], symbol: str, tol: float) -> str:
    """Where a sweep's curve of mean H settles within ``tol`` points, judged only with two or more points."""
    have = sum(not pd.isna(v) for v in values)
    if have == 0:
        return "cannot be judged yet (no runs)"
    if have < 2:
        return "cannot be judged yet (one point of the grid has runs)"
    start = plateau(labels, values, tol)
    if start is None:
        return f"does not stay within {tol:g} points anywhere along the grid"
    return f"stays within {tol:g} points from {symbol} = {start} on"


SYMBOLS = {"gamma": "γ = ", "lam": "λ = ", "lam_pre": "λ = ", "prompt_depth": "depth ", "n_ctx": "",
           "mmd_kernel": "", "instapg": "", "epochs": ""}
UNITS = {"n_ctx": " tokens", "epochs": " epochs"}
UNORDERED = ("mmd_kernel", "instapg")
LEVEL_WORDS = {"mmd_kernel": "the kernel ", "instapg": "InstaPG placement "}  # "H with the kernel linear"


def named_points(order: Sequence[str], default: str | None, sweep: str) -> list[str]:
    """The points of a sweep that its sentence tests against the default, named before looking at the runs: the
    grid's two ends (an ordered sweep), or every other level (kernels, placements)."""
    if sweep in UNORDERED:
        return [v for v in order if v != default]
    ends = [order[0], order[-1]] if order else []
    return [v for v in dict.fromkeys(ends) if v != default]


def sensitivity(pg, runs: pd.DataFrame, points: Mapping[str, Sequence[SweepPoint]], sets: Sequence[Sequence[str]],
                plateau_tol: float) -> dict[str, str]:
    """Each sweep's curve of H; where the γ and λ curves settle (the paper's only statement); each sweep's named
    points (:func:`named_points`) against its default, paired by (forget set, seed); and DDL's feature."""
    grid = orders(points)

    def curve(sweep):
        labels = grid.get(sweep, [])
        if not len(runs):
            return labels, [NAN] * len(labels)
        h = runs[runs["sweep"] == sweep].groupby("setting")["h"].mean()
        return labels, [h.get(v, NAN) for v in labels]

    def settles(sweep, symbol):
        return settling(*curve(sweep), symbol, plateau_tol) if sweep in points else "cannot be judged yet (no runs)"

    facts = {
        "sens_dataset": dataset_name(pg.dataset),
        "sens_where": testbed_words(pg),
        "sens_forget": forget_text(sets),
        "sens_n_runs": str(count_runs(runs)),
        "sens_default_h": fmt(runs.loc[runs["default"].astype(bool), "h"].drop_duplicates().mean()
                              if len(runs) else NAN),
        "sens_gamma_settles": settles("gamma", "γ"),
        "sens_lam_settles": settles("lam", "λ"),
    }
    for s in SWEEPS:
        labels, values = curve(s)
        if s not in points:
            facts[f"sens_{s}"] = "not swept in this execution"
            facts[f"sens_{s}_effect"] = "not swept in this execution"
            continue
        if s in UNORDERED:
            facts[f"sens_{s}"] = describe_levels(labels, values, LEVEL_WORDS.get(s, ""), value_unit=" %")
        else:
            facts[f"sens_{s}"] = describe_curve(labels, values, SYMBOLS[s], UNITS.get(s, ""), " %", " points")
        facts[f"sens_{s}_effect"] = against_default(runs, s, SYMBOLS[s], UNITS.get(s, ""), grid.get(s, []))
    facts["sens_feature_effect"] = feature_effect(runs, pg.session_cfg().lam)
    return facts


def _sweep_runs(runs: pd.DataFrame, sweep: str) -> pd.DataFrame:
    return runs[runs["sweep"] == sweep] if len(runs) else runs


def against_default(runs: pd.DataFrame, sweep: str, symbol: str = "", unit: str = "",
                    order: Sequence[str] = ()) -> str:
    """The sweep's named points (:func:`named_points`) each against its default, paired by (forget set, seed)."""
    part = _sweep_runs(runs, sweep)
    if not len(part):
        return "not measurable yet (no runs)"
    default = part.loc[part["default"].astype(bool), "setting"].unique()
    if not len(default):
        return "no default point in this sweep"
    ref = default[0]
    order = list(order) or list(dict.fromkeys(part["setting"]))
    named = named_points(order, ref, sweep)
    words = LEVEL_WORDS.get(sweep)
    a = (lambda v: f"H with {words}{v}") if words else (lambda v: f"H at {symbol}{with_unit(v, unit)}")
    b = f"H with the default, {words}{ref}" if words else f"H at the default {symbol}{with_unit(ref, unit)}"
    texts = [compare(paired(part, v, ref, key="setting").get("all"), a(v), b) for v in named]
    return "; ".join(texts) or "the grid has no point besides the default"


def feature_effect(runs: pd.DataFrame, default_lam: float) -> str:
    """DDL on the class token before the projection minus DDL on the embedding, at the default λ, paired."""
    if not len(runs):
        return "not measurable yet (no runs)"
    label = f"{default_lam:g}"
    pre = runs[(runs["sweep"] == "lam_pre") & (runs["setting"] == label)]
    emb = runs[runs["default"].astype(bool)].drop_duplicates("path")
    both = pd.concat([pre.assign(feature="pre_projection"), emb.assign(feature="embedding")])
    return compare(paired(both, "pre_projection", "embedding", key="feature").get("all"),
                   "H with DDL on the class token before the projection", "with DDL on the embedding")


def shots(pg, runs: pd.DataFrame, ks: Sequence[int], sets: Sequence[Sequence[str]]) -> dict[str, str]:
    """H against the number of shots for the Baseline and ADU; the paper's trend tested at named points (the most
    shots and the fewest, each against the paper's setting); zero-shot CLIP's H."""
    trained, refs = split_reference(runs)
    paper_k = pg.session_cfg().shots

    def curve(method, metric="h"):
        part = trained[trained["variant"] == METHOD_NAMES.get(method, method)] if len(trained) else trained
        mean = part.groupby("shots")[metric].mean() if len(part) else pd.Series(dtype=float)
        return ks, [mean.get(k, NAN) for k in ks]

    facts = {
        "shots_dataset": dataset_name(pg.dataset),
        "shots_where": testbed_words(pg),
        "shots_forget": forget_text(sets),
        "shots_n_runs": str(count_runs(runs)),
        "shots_paper_k": with_unit(paper_k, " shots"),
        "shots_zeroshot_h": fmt(refs["h"].mean() if len(refs) else NAN),
    }
    for m in ("baseline", "adu"):
        ks_m, h_m = curve(m)
        facts[f"shots_{m}_h"] = describe_curve(ks_m, h_m, unit=" shots", value_unit=" %", diff_unit=" points")
        facts[f"shots_{m}_peak"] = against_paper_setting(trained, METHOD_NAMES.get(m, m), ks, paper_k)
    per_k = paired(trained, METHOD_NAMES["adu"], METHOD_NAMES["baseline"], by="shots") if len(trained) else {}
    facts["shots_adu_vs_baseline"] = "; ".join(
        f"with {with_unit(k, ' shots')}, {compare(per_k[k], 'ADU' + chr(39) + 's H', 'the Baseline' + chr(39) + 's')}"
        for k in ks if k in per_k) or "ADU against the Baseline: not measurable yet (no paired runs)"
    return facts


def against_paper_setting(runs: pd.DataFrame, variant: str, ks: Sequence[int], paper_k: int) -> str:
    """The paper's trend at named points: H with the most shots of the grid against H with the paper's number, paired
    by (forget set, seed) ("keeps improving" says higher; "overfits" says lower)."""
    most = max(ks) if len(ks) else None
    if most is None or most == paper_k or paper_k not in ks:
        return f"{variant}: the grid has no point above the paper's {with_unit(paper_k, ' shots')}"
    part = runs[runs["variant"] == variant] if len(runs) else runs
    e = paired(part, most, paper_k, key="shots").get("all") if len(part) else None
    return compare(e, f"{variant}'s H with {with_unit(most, ' shots')}",
                   f"with {with_unit(paper_k, ' shots')} (the paper's setting)")


def pseudo_labels(pg, runs: pd.DataFrame, fracs: Sequence[float], sets: Sequence[Sequence[str]]) -> dict[str, str]:
    """ADU's H with every domain label (the paper's setting), and at named fractions against it: fraction 0 (no
    domain label at all: only the zero-shot labeller can) and the smallest labelled fraction, per labeller; the
    pseudo-labels' own accuracy, and why it has no spread."""
    def curve(labeller, metric="h", method="adu"):
        part = runs[(runs["labeller"] == labeller) & (runs["method"] == method)] if len(runs) else runs
        mean = part.groupby("fraction")[metric].mean() if len(part) else pd.Series(dtype=float)
        xs = [f for f in fracs if f in mean.index]
        return [f"{f:g}" for f in xs], [mean[f] for f in xs]

    def acc_range(labeller):
        _, values = curve(labeller, "pseudo_label_acc")
        values = [v for v in values if pd.notna(v)]
        if not values:
            return "not measurable yet (no runs with missing labels)"
        return f"{min(values):.2f} %" if len(values) == 1 else f"{min(values):.2f} % to {max(values):.2f} %"

    full = runs[(runs["fraction"] == 1.0) & (runs["method"] == "adu")] if len(runs) else runs
    labelled = sorted(f for f in fracs if 0.0 < f < 1.0)
    facts = {
        "pl_dataset": dataset_name(pg.dataset),
        "pl_where": testbed_words(pg),
        "pl_forget": forget_text(sets),
        "pl_n_runs": str(count_runs(runs)),
        "pl_full_h": fmt(full["h"].drop_duplicates().mean() if len(full) else NAN),
        "pl_smallest": f"{labelled[0]:g}" if labelled else "n/a",
        "pl_spread": pseudo_label_spread(runs),
    }
    for labeller in LABELLERS:
        facts[f"pl_{labeller}_h"] = describe_curve(*curve(labeller), what="fraction ", value_unit=" %",
                                                   diff_unit=" points")
        facts[f"pl_{labeller}_acc"] = acc_range(labeller)
        facts[f"pl_{labeller}_zero"] = _against_full(runs, labeller, 0.0)
        facts[f"pl_{labeller}_smallest"] = _against_full(runs, labeller, labelled[0]) if labelled else "n/a"
    return facts


LABELLER_WORDS = {"kmeans": "k-means pseudo-labels", "zeroshot": "zero-shot pseudo-labels"}


def _against_full(runs: pd.DataFrame, labeller: str, fraction: float) -> str:
    """ADU's H with ``labeller`` at the labelled ``fraction`` against every label, paired by (forget set, seed)."""
    what = (f"H with {LABELLER_WORDS.get(labeller, labeller)} and no domain label" if fraction == 0 else
            f"H with {LABELLER_WORDS.get(labeller, labeller)} and {fraction:g} of the labels")
    if not len(runs):
        return f"{what} against every label: not measurable yet (no runs)"
    adu = runs[runs["method"] == "adu"]
    point = adu[(adu["labeller"] == labeller) & (adu["fraction"] == fraction)]
    if not len(point):
        return f"{what}: not in this grid (no runs at fraction {fraction:g})"
    both = pd.concat([point.assign(frac="point"), adu[adu["fraction"] >= 1.0].assign(frac="full")])
    e = paired(both.drop_duplicates(["frac", "forget", "seed"]), "point", "full", key="frac").get("all")
    return compare(e, what, "with every label")


def pseudo_label_spread(runs: pd.DataFrame) -> str:
    """Why a pseudo-label accuracy shows ± 0.00: how many distinct values each (labeller, fraction) row has."""
    if not len(runs) or "pseudo_label_acc" not in runs:
        return "no pseudo-labels were made"
    rows = runs.dropna(subset=["pseudo_label_acc"]).groupby(["labeller", "fraction"])
    distinct = rows["pseudo_label_acc"].nunique()
    seeds = sorted({int(s) for s in runs["seed"]})
    if len(distinct) and (distinct == 1).all():
        return (f"every row's runs share one value (± 0.00): the labeller labels the few-shot pool, which depends on "
                f"the seed only, not on the forget set, and this grid has seed{'s' if len(seeds) != 1 else ''} "
                f"{', '.join(map(str, seeds))} only, so the four forget sets of a row label the same images")
    return "the rows' values differ between runs (different seeds draw different pools)"


# --- the figures' pages -----------------------------------------------------------------------------------------------
def _after(run_methods: Sequence[str]) -> str:
    """The unlearned model a figure page's conclusion speaks of: the last one shown."""
    return METHOD_NAMES.get(run_methods[-1], run_methods[-1]) if run_methods else ""


def _why_not(fm: Any) -> str:
    return "; ".join(fm.reasons.values() or ["no runs"])


def tsne(pg, score_table: pd.DataFrame, panels: Sequence[tuple[str, pd.DataFrame]], fm: Any,
         run_methods: Sequence[str], sets: Sequence[Sequence[str]]) -> dict[str, str]:
    """Silhouette scores by domain and by class, before and after unlearning."""
    def score(model, what):
        return float(score_table.loc[model, what]) if model in score_table.index else NAN

    after = _after(run_methods)
    d_gap = score(after, "domains") - score(BEFORE, "domains")
    return {
        "tsne_dataset": dataset_name(pg.dataset),
        "tsne_forget": "+".join(sets[0]),
        "tsne_after": after,
        "tsne_n_points": str(len(panels[0][1]) if panels else 0),
        "tsne_dom_before": fmt(score(BEFORE, "domains"), 3),
        "tsne_dom_after": fmt(score(after, "domains"), 3),
        "tsne_cls_before": fmt(score(BEFORE, "classes"), 3),
        "tsne_cls_after": fmt(score(after, "classes"), 3),
        "tsne_verdict": (f"not comparable here: {_why_not(fm)}" if pd.isna(d_gap)
                         else f"{after}'s domain silhouette minus zero-shot CLIP's is {signed(d_gap, 3)} (silhouette "
                         "units, one run and one set of test images: no interval), so its features are "
                         + ("more" if d_gap > 0 else "not more") + " separated by domain than before unlearning"),
    }


def attention(pg, stats: pd.DataFrame, fm: Any, run_methods: Sequence[str],
              sets: Sequence[Sequence[str]]) -> dict[str, str]:
    """How the rollout's entropy and top-10 % share change with unlearning, on the forgotten and the kept domains."""
    def mean_stat(model, forgotten, stat="entropy"):
        part = stats[(stats["model"] == model) & (stats["forgotten"] == forgotten)] if len(stats) else stats
        return float(part[stat].mean()) if len(part) else NAN

    def change(forgotten, stat="entropy"):
        return mean_stat(after, forgotten, stat) - mean_stat(BEFORE, forgotten, stat)

    after = _after(run_methods)
    change_forgotten, change_kept = change(True), change(False)
    if pd.isna(change_forgotten) or pd.isna(change_kept):
        spread = f"cannot be compared here: {_why_not(fm)}"
    elif change_forgotten > change_kept:
        spread = "spreads more (or focuses less) on the forgotten domain than on the kept ones"
    else:
        spread = "does not spread more on the forgotten domain than on the kept ones"
    return {
        "att_dataset": dataset_name(pg.dataset),
        "att_forget": "+".join(sets[0]),
        "att_after": after,
        "att_n": str(int(stats.groupby(["model", "domain"]).size().min()) if len(stats) else 0),
        "att_ent_forgot_before": fmt(mean_stat(BEFORE, True), 4),
        "att_ent_forgot_after": fmt(mean_stat(after, True), 4),
        "att_ent_kept_before": fmt(mean_stat(BEFORE, False), 4),
        "att_ent_kept_after": fmt(mean_stat(after, False), 4),
        "att_change_forgotten": signed(change_forgotten, 4),
        "att_change_kept": signed(change_kept, 4),
        "att_top_change_forgotten": signed(change(True, "top10"), 4),
        "att_top_change_kept": signed(change(False, "top10"), 4),
        "att_verdict": spread,
    }
