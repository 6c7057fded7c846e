"""What each page's closing paragraph says: its glued facts, one function per page of ``book/``.

Every function returns ``{name: text}`` for the ``{glue:text}`name``` references of its page's prose; the page glues
them with :func:`adu_book.facts.glue_all`. Numbers come from the page's own tables and runs, never from typing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from adu_core.data import get_dataset

from .effects import best_by, effect_text, effect_verdict, paired
from .facts import (
    describe_curve,
    describe_levels,
    fmt,
    gap,
    mean_of,
    peak_and_last,
    plateau,
    signed,
    verdict,
    with_unit,
)
from .grids import LABELLERS, SWEEPS, SweepPoint, orders, split_reference
from .names import METHOD_NAMES, dataset_name
from .plans import TABLE2_VARIANTS, TABLE3_VARIANTS, forget_text
from .runs import RunStatus, count_runs

__all__ = ["ablation", "after_peak", "attention", "domain_accuracy", "main_results", "pseudo_labels", "sensitivity",
           "sensitivity_counts", "shots", "tsne"]

NAN = math.nan
BEFORE = METHOD_NAMES["zeroshot"]  # "before unlearning" on the figure pages


# --- the tables' pages ------------------------------------------------------------------------------------------------
def per_size(effects: Mapping[Any, Mapping[str, Any]], sizes: Sequence[int], higher: str = "higher",
             lower: str = "lower") -> str:
    """One paired verdict per |D_forget|, joined: "|D_forget| = 1: higher: +2.10 (95 % CI ...); 2: ..."."""
    parts = [f"{k}: {effect_verdict(effects.get(k), higher, lower)}" for k in sizes if k in effects]
    return "|D_forget| = " + "; ".join(parts) if parts else "not measurable yet (no paired runs)"


def seeds_shown(planned: Sequence[int], runs: pd.DataFrame) -> str:
    """The seeds the runs shown have, and the planned ones still missing: "1 (2, 3 not run yet)"."""
    have = sorted({int(s) for s in runs["seed"]}) if len(runs) and "seed" in runs else []
    missing = [s for s in planned if s not in have]
    text = ", ".join(str(s) for s in have) or "none"
    return f"{text} ({', '.join(str(s) for s in missing)} not run yet)" if missing else text


def best_method(best: Mapping[Any, Mapping[str, Any]], key: Any) -> str:
    """Who leads by mean H in group ``key``, and whether the lead over the runner-up is outside the noise."""
    entry = best.get(key)
    if not entry:
        return "not measurable yet (no runs)"
    n = entry.get("n")
    text = f"{entry['best']} (H {entry['best_mean']:.2f}{f', n = {n}' if n else ''})"
    if "runner_up" not in entry:
        return text
    lead = entry.get("lead")
    if lead and lead.get("excludes_zero"):
        return f"{text}, ahead of {entry['runner_up']} by {effect_text(lead)}"
    return (f"{text}, but its lead over {entry['runner_up']} (H {entry['runner_up_mean']:.2f}) is no measurable "
            f"difference: {effect_text(lead)}")


def main_results(pg, summary: pd.DataFrame, runs: pd.DataFrame, ref: str, sizes: Sequence[int]) -> dict[str, str]:
    """Table 1: ADU against the Baseline in the paper (its printed means) and in ours (paired by forget set and seed,
    with 95 % intervals); the best method by H; and the training-free gate against ADU."""
    theirs = {m: gap(summary, m, "ADU", "Baseline", column="paper") for m in ("h", "for", "mem")}
    than_baseline = ("higher than the Baseline's", "lower than the Baseline's")
    ours = {m: paired(runs, "ADU", "Baseline", m, by="n_forget") for m in ("h", "for", "mem")}
    gate = METHOD_NAMES["gate"]
    best = best_by(runs)
    facts = {
        "main_ref": dataset_name(ref),
        "main_dataset": dataset_name(pg.dataset),
        "main_tier": pg.tier,
        "main_n_runs": str(count_runs(runs)),
        "main_seeds": seeds_shown(pg.seeds, runs),
        "main_paper_h_gain": fmt(mean_of(theirs["h"])),
        "main_paper_for_gain": signed(mean_of(theirs["for"])),
        "main_paper_mem_change": signed(mean_of(theirs["mem"])),
        "main_paper_verdict": verdict(theirs["h"], sizes, *than_baseline),
        "main_h_effect": effect_verdict(ours["h"].get("all"), *than_baseline),
        "main_h_per_size": per_size(ours["h"], sizes),
        "main_for_effect": effect_verdict(ours["for"].get("all"), "higher", "lower"),
        "main_mem_effect": effect_verdict(ours["mem"].get("all"), "higher", "lower"),
        "main_best_all": best_method(best, "all"),
        "main_best_per_size": "; ".join(f"|D_forget| = {k}: {best_method(best, k)}" for k in sizes if k in best)
                              or "not measurable yet (no runs)",
        "main_gate_vs_adu": effect_verdict(paired(runs, gate, "ADU").get("all"),
                                           "higher than ADU's", "lower than ADU's", "no measurable difference from ADU's"),
        "main_gate_for_vs_adu": effect_verdict(paired(runs, gate, "ADU", "for").get("all"), "higher", "lower"),
        "main_gate_mem_vs_adu": effect_verdict(paired(runs, gate, "ADU", "mem").get("all"), "higher", "lower"),
        "main_gate_detector": fmt(runs.loc[runs["variant"] == gate, "domain_acc_head"].mean()
                                  if len(runs) and "domain_acc_head" in runs else NAN),
    }
    return facts


def ablation(pg, summary2: pd.DataFrame, summary3: pd.DataFrame, runs: pd.DataFrame, ref2: str, ref3: str,
             sizes2: Sequence[int]) -> dict[str, str]:
    """Tables 2 and 3: each component's change in H against the row without it: the paper's mean over |D_forget|,
    and ours paired by (forget set, seed) with a 95 % interval."""
    def avg_gap(summary, a, b):
        return mean_of(gap(summary, "h", a, b, column="paper"))

    labels2 = {v.key: v.label for v in TABLE2_VARIANTS}
    labels3 = {v.key: v.label for v in TABLE3_VARIANTS}
    runs2 = runs[runs["table"] == 2] if len(runs) else runs
    runs3 = runs[runs["table"] == 3] if len(runs) else runs
    facts = {
        "abl_ref2": dataset_name(ref2),
        "abl_ref3": dataset_name(ref3),
        "abl_dataset": dataset_name(pg.dataset),
        "abl_n_runs": str(count_runs(runs)),
        "abl_seeds": seeds_shown(pg.seeds, runs),
    }
    than = ("higher than the Baseline's", "lower than the Baseline's")
    for key in ("instapg_only", "ddl_only", "adu"):
        facts[f"abl_paper_{key}"] = signed(avg_gap(summary2, labels2[key], labels2["baseline"]))
        facts[f"abl_ours_{key}"] = effect_verdict(paired(runs2, labels2[key], labels2["baseline"]).get("all"), *than)
    than3 = ("higher than without DDL", "lower than without DDL")
    for key in ("mmd_only", "ce_only", "adu"):
        facts[f"abl3_paper_{key}"] = signed(avg_gap(summary3, labels3[key], labels3["instapg_only"]))
        facts[f"abl3_ours_{key}"] = effect_verdict(paired(runs3, labels3[key], labels3["instapg_only"]).get("all"),
                                                   *than3)
    than_ddl = ("higher than with DDL alone", "lower than with DDL alone")
    facts["abl_paper_both_vs_ddl"] = verdict(gap(summary2, "h", labels2["adu"], labels2["ddl_only"], column="paper"),
                                             sizes2, *than_ddl)
    facts["abl_ours_both_vs_ddl"] = effect_verdict(paired(runs2, labels2["adu"], labels2["ddl_only"]).get("all"),
                                                   *than_ddl)
    facts["abl_best"] = best_method(best_by(runs2, by=None), "all")
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
             "dom_forget": forget_text(sets),
             "dom_n_runs": str(count_runs(runs))}
    for m in ("zeroshot", "baseline", "adu"):
        facts[f"dom_paper_{m}"] = fmt(value(m, "domain_acc", "paper"))
        facts[f"dom_probe_{m}"] = fmt(value(m, "domain_acc", "mean"))
    facts["dom_head_adu"] = fmt(value("adu", "domain_acc_head", "mean"))
    facts["dom_verdict"] = effect_verdict(
        paired(runs, METHOD_NAMES["adu"], METHOD_NAMES["baseline"], "domain_acc_probe").get("all"),
        "higher than the Baseline's", "lower than the Baseline's")
    facts["dom_vs_before"] = effect_verdict(
        paired(runs, METHOD_NAMES["adu"], METHOD_NAMES["zeroshot"], "domain_acc_probe").get("all"),
        "higher than before unlearning", "lower than before unlearning")
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


def sensitivity(pg, runs: pd.DataFrame, points: Mapping[str, Sequence[SweepPoint]], sets: Sequence[Sequence[str]],
                plateau_tol: float) -> dict[str, str]:
    """Each sweep's curve of H, and where the γ and λ curves settle (the paper's only statement)."""
    grid = orders(points)

    def curve(sweep):
        labels = grid.get(sweep, [])
        if not len(runs):
            return labels, [NAN] * len(labels)
        h = runs[runs["sweep"] == sweep].groupby("setting")["h"].mean()
        return labels, [h.get(v, NAN) for v in labels]

    def settles(sweep, symbol):
        return settling(*curve(sweep), symbol, plateau_tol) if sweep in points else "cannot be judged yet (no runs)"

    symbols = {"gamma": "γ = ", "lam": "λ = ", "lam_pre": "λ = ", "prompt_depth": "depth ", "n_ctx": "",
               "mmd_kernel": "", "instapg": "", "epochs": ""}
    units = {"n_ctx": " tokens", "epochs": " epochs"}
    facts = {
        "sens_dataset": dataset_name(pg.dataset),
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
        if s in ("mmd_kernel", "instapg"):
            facts[f"sens_{s}"] = describe_levels(labels, values)
        else:
            facts[f"sens_{s}"] = describe_curve(labels, values, symbols[s], units.get(s, ""))
        facts[f"sens_{s}_effect"] = largest_change(runs, s, symbols[s], units.get(s, ""))
    facts["sens_feature_effect"] = feature_effect(runs, pg.session_cfg().lam)
    return facts


def _sweep_runs(runs: pd.DataFrame, sweep: str) -> pd.DataFrame:
    return runs[runs["sweep"] == sweep] if len(runs) else runs


def largest_change(runs: pd.DataFrame, sweep: str, symbol: str = "", unit: str = "") -> str:
    """The sweep's point farthest (in mean H) from its default point, paired with it by (forget set, seed)."""
    part = _sweep_runs(runs, sweep)
    if not len(part):
        return "not measurable yet (no runs)"
    default = part.loc[part["default"].astype(bool), "setting"].unique()
    if not len(default):
        return "no default point in this sweep"
    ref = default[0]
    effects = {v: paired(part, v, ref, key="setting").get("all") for v in part["setting"].unique() if v != ref}
    effects = {v: e for v, e in effects.items() if e and e.get("n")}
    if not effects:
        return "not measurable yet (no paired runs)"
    far = max(effects, key=lambda v: abs(effects[v]["mean"]))
    return (f"{symbol}{with_unit(far, unit)} against {symbol}{with_unit(ref, unit)} (the default): "
            f"{effect_verdict(effects[far])}")


def feature_effect(runs: pd.DataFrame, default_lam: float) -> str:
    """DDL on the class token before the projection minus DDL on the embedding, at the default λ, paired."""
    if not len(runs):
        return "not measurable yet (no runs)"
    label = f"{default_lam:g}"
    pre = runs[(runs["sweep"] == "lam_pre") & (runs["setting"] == label)]
    emb = runs[runs["default"].astype(bool)].drop_duplicates("path")
    both = pd.concat([pre.assign(feature="pre_projection"), emb.assign(feature="embedding")])
    return effect_verdict(paired(both, "pre_projection", "embedding", key="feature").get("all"))


def shots(pg, runs: pd.DataFrame, ks: Sequence[int], sets: Sequence[Sequence[str]]) -> dict[str, str]:
    """H against the number of shots for the Baseline and ADU (and where it peaks), and zero-shot CLIP's H."""
    trained, refs = split_reference(runs)

    def curve(method, metric="h"):
        part = trained[trained["variant"] == METHOD_NAMES.get(method, method)] if len(trained) else trained
        mean = part.groupby("shots")[metric].mean() if len(part) else pd.Series(dtype=float)
        return ks, [mean.get(k, NAN) for k in ks]

    facts = {
        "shots_dataset": dataset_name(pg.dataset),
        "shots_forget": forget_text(sets),
        "shots_n_runs": str(count_runs(runs)),
        "shots_zeroshot_h": fmt(refs["h"].mean() if len(refs) else NAN),
    }
    for m in ("baseline", "adu"):
        ks_m, h_m = curve(m)
        facts[f"shots_{m}_h"] = describe_curve(ks_m, h_m, unit=" shots")
        facts[f"shots_{m}_peak"] = after_peak(trained, METHOD_NAMES.get(m, m), ks_m, h_m)
    per_k = paired(trained, METHOD_NAMES["adu"], METHOD_NAMES["baseline"], by="shots") if len(trained) else {}
    facts["shots_adu_vs_baseline"] = "; ".join(
        f"{with_unit(k, ' shots')}: {effect_verdict(per_k[k])}" for k in ks if k in per_k) \
        or "not measurable yet (no paired runs)"
    return facts


def after_peak(runs: pd.DataFrame, variant: str, ks: Sequence[int], h: Sequence[float]) -> str:
    """The paper's overfitting test: H at the most shots minus H at the method's best number of shots, paired by
    (forget set, seed), so that "it falls after its peak" is said only when the interval excludes 0."""
    ends = peak_and_last(ks, h)
    if ends is None:
        return "not measurable yet (fewer than two numbers of shots)"
    peak, last = ends
    if peak == last:
        return f"it is highest at the most shots ({with_unit(last, ' shots')})"
    part = runs[runs["variant"] == variant]
    e = paired(part, last, peak, key="shots").get("all")
    verdict = effect_verdict(e, higher="it rises", lower="it falls", none="no measurable change")
    return f"from its peak at {with_unit(peak, ' shots')} to {with_unit(last, ' shots')}, {verdict}"


def pseudo_labels(pg, runs: pd.DataFrame, fracs: Sequence[float], sets: Sequence[Sequence[str]]) -> dict[str, str]:
    """ADU's H against the labelled fraction for each labeller, and the pseudo-labels' own accuracy."""
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
        return f"{min(values):.2f}%" if len(values) == 1 else f"{min(values):.2f}% to {max(values):.2f}%"

    full = runs[(runs["fraction"] == 1.0) & (runs["method"] == "adu")] if len(runs) else runs
    facts = {
        "pl_dataset": dataset_name(pg.dataset),
        "pl_forget": forget_text(sets),
        "pl_n_runs": str(count_runs(runs)),
        "pl_full_h": fmt(full["h"].drop_duplicates().mean() if len(full) else NAN),
    }
    for labeller in LABELLERS:
        facts[f"pl_{labeller}_h"] = describe_curve(*curve(labeller), what="fraction ")
        facts[f"pl_{labeller}_acc"] = acc_range(labeller)
        facts[f"pl_{labeller}_vs_full"] = _farthest_from_full(runs, labeller, fracs)
    return facts


def _farthest_from_full(runs: pd.DataFrame, labeller: str, fracs: Sequence[float]) -> str:
    """The labelled fraction whose ADU H lies farthest from full labels', paired by (forget set, seed)."""
    if not len(runs):
        return "not measurable yet (no runs)"
    adu = runs[runs["method"] == "adu"]
    part = adu[(adu["labeller"] == labeller) | (adu["fraction"] >= 1.0)].assign(
        frac=lambda d: d["fraction"].map(lambda f: f"{f:g}"))
    effects = {f"{f:g}": paired(part.drop_duplicates(["frac", "forget", "seed"]), f"{f:g}", "1", key="frac").get("all")
               for f in fracs if f < 1.0}
    effects = {f: e for f, e in effects.items() if e and e.get("n")}
    if not effects:
        return "not measurable yet (no paired runs)"
    far = max(effects, key=lambda f: abs(effects[f]["mean"]))
    return f"fraction {far} against full labels: {effect_verdict(effects[far])}"


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
                         else ("more" if d_gap > 0 else "not more") + " separated by domain after unlearning"
                         f" ({signed(d_gap, 3)})"),
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
