"""The claims ledger: each claim of the paper, the paper's evidence, ours per tier, and a verdict from fixed rules.

Our evidence for a claim is one paired effect (:mod:`adu_book.effects`) over the runs the claim's page plans, read
from the results store (nothing is trained here). The verdict follows written rules, never judgement:

* a *direction* claim ("ADU raises H") is **supported** when the 95 % interval of the effect excludes 0 in the
  paper's direction, **contradicted** when it excludes 0 the other way, **inconclusive** when it covers 0 (or when
  there is one pair only, so no interval);
* a *stability* claim ("H stays the same over γ") is **supported** when the whole interval lies within
  ±:data:`STABILITY_MARGIN` H points, **contradicted** when it lies wholly outside that band, **inconclusive**
  otherwise;
* **not tested here**: no run of that tier exists for the claim;
* **qualitative**: the paper shows a figure only; the ledger gives our measured numbers and no verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .effects import best_by, effect_text, paired
from .facts import signed
from .names import METHOD_NAMES, PAPER_METHODS, dataset_name
from .plans import TABLE2_VARIANTS, TABLE3_VARIANTS, Variant, method_variants, tier_grid

__all__ = ["CLAIMS", "STABILITY_MARGIN", "VERDICTS", "Claim", "collect", "ledger_rows", "paper_evidence", "verdict"]

STABILITY_MARGIN = 2.0  # H points: the band a "stable" claim must stay within
STABILITY_TOP = 100.0  # the largest γ and λ of the sensitivity page's grids, set against the default
VERDICTS = ("supported", "contradicted", "inconclusive", "not tested here", "qualitative")


def verdict(effect: Mapping[str, Any] | None, direction: str, margin: float = STABILITY_MARGIN) -> str:
    """The rule of the module doc for one effect (``direction``: "+", "-" or "=" for stability; "q": qualitative)."""
    if direction == "q":
        return "qualitative"
    if not effect or not effect.get("n"):
        return "not tested here"
    lo, hi = effect.get("lo", math.nan), effect.get("hi", math.nan)
    if effect["n"] < 2 or math.isnan(lo) or math.isnan(hi):
        return "inconclusive"
    if direction == "=":
        if -margin <= lo and hi <= margin:
            return "supported"
        if lo > margin or hi < -margin:
            return "contradicted"
        return "inconclusive"
    sign = 1 if direction == "+" else -1
    if sign * lo > 0 and sign * hi > 0:
        return "supported"
    if sign * lo < 0 and sign * hi < 0:
        return "contradicted"
    return "inconclusive"


# --- the runs a claim rests on ----------------------------------------------------------------------------------------
def _sweep_variant(field: str, value: Any) -> Variant:
    return Variant(f"{field}={value}", f"{value:g}" if isinstance(value, float) else str(value), "adu",
                   ((field, value),))


def collect(pg) -> dict[str, pd.DataFrame]:
    """The runs of every claim's page that exist under the page's results store (budget 0: nothing is trained)."""
    saved, pg.budget = pg.budget, 0
    try:
        return {name: pg.ensure(plan, progress=False).runs for name, plan in evidence_plans(pg).items()}
    finally:
        pg.budget = saved


def evidence_plans(pg) -> dict[str, list]:
    """Per piece of evidence, the runs it reads: the same configs (and folders) as the pages the claims link to."""
    all_sets = pg.forget("all", "1,2,3")
    singles = pg.forget("all", "1")
    art = pg.forget_like_art("auto", "1")
    figure = pg.figure_forget("all", "1")  # the sweep pages' default: every one-domain forget set
    methods = [m for m in ("zeroshot", "gate", "lp++", "clipfit", "bbf", "baseline", "adu")]
    plans = {
        "t1": pg.plan(method_variants(methods), all_sets),
        "t2": pg.plan(list(TABLE2_VARIANTS), pg.forget("all", tier_grid("ablation", "n_forget", None, pg.tier))),
        "t3": pg.plan(list(TABLE3_VARIANTS), singles),
        "t4": pg.plan(method_variants(["zeroshot", "baseline", "adu"]), art),
        "gamma": pg.plan([_sweep_variant("gamma", STABILITY_TOP), Variant("adu", "default", "adu")], figure),
        "lam": pg.plan([_sweep_variant("lam", STABILITY_TOP), Variant("adu", "default", "adu")], figure),
        "shots": pg.plan([Variant("adu", "ADU@8", "adu"), Variant("adu@16", "ADU@16", "adu", (("shots", 16),)),
                          Variant("baseline", "Baseline@8", "baseline"),
                          Variant("baseline@16", "Baseline@16", "baseline", (("shots", 16),))], figure),
        "pseudo": pg.plan([Variant("adu", "full labels", "adu"),
                           Variant("adu/zeroshot@0", "zero-shot pseudo-labels, no domain label", "adu",
                                   (("domain_label_fraction", 0.0), ("pseudo_labeler", "zeroshot"))),
                           Variant("adu/kmeans@0.05", "k-means pseudo-labels, 5 % labelled", "adu",
                                   (("domain_label_fraction", 0.05), ("pseudo_labeler", "kmeans")))], figure),
    }
    return plans


# --- the claims -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """One row of the ledger: what the paper claims, where, and how ours is measured."""

    key: str
    claim: str
    source: str  # the paper's table or figure
    page: str  # the book page with the details
    direction: str  # "+", "-", "=" (stability) or "q" (qualitative)
    measure: Callable[[Mapping[str, pd.DataFrame]], dict[str, Any] | None]
    effect_of: str  # what the effect is, in words


def _strongest_rival(runs: pd.DataFrame, me: str = "ADU") -> str | None:
    """The paper's Table 1 row (not ours: zero-shot, the gate) with the highest mean H, on the (forget set, seed)
    pairs every one of them has."""
    rivals = {METHOD_NAMES.get(m, m) for m in PAPER_METHODS} - {me}
    if not len(runs):
        return None
    best = best_by(runs[runs["variant"].isin(rivals)], by=None).get("all")
    return str(best["best"]) if best else None


def _adu_vs_rival(ev):
    rival = _strongest_rival(ev["t1"])
    return paired(ev["t1"], "ADU", rival).get("all") if rival else None


def _rows(table: Sequence[Variant], key: str) -> str:
    return next(v.label for v in table if v.key == key)


def _both_vs_best_single(ev):
    runs = ev["t2"]
    singles = [_rows(TABLE2_VARIANTS, "instapg_only"), _rows(TABLE2_VARIANTS, "ddl_only")]
    if not len(runs):
        return None
    means = runs[runs["variant"].isin(singles)].groupby("variant")["h"].mean()
    return paired(runs, _rows(TABLE2_VARIANTS, "adu"), str(means.idxmax())).get("all") if len(means) else None


CLAIMS: tuple[Claim, ...] = (
    Claim("t1_best", "ADU has the best H of all methods, at every |D_forget| and on every dataset", "Table 1",
          "main_results", "+", _adu_vs_rival, "ADU − the strongest of the paper's other rows by mean H"),
    Claim("t1_gate", "(Ours; the paper has no such row.) Training is needed: ADU beats a training-free domain gate "
          "(zero-shot CLIP that answers at random on images it detects as a forgotten domain)", "Table 1",
          "main_results", "+", lambda ev: paired(ev["t1"], "ADU", METHOD_NAMES["gate"]).get("all"),
          "ADU − domain gate"),
    Claim("t1_baseline", "ADU's H is far above the Baseline's (vision prompts with the unlearning losses only)",
          "Table 1", "main_results", "+", lambda ev: paired(ev["t1"], "ADU", "Baseline").get("all"),
          "ADU − Baseline"),
    Claim("t2_instapg", "InstaPG alone raises H over the Baseline", "Table 2", "ablation", "+",
          lambda ev: paired(ev["t2"], _rows(TABLE2_VARIANTS, "instapg_only"),
                            _rows(TABLE2_VARIANTS, "baseline")).get("all"), "InstaPG only − Baseline"),
    Claim("t2_ddl", "DDL alone raises H over the Baseline", "Table 2", "ablation", "+",
          lambda ev: paired(ev["t2"], _rows(TABLE2_VARIANTS, "ddl_only"),
                            _rows(TABLE2_VARIANTS, "baseline")).get("all"), "DDL only − Baseline"),
    Claim("t2_both", "DDL and InstaPG together raise H most", "Table 2", "ablation", "+", _both_vs_best_single,
          "both − the better single component"),
    Claim("t3_ce", "DDL needs its domain-classification CE term (MMD alone is worse)", "Table 3", "ablation", "+",
          lambda ev: paired(ev["t3"], _rows(TABLE3_VARIANTS, "adu"), _rows(TABLE3_VARIANTS, "mmd_only")).get("all"),
          "CE + MMD − MMD only"),
    Claim("t3_mmd", "DDL needs its MMD term (CE alone is worse)", "Table 3", "ablation", "+",
          lambda ev: paired(ev["t3"], _rows(TABLE3_VARIANTS, "adu"), _rows(TABLE3_VARIANTS, "ce_only")).get("all"),
          "CE + MMD − CE only"),
    Claim("t4_domains", "ADU makes the domains more separable (domain classification accuracy)", "Table 4",
          "domain_accuracy", "+",
          lambda ev: paired(ev["t4"], "ADU", "Baseline", "domain_acc_probe").get("all"),
          "ADU − Baseline, domain accuracy of a linear probe (%)"),
    Claim("sens_gamma", "H stays stable once γ passes a threshold", "Sensitivity figure", "sensitivity", "=",
          lambda ev: paired(ev["gamma"], f"{STABILITY_TOP:g}", "default").get("all"),
          f"H at γ = {STABILITY_TOP:g} − H at the default γ"),
    Claim("sens_lam", "H stays stable once λ passes a threshold", "Sensitivity figure", "sensitivity", "=",
          lambda ev: paired(ev["lam"], f"{STABILITY_TOP:g}", "default").get("all"),
          f"H at λ = {STABILITY_TOP:g} − H at the default λ"),
    Claim("shots_adu", "ADU keeps improving with more training images", "Shots figure", "shots", "+",
          lambda ev: paired(ev["shots"], "ADU@16", "ADU@8").get("all"), "ADU: H with 16 shots − with 8"),
    Claim("shots_baseline", "The Baseline overfits as training images increase", "Shots figure", "shots", "-",
          lambda ev: paired(ev["shots"], "Baseline@16", "Baseline@8").get("all"),
          "Baseline: H with 16 shots − with 8"),
    Claim("pseudo", "ADU keeps working when domain labels are pseudo-labels", "Appendix", "pseudo_labels", "=",
          lambda ev: paired(ev["pseudo"], "zero-shot pseudo-labels, no domain label", "full labels").get("all"),
          "H with zero-shot pseudo-labels and no domain label − with every label"),
    Claim("tsne", "After ADU the features form one cluster per domain (zero-shot CLIP mixes them)", "t-SNE figure",
          "tsne", "q", lambda ev: None, "silhouette of the domains, before and after (figure page)"),
    Claim("attention", "After ADU the attention on the object fades in the forgotten domain only",
          "Attention figure", "attention", "q", lambda ev: None, "rollout entropy per domain (figure page)"),
)


# --- the paper's side -------------------------------------------------------------------------------------------------
def _mean_gap(paper: pd.DataFrame, table: int, a: Mapping[str, Any], b: Mapping[str, Any],
              metric: str = "h") -> dict[str, float]:
    """The paper's a − b per dataset, averaged over |D_forget| (rows selected by column values)."""
    part = paper[(paper["table"] == table) & (paper["metric"] == metric)]

    def pick(sel):
        rows = part
        for k, v in sel.items():
            rows = rows[rows[k] == v]
        return rows.groupby(["dataset", "n_forget"])["value"].mean()

    diff = (pick(a) - pick(b)).dropna()
    return {ds: float(g.mean()) for ds, g in diff.groupby(level=0)}


def paper_evidence(paper: pd.DataFrame) -> dict[str, str]:
    """Per claim, the paper's numbers behind it (as printed; labelled as the paper's)."""
    def fmt(gaps: Mapping[str, float]) -> str:
        return "; ".join(f"{dataset_name(ds)} {signed(g)}" for ds, g in gaps.items()) or "–"

    t1 = paper[(paper["table"] == 1) & (paper["metric"] == "h")]
    margins = []
    for (ds, k), g in t1.groupby(["dataset", "n_forget"]):
        adu = g.loc[g["method"] == "adu", "value"]
        rest = g.loc[g["method"] != "adu", "value"]
        if len(adu) and len(rest):
            margins.append(f"{dataset_name(ds)} |D_forget|={k}: {signed(float(adu.iloc[0]) - float(rest.max()))}")
    sw = {"instapg": True, "ddl": False}
    base = {"instapg": False, "ddl": False}
    return {
        "t1_best": "ADU − best other row, H: " + "; ".join(margins),
        "t1_gate": "not in the paper (it compares trained methods only)",
        "t1_baseline": "ADU − Baseline, H (mean over |D_forget|): "
                       + fmt(_mean_gap(paper, 1, {"method": "adu"}, {"method": "baseline"})),
        "t2_instapg": "InstaPG only − Baseline, H: " + fmt(_mean_gap(paper, 2, sw, base)),
        "t2_ddl": "DDL only − Baseline, H: " + fmt(_mean_gap(paper, 2, {"instapg": False, "ddl": True}, base)),
        "t2_both": "both − DDL only, H: " + fmt(_mean_gap(paper, 2, {"instapg": True, "ddl": True},
                                                          {"instapg": False, "ddl": True})),
        "t3_ce": "CE + MMD − MMD only, H: " + fmt(_mean_gap(paper, 3, {"ddl_ce": True, "ddl_mmd": True},
                                                            {"ddl_ce": False, "ddl_mmd": True})),
        "t3_mmd": "CE + MMD − CE only, H: " + fmt(_mean_gap(paper, 3, {"ddl_ce": True, "ddl_mmd": True},
                                                            {"ddl_ce": True, "ddl_mmd": False})),
        "t4_domains": "Office-Home, Art forgotten, domain accuracy: " + _paper_t4(paper),
        "sens_gamma": "\"Performance stabilizes once γ and λ exceed certain thresholds\" (no values printed)",
        "sens_lam": "\"Performance stabilizes once γ and λ exceed certain thresholds\" (no values printed)",
        "shots_adu": "\"the proposed method continues to improve\" (Mini DomainNet; no values printed)",
        "shots_baseline": "\"the Baseline exhibits overfitting tendencies\" (Mini DomainNet; no values printed)",
        "pseudo": "\"it worked well\" (appendix; no values available to us)",
        "tsne": "Zero-shot CLIP's domains intermixed; ADU's four clusters (Mini DomainNet; figure only)",
        "attention": "Attention on the object weakens in the forgotten domain, kept elsewhere (figure only)",
    }


def _paper_t4(paper: pd.DataFrame) -> str:
    t4 = paper[paper["table"] == 4]
    return "; ".join(f"{METHOD_NAMES.get(m, m)} {v:.2f} %" for m, v in zip(t4["method"], t4["value"], strict=True))


# --- the table --------------------------------------------------------------------------------------------------------
def ledger_rows(evidence: Mapping[str, Mapping[str, pd.DataFrame] | None], paper: pd.DataFrame) -> pd.DataFrame:
    """One row per claim: the paper's evidence, and per tier (``evidence``: tier -> collected runs, None when that
    tier has no runs here) our effect and its verdict."""
    said = paper_evidence(paper)
    rows = []
    for c in CLAIMS:
        row: dict[str, Any] = {"claim": c.claim, "paper's evidence": said.get(c.key, "–"), "source": c.source,
                               "measured as": c.effect_of, "page": c.page, "key": c.key}
        for tier, ev in evidence.items():
            effect = None if ev is None else c.measure(ev)
            row[f"{tier}: ours"] = ("(see the figure page)" if c.direction == "q" else
                                    "no runs" if not effect or not effect.get("n") else effect_text(effect))
            row[f"{tier}: verdict"] = verdict(effect, c.direction)
        rows.append(row)
    return pd.DataFrame(rows)


# --- every run behind the book, as one table ---------------------------------------------------------------------------
def runs_csv(results: Sequence[Any], path: Any) -> tuple[int, list[str]]:
    """Write one CSV row per valid run.json under the ``results`` folders (every tier's store): config, metrics,
    seed, tier, code version, weights and data hashes, device, precision and time. Returns (rows, problems).
    Written by the book's build (the ledger page), so it never drifts from the pages."""
    import json
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


def verdict_counts(table: pd.DataFrame, first: str, dataset: str) -> dict[str, str]:
    """Glued phrases: how many claims got each verdict ("3 supported, 1 contradicted, ..."), for the page's own tier
    (``first``, on ``dataset``) and for the paper tier."""
    def counts(tier: str) -> str:
        column = table.get(f"{tier}: verdict", pd.Series(dtype=str)).value_counts()
        return ", ".join(f"{int(column[v])} {v}" for v in VERDICTS if v in column) or "no claims"

    return {"ledger_margin": f"{STABILITY_MARGIN:g}", "ledger_first_tier": first, "ledger_dataset": dataset_name(dataset),
            "ledger_first_counts": counts(first), "ledger_paper_counts": counts("paper")}


def display(table: pd.DataFrame, tiers: Sequence[str]) -> pd.DataFrame:
    """The ledger as the page shows it: the claim linked to its page, the paper's evidence, then per tier ours and
    the verdict."""
    shown = table.assign(claim=[f'{c} (<a href="{p}.html">{s}</a>)' for c, p, s in
                                zip(table["claim"], table["page"], table["source"], strict=True)])
    columns = ["claim", "paper's evidence", "measured as"]
    for tier in tiers:
        columns += [f"{tier}: ours", f"{tier}: verdict"]
    return shown[columns].set_index("claim")
