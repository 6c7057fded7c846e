"""How far the testbed carries: the testbed's regime measured beside what is known of the paper's, and which
ledger verdicts rest on a property that differs.

The testbed's backbone is not CLIP ViT-B/16. Where a claim's verdict rests on a property of the backbone or the data
(domains already separable, 7 classes, whether few-shot tuning helps at all), a verdict on the testbed says what the
paper's question gets on a small proxy, not what CLIP would give. Every testbed value here comes from the runs and
the testbed's card (``models/testbed/card.json``); every value of the paper's regime is labelled: *printed by the
paper*, *inferred* (from the paper's own numbers or the public weights; our reading), or *unknown*.

The *tuning gain* is measured by its own grid: prompt tuning with L_forget off (the Baseline's prompts trained on the
kept domains only) against zero-shot CLIP, Mem paired over the one-domain forget sets and seeds, under each recipe
(the paper's text and the authors' released code). Nothing here is chosen on the test set: the grid is fixed before
its runs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .effects import effect_text, effect_verdict, paired
from .facts import compare, fmt, signed
from .ledger import CLAIMS, RECIPE_LABELS, alternative_recipes, recipe_view
from .names import METHOD_NAMES, dataset_name
from .plans import PROBE_GATE, PlannedRun, Variant, method_variants, parse_ints, parse_list, plan_runs

__all__ = ["CLIP_LOGIT_SCALE", "PROPERTIES", "Property", "backbone_text", "claims_table", "degraded_variants",
           "gate_facts", "page_plan", "regime_facts", "regime_table", "regime_values", "testbed_card",
           "tuning_effects", "tuning_variants"]

# The openai CLIP weights' temperature: exp(logit_scale) = 100 in the released checkpoint; the paper does not
# print it (so the regime table labels it inferred).
CLIP_LOGIT_SCALE = 100.0
# When two measured values of a property "differ": accuracies more than this many points apart, other quantities
# more than this share of the paper's value apart (a declared rule, not a test).
DIFFERS_POINTS = 10.0
DIFFERS_SHARE = 0.1
ZERO_SHOT = METHOD_NAMES["zeroshot"]
GATE = METHOD_NAMES["gate"]
TUNED = "prompt tuning, L_forget off"


# --- the backbone -------------------------------------------------------------------------------------------------
def testbed_card(cfg: Any) -> dict[str, Any] | None:
    """The card beside the run's checkpoint (the testbed CLIP's ``card.json``), or None for other weights."""
    from adu_core.backbones import looks_like_path
    from adu_core.paths import resolve_path

    if not cfg.pretrained or not looks_like_path(cfg.pretrained):
        return None
    card = resolve_path(cfg.pretrained).parent / "card.json"
    return json.loads(card.read_text()) if card.is_file() else None


def backbone_text(cfg: Any) -> str:
    """The backbone in words: the testbed's (from its card: its size, and that it is not CLIP), or the open_clip
    architecture and tag."""
    card = testbed_card(cfg)
    if card is None:
        return f"{cfg.backbone} ({cfg.pretrained or 'random weights'})"
    v = card["architecture"]["vision_cfg"]
    params = card.get("checkpoint", {}).get("parameters")
    size = f", {params / 1e6:.1f} M parameters" if params else ""
    return (f"{card['model']} {card.get('version', '')}, a {v['layers']}-layer ViT at {v['image_size']} px (patch "
            f"{v['patch_size']}, width {v['width']}{size}) that the project pretrained on part of "
            f"{dataset_name(card['data']['dataset'])}, not the paper's CLIP ViT-B/16").replace("  ", " ")


# --- the runs this page plans ------------------------------------------------------------------------------------
def tuning_variants(recipe: str) -> Variant:
    """The Baseline's prompts trained on the kept domains only (L_forget off) under ``recipe``."""
    over = () if recipe == "paper" else (("recipe", recipe),)
    return Variant(f"tuned/{recipe}", TUNED, "baseline", (*over, ("forget_loss", "none")))


def degraded_variants(accuracies: Sequence[float]) -> list[Variant]:
    """The zero-shot gate with its detector degraded to each accuracy (a fraction; ``method.detector_accuracy``)."""
    return [Variant(f"gate@{a:g}", f"{GATE}, detector degraded to {100 * a:g} %", "gate",
                    (("method_options", {"detector_accuracy": float(a)}),)) for a in accuracies]


def page_plan(pg, recipes: Any = "paper,authors_code", tuning_n_forget: Any = "1",
              detector_accuracies: Any = "0.3,0.45,0.6,0.75", gate_seeds: Any = "1", n_forget: Any = "1,2,3"
              ) -> dict[str, list[PlannedRun]]:
    """The regime page's runs: ``table1`` (zero-shot CLIP and both gates on Table 1's grid: the forget sets of
    sizes ``n_forget``), ``tuning`` (zero-shot CLIP and prompt tuning with L_forget off under each recipe this
    version runs, on the |D_forget| = ``tuning_n_forget`` sets) and ``degraded`` (the gate at each detector accuracy,
    on Table 1's forget sets, seeds ``gate_seeds``). Runs are labelled ``part``, ``recipe`` and ``recipe_specific``
    (for :func:`adu_book.ledger.recipe_view`)."""
    sets = pg.forget("all", n_forget)
    sizes = parse_ints(tuning_n_forget)
    tuning_sets = [s for s in pg.forget("all", tuning_n_forget) if len(s) in sizes]
    wanted = parse_list(recipes)
    runnable = ["paper", *alternative_recipes()]
    table1 = [*method_variants(["zeroshot", "gate"]), PROBE_GATE]
    plan = {"table1": pg.plan(table1, sets, part="table1", recipe="paper", recipe_specific=False),
            "tuning": pg.plan(method_variants(["zeroshot"]), tuning_sets, part="tuning", recipe="paper",
                              recipe_specific=False)}
    for recipe in [r for r in wanted if r in runnable]:
        plan["tuning"] += pg.plan([tuning_variants(recipe)], tuning_sets, part="tuning", recipe=recipe,
                                  recipe_specific=True)
    accuracies = [float(a) for a in parse_list(detector_accuracies)]
    plan["degraded"] = plan_runs(pg.dataset, pg.tier, degraded_variants(accuracies), sets, parse_ints(gate_seeds),
                                 labels={"part": "degraded", "recipe": "paper", "recipe_specific": False},
                                 **pg.overrides)
    return plan


# --- what the runs measure ---------------------------------------------------------------------------------------
def with_train_mem(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` plus ``train_mem``: Mem on the few-shot training images themselves (run.json ``metrics.train``)."""
    from .tables import with_run_metrics

    return with_run_metrics(runs, {"train_mem": ("train", "mem")}) if len(runs) else runs.assign(train_mem=[])


def gate_check(runs: pd.DataFrame, n_classes: int) -> pd.DataFrame:
    """The closed form against every gate run of the page (:func:`adu_book.gate_model.check_runs`), with the kind
    of ``detector``: zero-shot (the committed Table 1 gate), probe, degraded."""
    from .gate_model import check_runs

    if not len(runs):
        return pd.DataFrame(columns=["detector", "a", "h_observed", "h_closed_form", "h_error"])
    t1 = runs[runs["part"] == "table1"]
    zs = t1[t1["variant"] == ZERO_SHOT]
    kinds = {GATE: "zero-shot", PROBE_GATE.label: "probe"}
    gates = pd.concat([t1[t1["variant"].isin(list(kinds))], runs[runs["part"] == "degraded"]])
    check = check_runs(gates, zs, n_classes)
    if len(check):
        check["detector"] = check["variant"].map(kinds).fillna("degraded")
    return check


def tuning_effects(runs: pd.DataFrame, recipes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per recipe: tuned − zero-shot, paired by (forget set, seed), for Mem on the test set (``mem``) and on the
    training images (``train_mem``: how well tuning fits the pool it saw)."""
    part = runs[runs["part"] == "tuning"] if len(runs) and "part" in runs else runs.iloc[0:0]
    out: dict[str, dict[str, Any]] = {}
    for recipe in recipes:
        view = recipe_view(part, recipe)
        out[recipe] = {m: paired(view, TUNED, ZERO_SHOT, m).get("all") if m in view else None
                       for m in ("mem", "train_mem")}
    return out


def _tsne_silhouette(results_root: Path, dataset: str) -> tuple[float, int | None]:
    """Zero-shot CLIP's domain silhouette from a t-SNE page artifact under the results store (NaN when none)."""
    for path in sorted((Path(results_root) / dataset).glob("*/*/*/figure-tsne.json")):
        try:
            data = json.loads(path.read_text())
            scores = pd.DataFrame(data["payload"]["scores"]).set_index("model")
            return float(scores.loc[ZERO_SHOT, "domains"]), data.get("params", {}).get("n_per_domain")
        except (OSError, KeyError, ValueError, TypeError):
            continue
    return math.nan, None


def regime_values(pg, runs: pd.DataFrame, evidence: Mapping[str, pd.DataFrame], recipes: Sequence[str]
                  ) -> dict[str, Any]:
    """The testbed's measured values and the paper's known ones, as numbers (the table and prose format them)."""
    from adu_core.data import get_dataset
    from adu_core.methods.gate import GateOptions

    from .gate_model import PAPER_DATASETS

    cfg = pg.session_cfg()
    card = testbed_card(cfg) or {}
    diag = card.get("diagnostics", {}).get("this", {})
    t1 = runs[runs["part"] == "table1"] if len(runs) else runs
    zs = t1[t1["variant"] == ZERO_SHOT] if len(t1) else t1
    paper = pg.paper
    t4 = paper[(paper["table"] == 4) & (paper["method"] == "zeroshot")]
    templates = card.get("training_config", {}).get("style_templates", [])
    gate_template = GateOptions().domain_template.replace("{domain}", "{s}").replace("{}", "{c}")
    silhouette, n_sil = _tsne_silhouette(pg.results_root, pg.dataset)

    def mean(frame: pd.DataFrame, variant: str, col: str) -> float:
        part = frame[frame["variant"] == variant] if len(frame) else frame
        return float(part[col].mean()) if len(part) and col in part else math.nan

    t1_paper = paper[(paper["table"] == 1) & (paper["metric"] == "mem")]
    paper_gap = {}
    for ds in PAPER_DATASETS:
        part = t1_paper[t1_paper["dataset"] == ds]
        b = part[part["method"] == "baseline"].set_index("n_forget")["value"]
        lpp = part[part["method"] == "lp++"].set_index("n_forget")["value"]
        if len(b) and len(lpp):
            paper_gap[ds] = float((b - lpp).dropna().mean())
    trained_mem = {r: {m: paired(recipe_view(evidence.get("t1"), r), METHOD_NAMES[m], METHOD_NAMES["lp++"],
                                 "mem").get("all")
                       for m in ("baseline", "adu")} for r in recipes}
    trained_vs_zs = {m: paired(recipe_view(evidence.get("t1"), "paper"), METHOD_NAMES[m], ZERO_SHOT, "mem").get("all")
                     for m in ("baseline", "adu")}
    return {
        "dataset": pg.dataset, "n_domains": len(pg.domains), "backbone": backbone_text(cfg),
        "n_classes": len(pg.data.classnames),
        "paper_classes": {ds: len(get_dataset(ds).classnames) for ds in PAPER_DATASETS},
        "probe": float(zs["domain_acc_probe"].mean()) if len(zs) else math.nan, "probe_n": len(zs),
        "paper_probe": float(t4["value"].iloc[0]) if len(t4) else math.nan,
        "silhouette": silhouette, "silhouette_n": n_sil,
        "detector": mean(t1, GATE, "domain_acc_head"), "probe_detector": mean(t1, PROBE_GATE.label, "domain_acc_head"),
        "captions": gate_template in templates, "gate_template": gate_template, "n_templates": len(templates),
        "zs_mem": float(zs["mem"].mean()) if len(zs) else math.nan,
        "tuning": tuning_effects(runs, recipes),
        "trained_vs_lpp": trained_mem, "paper_baseline_vs_lpp": paper_gap, "trained_vs_zs": trained_vs_zs,
        "logit_scale": diag.get("logit_scale", math.nan),
        "pool_gap": (diag.get("memorisation_gap") or {}).get("pool_minus_test", math.nan),
        "pool_gap_ci": (diag.get("memorisation_gap") or {}).get("pool_minus_test_ci95", math.nan),
        "variance": diag.get("variance_share") or {},
        "recipes": list(recipes),
    }


# --- the regime, property by property ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Property:
    """One property of the regime: its name, and from the measured values its testbed value, what is known of the
    paper's (with its label), whether they differ, and whether it holds under both recipes."""

    key: str
    name: str
    short: str  # the name where a ledger row lists what its verdict rests on
    rows: Any  # values -> (testbed, paper, label, differs, recipes)


def _caps(v: Mapping[str, Any]) -> str:
    return "; ".join(f"{dataset_name(ds)} {c:,}: {100 * (1 - 1 / c):.1f} %" for ds, c in v["paper_classes"].items())


def _no_training(_: Mapping[str, Any]) -> str:
    return "yes: no training enters it (a property of the frozen backbone and the data)"


def _per_recipe(effects: Mapping[str, Any], words: tuple[str, str] = ("higher", "lower")) -> str:
    return "; ".join(f"{RECIPE_LABELS.get(r, r)}: {effect_verdict(e, *words)}" for r, e in effects.items())


def _tuning_differs(v: Mapping[str, Any]) -> str:
    e = (v["tuning"].get("paper") or {}).get("mem")
    if not e or not e.get("n"):
        return "not measured yet"
    if e["excludes_zero"] and e["mean"] > 0:
        return "no: tuning helps here too"
    return "yes (inferred): tuning does not raise Mem here"


def _trained_differs(v: Mapping[str, Any]) -> str:
    e = (v["trained_vs_lpp"].get("paper") or {}).get("baseline")
    gaps = list(v["paper_baseline_vs_lpp"].values())
    if not e or not e.get("n") or math.isnan(e.get("lo", math.nan)) or not gaps:
        return "not measured yet"
    outside = e["hi"] < min(gaps) or e["lo"] > max(gaps)
    return ("yes: the interval excludes every dataset's gap in the paper" if outside
            else "no: the interval covers the paper's gap")


PROPERTIES: tuple[Property, ...] = (
    Property("backbone", "backbone", "backbone", lambda v: (
        v["backbone"], "CLIP ViT-B/16, OpenAI weights: 12 layers, 224 px, patch 16, width 768", "printed by the paper",
        "yes", _no_training(v))),
    Property("separable", "domains separable before any unlearning", "domains already separable", lambda v: (
        f"linear domain probe on zero-shot features {fmt(v['probe'], 1)} % (fit on the few-shot pool, tested on the "
        f"test set; mean of {v['probe_n']} runs; chance {100 / v['n_domains']:.0f} %); domain silhouette "
        f"{fmt(v['silhouette'], 2)} in zero-shot t-SNE features"
        + (f" ({v['silhouette_n']} images per domain)" if v["silhouette_n"] else ""),
        f"{fmt(v['paper_probe'], 2)} % 'before unlearning' (Table 4, Office-Home; protocol not stated); zero-shot "
        "t-SNE: domains 'intermixed' (figure, Mini DomainNet)", "printed by the paper",
        "not measured yet" if math.isnan(v["probe"]) else
        "yes" if abs(v["probe"] - v["paper_probe"]) > DIFFERS_POINTS else "no",
        _no_training(v))),
    Property("detector", "the gate's zero-shot domain detector", "detector accuracy", lambda v: (
        f"{fmt(v['detector'], 1)} % of test images' domains right (prompts '{v['gate_template']}'); the probe "
        f"detector (few-shot pool only): {fmt(v['probe_detector'], 1)} %",
        "not measured: one gate run at the paper tier measures it in seconds (command below)", "unknown",
        "unknown", _no_training(v))),
    Property("captions", "the detector's prompts among the backbone's pretraining captions", "captions", lambda v: (
        f"{'yes' if v['captions'] else 'no'}: '{v['gate_template']}' is one of the {v['n_templates']} caption "
        "templates the testbed was pretrained with, for exactly these styles" if v["captions"] else
        f"no: '{v['gate_template']}' is not among its caption templates",
        "CLIP's web captions were not written for these four styles", "inferred",
        "yes (inferred)" if v["captions"] else "no", _no_training(v))),
    Property("classes", "classes C, and the For of a random answer, 100·(1 − 1/C), the cap of any method that "
             "forgets by answering at random", "classes", lambda v: (
                 f"{v['n_classes']}: {100 * (1 - 1 / v['n_classes']):.1f} %", _caps(v),
                 "printed by the paper (class counts; ImageNet's second domain inferred)", "yes", _no_training(v))),
    Property("tuning_gain", "tuning gain: prompt tuning on the kept domains (L_forget off) − zero-shot CLIP, Mem",
             "tuning gain", lambda v: (
                 "; ".join(f"{RECIPE_LABELS.get(r, r)}: {effect_text((e or {}).get('mem'))}"
                           for r, e in v["tuning"].items()),
                 "not printed (no zero-shot row); few-shot prompt tuning raises CLIP's accuracy on the data it is "
                 "tuned for in the prompt-learning literature the paper builds on", "inferred",
                 _tuning_differs(v), _per_recipe({r: (e or {}).get("mem") for r, e in v["tuning"].items()}))),
    Property("trained_mem", "Mem kept by the trained methods: against a linear probe on frozen features (LP++), "
             "the paper's like-for-like comparison, and against zero-shot CLIP", "Mem kept by training", lambda v: (
        "; ".join(f"{METHOD_NAMES[m]} − LP++ {effect_text(e)}"
                  for m, e in (v["trained_vs_lpp"].get("paper") or {}).items())
        + "; against zero-shot CLIP: " + "; ".join(f"{METHOD_NAMES[m]} {effect_text(e)}"
                                                   for m, e in v["trained_vs_zs"].items()),
        "Baseline − LP++, Mem (mean over |D_forget|): " + "; ".join(
            f"{dataset_name(ds)} {signed(g)}" for ds, g in v["paper_baseline_vs_lpp"].items()),
        "printed by the paper", _trained_differs(v),
        _per_recipe({r: (e or {}).get("baseline") for r, e in v["trained_vs_lpp"].items()}))),
    Property("logit_scale", "the backbone's logit scale (softmax temperature of every class prediction)",
             "logit scale", lambda v: (
        fmt(v["logit_scale"], 2), f"{CLIP_LOGIT_SCALE:g} (the openai weights' exp(logit_scale))", "inferred",
        "unknown" if math.isnan(v["logit_scale"]) else
        "yes" if abs(v["logit_scale"] - CLIP_LOGIT_SCALE) > DIFFERS_SHARE * CLIP_LOGIT_SCALE else "no",
        _no_training(v))),
    Property("pool_gap", "has the backbone seen the few-shot pool? zero-shot accuracy on the pool − on the test set",
             "pool memorised", lambda v: (
                 f"{signed(v['pool_gap'])} points (95 % CI ±{fmt(v['pool_gap_ci'])}): not memorised",
                        "CLIP's web pretraining predates these datasets' few-shot draws", "inferred", "no",
                        _no_training(v))),
    Property("variance", "share of the embedding's variance explained by class / by domain", "variance shares",
             lambda v: (
        f"{fmt(v['variance'].get('class'), 3)} / {fmt(v['variance'].get('domain'), 3)}", "not reported",
        "unknown", "unknown", _no_training(v))),
)


def regime_table(values: Mapping[str, Any]) -> pd.DataFrame:
    """The regime side by side: one row per property."""
    rows = []
    for p in PROPERTIES:
        testbed, paper, label, differs, recipes = p.rows(values)
        rows.append({"property": p.name, f"testbed ({dataset_name(values['dataset'])})": testbed,
                     "the paper's regime": paper, "known as": label, "differs": differs,
                     "holds under both recipes": recipes, "key": p.key})
    return pd.DataFrame(rows).set_index("property")


def property_names() -> dict[str, str]:
    """Each property's short name, by key (what a ledger row lists as the properties its verdict rests on)."""
    return {p.key: p.short for p in PROPERTIES}


def differs_kind(text: str) -> str:
    """"yes", "no" or "unknown" for a property's ``differs`` cell ("not measured yet" is unknown, not "no")."""
    m = re.match(r"(yes|no)\b", str(text))
    return m.group(1) if m else "unknown"


def claims_table(ledger_table: pd.DataFrame, regime: pd.DataFrame, tier: str) -> pd.DataFrame:
    """Per ledger row (the paper's recipe): its verdict on the testbed, the properties it rests on, and whether any
    of them differs from the paper's regime."""
    differs = dict(zip(regime["key"], regime["differs"], strict=True))
    names = property_names()
    rows = []
    for c in CLAIMS:
        line = ledger_table[(ledger_table["key"] == c.key) & (ledger_table["recipe"] == "paper")]
        yes = [names[p] for p in c.depends if differs_kind(differs.get(p, "")) == "yes"]
        unknown = [names[p] for p in c.depends if differs_kind(differs.get(p, "")) == "unknown"]
        rows.append({"claim": c.claim, "whose": "ours" if c.whose == "ours" else "the paper",
                     "testbed verdict": line[f"{tier}: verdict"].iloc[0] if len(line) else "–",
                     "rests on": ", ".join(names[p] for p in c.depends) or "–",
                     "depends on a property that differs": (f"yes: {', '.join(yes)}" if yes else
                                                            f"unknown: {', '.join(unknown)}" if unknown else "no"),
                     "key": c.key})
    return pd.DataFrame(rows).set_index("claim")


# --- glued facts --------------------------------------------------------------------------------------------------
def regime_facts(values: Mapping[str, Any], claims: pd.DataFrame, ledger_table: pd.DataFrame, tier: str
                 ) -> dict[str, str]:
    """The regime page's prose: the headline values, the tuning gain per recipe, how many verdicts rest on a property
    that differs, and which verdicts the choice of interval changes."""
    dep = claims[claims["depends on a property that differs"].str.startswith("yes")]
    tested = dep[~dep["testbed verdict"].isin(["not tested here", "qualitative", "–"])]
    pooled = f"{tier}: verdict if pairs were independent"
    changed = ledger_table[(ledger_table[pooled] != ledger_table[f"{tier}: verdict"])
                           & ~ledger_table[f"{tier}: verdict"].isin(["not tested here", "qualitative"])] \
        if pooled in ledger_table else ledger_table.iloc[0:0]
    facts = {
        "regime_dataset": dataset_name(values["dataset"]), "regime_backbone": values["backbone"],
        "regime_probe": fmt(values["probe"], 1), "regime_paper_probe": fmt(values["paper_probe"], 2),
        "regime_silhouette": fmt(values["silhouette"], 2), "regime_detector": fmt(values["detector"], 1),
        "regime_probe_detector": fmt(values["probe_detector"], 1),
        "regime_classes": str(values["n_classes"]), "regime_cap": f"{100 * (1 - 1 / values['n_classes']):.1f}",
        "regime_paper_caps": _caps(values), "regime_zs_mem": fmt(values["zs_mem"], 1),
        "regime_n_claims": str(len(claims)), "regime_n_depend": str(len(dep)),
        "regime_n_depend_tested": str(len(tested)),
        "regime_changed": "; ".join(
            f"{c} [{RECIPE_LABELS.get(r, r)}]: {p} → {n}" for c, r, p, n in
            zip(changed["claim"], changed["recipe"], changed[pooled], changed[f"{tier}: verdict"], strict=True))
        or "none",
    }
    for recipe in RECIPE_LABELS:  # every recipe the prose names, measured or not
        if recipe not in values["tuning"]:
            facts[f"regime_tuning_{recipe}"] = facts[f"regime_tuning_train_{recipe}"] = "not in this execution's grid"
            continue
        e = values["tuning"][recipe] or {}
        facts[f"regime_tuning_{recipe}"] = compare(e.get("mem"), "kept-domain Mem after prompt tuning without "
                                                   "L_forget", "zero-shot CLIP's", unit="points")
        facts[f"regime_tuning_train_{recipe}"] = effect_text(e.get("train_mem"))
    return facts


def gate_facts(check: pd.DataFrame, table: pd.DataFrame, dataset: str, tier: str,
               testbed: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The closed form against the runs (mean observed − closed form per kind of detector), the break-even
    accuracies per paper dataset and on the testbed (``testbed``: :func:`testbed_panel`, against our ADU), and the
    command that measures a paper-tier detector."""
    def agreement(kind: str) -> str:
        part = check[check["detector"] == kind] if len(check) else check
        if not len(part):
            return "no runs yet"
        err = part["h_error"]
        sd = float(err.std(ddof=1)) if len(err) > 1 else math.nan
        lo, hi = part["a"].min(), part["a"].max()
        span = f"a = {lo:.1f} %" if round(lo, 1) == round(hi, 1) else f"a from {lo:.1f} to {hi:.1f} %"
        return (f"{signed(float(err.mean()))} H points on average (sd {fmt(sd)}, largest "
                f"{float(err.abs().max()):.2f}; n = {len(part)} runs, {span})")

    def range_text(row) -> str:
        hi, lo = row["break-even a, % (high z)"], row["break-even a, % (low z)"]
        if math.isnan(hi) and math.isnan(lo):
            return "none: even a perfect detector stays below ADU"
        if math.isnan(lo):
            return f"{hi:.1f} % (high z); none (low z)"
        return f"{min(hi, lo):.1f} to {max(hi, lo):.1f} %"

    per = "; ".join(f"{r['dataset']} |D_forget| = {r['|D_forget|']}: {range_text(r)}" for _, r in table.iterrows())
    ours = []
    for k, target in sorted(((testbed or {}).get("adu_h") or {}).items()):
        curve = testbed["curves"][testbed["curves"]["n_forget"] == k]
        above = curve[curve["h"] >= target]
        ours.append(f"|D_forget| = {k}: " + (f"{above['a'].min():.0f} %" if len(above) else "none"))
    return {
        "gate_break_even_testbed": "; ".join(ours) or "not measurable yet (no runs)",
        "gate_check_zeroshot": agreement("zero-shot"), "gate_check_probe": agreement("probe"),
        "gate_check_degraded": agreement("degraded"), "gate_break_even": per,
        "gate_command": "adu run --dataset office_home --tier paper --method gate --forget art --seed 1",
        "gate_command_probe": ("adu run --dataset office_home --tier paper --method gate --forget art --seed 1 "
                               "--set method.detector=probe"),
    }


# --- the page's tables and the plot's testbed panel ----------------------------------------------------------------
def tuning_table(values: Mapping[str, Any]) -> pd.DataFrame:
    """The tuning gain per recipe: tuned − zero-shot in Mem on the test set (both intervals) and on the training
    images."""
    from .effects import interval_text

    rows = []
    for recipe, e in values["tuning"].items():
        mem = (e or {}).get("mem")
        rows.append({"recipe": RECIPE_LABELS.get(recipe, recipe),
                     "Mem (test): tuned − zero-shot": effect_text(mem),
                     "the same, over forget sets": interval_text((mem or {}).get("over_sets"), "forget sets"),
                     "Mem on the training images: tuned − zero-shot": effect_text((e or {}).get("train_mem"))})
    return pd.DataFrame(rows).set_index("recipe")


def check_summary(check: pd.DataFrame) -> pd.DataFrame:
    """Per kind of detector: runs, the accuracies they reached, and observed − closed form in H, Mem and For (mean,
    sample sd, largest absolute)."""
    rows = []
    for kind, part in (check.groupby("detector", sort=False) if len(check) else []):
        row: dict[str, Any] = {"detector": kind, "runs": len(part),
                               "a (%)": f"{part['a'].min():.1f}" if round(part["a"].min(), 1) == round(
                                   part["a"].max(), 1) else f"{part['a'].min():.1f} to {part['a'].max():.1f}"}
        for m, name in (("h", "H"), ("mem", "Mem"), ("for", "For")):
            err = part[f"{m}_error"]
            sd = f"{err.std(ddof=1):.2f}" if len(err) > 1 else "–"
            row[f"{name}: observed − closed form"] = (f"{signed(float(err.mean()))} (sd {sd}, "
                                                       f"max |{err.abs().max():.2f}|)")
        rows.append(row)
    return pd.DataFrame(rows).set_index("detector") if rows else pd.DataFrame(columns=["runs"])


def testbed_panel(pg, runs: pd.DataFrame, evidence: Mapping[str, pd.DataFrame], check: pd.DataFrame
                  ) -> dict[str, Any] | None:
    """The testbed's panel of :func:`adu_book.gate_model.h_against_accuracy`: the closed form per |D_forget|
    (zero-shot accuracy per domain: the mean of the zero-shot runs; test counts from one of them), the gate runs,
    and our ADU's mean H per |D_forget|."""
    from .gate_model import testbed_curves

    zs = runs[(runs["part"] == "table1") & (runs["variant"] == ZERO_SHOT)] if len(runs) else runs
    if not len(zs):
        return None
    metrics = [json.loads(Path(p).read_text())["metrics"] for p in zs["path"].drop_duplicates()]
    per_domain = pd.DataFrame([m["per_domain_acc"] for m in metrics]).mean().to_dict()
    n_test = metrics[0]["n_test"]
    sets = pd.DataFrame({"forget": sorted(set(zs["forget"]), key=lambda f: (f.count("+"), f))})
    adu = recipe_view(evidence.get("t1"), "paper")
    adu = adu[adu["variant"] == METHOD_NAMES["adu"]] if len(adu) else adu
    points = check.rename(columns={"h_observed": "h"})[["n_forget", "a", "h"]] if len(check) else None
    return {"name": f"{dataset_name(pg.dataset)} (testbed)",
            "curves": testbed_curves(sets, per_domain, n_test, len(pg.data.classnames)),
            "points": points, "adu_h": adu.groupby("n_forget")["h"].mean().to_dict() if len(adu) else {}}
