"""Forest plots: paired differences as points with their 95 % intervals, the way a reader compares effects at a glance.

One row per effect (a label, its group, the mean, the interval, n, and how to draw it); a vertical line at 0 (no
difference). An effect whose interval excludes 0 is drawn filled, one that covers 0 hollow and grey (no measurable
difference); a ledger row is drawn by its verdict instead (supported, contradicted, inconclusive: a shape and a
colour each, so that the verdict reads without colour too). The paper's own difference, from its printed means (it
has no interval), is a hollow marker of its own, one shape per paper dataset: context for ours, not the same
measurement when the dataset or the backbone differs.

Figures are :data:`BOOK_WIDTH_IN` wide, the book's text column at 1400 px, and their text is at least 9 points as
rendered (:mod:`adu_book.legibility` checks both on the built pages).

* :func:`forest` draws rows (:data:`COLUMNS`);
* :func:`versus_rows` builds them from runs: every row of a table minus a reference row, per group and pooled,
  with the paper's difference for the same rows (:func:`adu_book.paper.paper_difference`);
* :func:`ledger_rows` and :func:`ledger_forest` build and draw the claims ledger's headline.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from .effects import paired
from .names import dataset_name

__all__ = ["BOOK_WIDTH_IN", "COLUMNS", "FONT_PT", "PAPER_COLUMNS", "ablation_forest", "effect_rows", "forest",
           "ledger_forest", "ledger_rows", "sweep_forest", "table1_forest", "versus_rows"]

BOOK_WIDTH_IN = 7.5  # the book's text column at 1400 px is about 770 CSS px: 7.5 in at 96 CSS px per inch
FONT_PT = 10
COLUMNS = ["label", "group", "mean", "lo", "hi", "n", "kind", "band_lo", "band_hi"]
PAPER_COLUMNS = ["label", "group", "source", "value"]
# how a row is drawn, by its kind: (marker, colour, filled, legend text)
KINDS: dict[str, tuple[str, str, bool, str]] = {
    "outside": ("o", "#1f4e99", True, "ours: 95 % interval excludes 0"),
    "inside": ("o", "0.45", False, "ours: interval covers 0 (no measurable difference)"),
    "one pair": ("o", "0.45", False, "ours: one pair, no interval"),
    "supported": ("o", "#1b6e3a", True, "supported"),
    "contradicted": ("s", "#b2182b", True, "contradicted"),
    "inconclusive": ("o", "0.45", False, "inconclusive"),
}
PAPER_MARKERS = ("D", "^", "v", "P")


def _kind(e: Mapping[str, Any]) -> str:
    if not e or e.get("n", 0) < 2 or math.isnan(e.get("lo", math.nan)):
        return "one pair"
    return "outside" if e.get("excludes_zero") else "inside"


def effect_rows(effects: Mapping[Any, Mapping[str, Any] | None], group: str = "") -> pd.DataFrame:
    """Rows for :func:`forest` from ``label -> paired effect`` (:func:`adu_book.effects.paired` entries, or one of
    their intervals); a label without an effect gets no row."""
    rows = []
    for label, e in effects.items():
        if not e or not e.get("n"):
            continue
        rows.append({"label": str(label), "group": group, "mean": e.get("mean", math.nan),
                     "lo": e.get("lo", math.nan), "hi": e.get("hi", math.nan), "n": int(e.get("n", 0)),
                     "kind": _kind(e), "band_lo": math.nan, "band_hi": math.nan})
    return pd.DataFrame(rows, columns=COLUMNS)


def versus_rows(runs: pd.DataFrame, reference: str, rows: Sequence[str], by: str | None = "n_forget",
                metric: str = "h", group_name: str = "|D_forget| = {}", pooled: str = "all sizes, pooled",
                paper: pd.DataFrame | None = None, comparisons: Mapping[str, Any] | None = None,
                paper_dataset: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each of ``rows`` minus ``reference`` in ``metric``, paired by (forget set, seed), per value of ``by`` and
    pooled over all of them; plus the paper's difference for the same rows and groups (``comparisons``: row label
    -> a :class:`adu_book.paper.Comparison` or its key; the pooled group gets the mean of the paper's columns
    that ours has). Returns (rows for :func:`forest`, paper points)."""
    from .paper import paper_difference

    parts, points = [], []
    for row in rows:
        if row == reference:
            continue
        eff = paired(runs, row, reference, metric, by=by) if len(runs) else {}
        groups = [k for k in eff if k != "all"]
        named = {group_name.format(k): eff[k] for k in groups}
        if len(groups) > 1 or not by:
            named[pooled] = eff.get("all")
        elif not groups and eff.get("all"):
            named[pooled] = eff["all"]
        for g, e in named.items():
            parts.append(effect_rows({row: e}, g))
        comp = (comparisons or {}).get(row)
        if paper is not None and comp is not None:
            diff = paper_difference(paper, comp, dataset=paper_dataset)
            have = [int(k) for k in groups] if by == "n_forget" else []
            for k in have:
                v = diff.loc[diff["n_forget"] == k, "value"]
                for ds, val in zip(diff.loc[diff["n_forget"] == k, "dataset"], v, strict=True):
                    points.append({"label": row, "group": group_name.format(k), "source": ds, "value": val})
            if pooled in named:
                sub = diff[diff["n_forget"].isin(have)] if have else diff
                for ds, g in sub.groupby("dataset", sort=False):
                    points.append({"label": row, "group": pooled, "source": ds, "value": float(g["value"].mean())})
    frame = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) \
        else pd.DataFrame(columns=COLUMNS)
    return frame, pd.DataFrame(points, columns=PAPER_COLUMNS)


def _wrap(label: str, width: int) -> str:
    return "\n".join(textwrap.wrap(label, width, break_long_words=False)) or label


def _n_text(ns: Sequence[int]) -> str:
    ns = sorted({int(n) for n in ns})
    if not ns:
        return ""
    return f"n = {ns[0]}" if len(ns) == 1 else f"n = {ns[0]}–{ns[-1]}"


def forest(rows: pd.DataFrame, xlabel: str, title: str | None = None, groups: Sequence[str] | None = None,
           paper: pd.DataFrame | None = None, paper_label: str = "paper, {}: its printed means (context)",
           order: Sequence[str] | None = None, width: float = BOOK_WIDTH_IN, row_height: float = 0.3,
           label_width: int = 30, n_right: bool | None = None, sharex: bool = True,
           band_label: str = "band a stable effect must stay within",
           margin_label: str = "margin a non-inferior effect must stay above") -> plt.Figure:
    """A forest plot of ``rows`` (columns :data:`COLUMNS`; ``kind`` picks the marker, see :data:`KINDS`), one panel
    per group, side by side, sharing the row labels (``order``: top to bottom; default: first appearance).

    n is given once per panel in its title (a range when the rows differ), or, with one panel, per row on the
    right (``n_right``). ``band_lo``/``band_hi``: a shaded reference band in that row (e.g. the ledger's stability
    band). ``paper``: points (:data:`PAPER_COLUMNS`) drawn as hollow markers, one shape per ``source`` (a paper
    dataset), labelled with ``paper_label``. Returns the figure."""
    rows = rows.copy() if len(rows) else pd.DataFrame(columns=COLUMNS)
    groups = list(groups) if groups is not None else (list(dict.fromkeys(rows["group"])) or [""])
    labels = list(order) if order is not None else list(dict.fromkeys(rows["label"]))
    paper = paper if paper is not None and len(paper) else pd.DataFrame(columns=PAPER_COLUMNS)
    sources = list(dict.fromkeys(paper["source"]))
    n_all = sorted({int(n) for n in rows["n"]}) if len(rows) else []
    # n per row on the right only where the rows differ; one n for all goes under the x axis
    n_right = (len(groups) == 1 and len(n_all) > 1) if n_right is None else n_right
    if len(groups) == 1 and not n_right and n_all:
        xlabel = f"{xlabel}; n = {n_all[0]} pairs each" if len(n_all) == 1 else xlabel
    xlabel = _wrap(xlabel, 80)  # never wider than the figure
    wrapped = [_wrap(lab, label_width) for lab in labels]
    lines = sum(max(1, w.count("\n") + 1) for w in wrapped)
    height = 1.55 + row_height * max(2, len(labels)) + 0.12 * max(0, lines - len(labels))
    fig, axes = plt.subplots(1, len(groups), figsize=(width, height), sharey=True, sharex=sharex, squeeze=False,
                             layout="constrained")
    used: list[str] = []
    for ax, group in zip(axes[0], groups, strict=True):
        part = rows[rows["group"] == group]
        ax.axvline(0.0, color="0.25", lw=0.9, zorder=1)
        ns = []
        for y, label in enumerate(labels):
            sel = part[part["label"] == label]
            if len(sel) > 1:
                raise ValueError(f"label {label!r} appears twice in group {group!r}")
            if len(sel):
                r = sel.iloc[0]
                if not (pd.isna(r["band_lo"]) or pd.isna(r["band_hi"])):
                    ax.fill_betweenx([y - 0.38, y + 0.38], r["band_lo"], r["band_hi"], color="#dde6f2", lw=0,
                                     zorder=0)
                    used.append("band")
                elif not pd.isna(r["band_lo"]):  # a one-sided margin (non-inferiority)
                    ax.plot([r["band_lo"]] * 2, [y - 0.38, y + 0.38], color="#b2182b", lw=1.2, ls=(0, (2, 1.5)),
                            zorder=1)
                    used.append("margin")
                if not pd.isna(r["mean"]):
                    marker, colour, filled, _ = KINDS.get(r["kind"], KINDS["inside"])
                    if not (pd.isna(r["lo"]) or pd.isna(r["hi"])):
                        ax.plot([r["lo"], r["hi"]], [y, y], color=colour, lw=2.0, zorder=2, solid_capstyle="butt")
                    ax.plot(r["mean"], y, marker, ms=7, zorder=3, color=colour, mew=1.5,
                            markerfacecolor=colour if filled else "white")
                    used.append(r["kind"])
                    ns.append(int(r["n"]))
            for (source, value) in paper.loc[(paper["label"] == label) & (paper["group"] == group),
                                             ["source", "value"]].itertuples(index=False):
                ax.plot(value, y, PAPER_MARKERS[sources.index(source) % len(PAPER_MARKERS)], ms=6.5, zorder=4,
                        color="0.1", markerfacecolor="none", mew=1.2)
        ax.set_yticks(range(len(labels)), wrapped)
        ax.set_ylim(len(labels) - 0.5, -0.5)
        ax.set_xlabel(xlabel if len(groups) == 1 else "")
        if group or (ns and not n_right and len(groups) > 1):
            ax.set_title("\n".join(t for t in (group, "" if n_right else _n_text(ns)) if t), fontsize=FONT_PT)
        ax.grid(axis="x", color="0.9", lw=0.8)
        ax.set_axisbelow(True)
        ax.tick_params(axis="both", labelsize=FONT_PT - 0.5)
        ax.tick_params(axis="y", length=0)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if n_right:
            right = ax.twinx()
            right.set_ylim(ax.get_ylim())
            n_of = {lab: int(part.loc[part["label"] == lab, "n"].iloc[0]) for lab in labels
                    if (part["label"] == lab).any()}
            right.set_yticks(range(len(labels)), [f"n = {n_of[lab]}" if lab in n_of else "" for lab in labels])
            right.tick_params(axis="y", length=0, labelsize=FONT_PT - 1, labelcolor="0.3")
            for side in ("top", "right", "left", "bottom"):
                right.spines[side].set_visible(False)
    if len(groups) > 1:
        fig.supxlabel(xlabel, fontsize=FONT_PT)
    handles = [plt.Line2D([], [], marker=KINDS[k][0], color=KINDS[k][1], lw=2, mew=1.5,
                          markerfacecolor=KINDS[k][1] if KINDS[k][2] else "white", label=KINDS[k][3])
               for k in KINDS if k in used]
    if "band" in used:
        handles.append(plt.Rectangle((0, 0), 1, 1, color="#dde6f2", label=band_label))
    if "margin" in used:
        handles.append(plt.Line2D([], [], color="#b2182b", lw=1.2, ls=(0, (2, 1.5)), label=margin_label))
    handles += [plt.Line2D([], [], marker=PAPER_MARKERS[i % len(PAPER_MARKERS)], color="0.1", lw=0, mew=1.2,
                           markerfacecolor="none", label=paper_label.format(dataset_name(s)))
                for i, s in enumerate(sources)]
    if handles:
        longest = max(len(h.get_label()) for h in handles)
        fig.legend(handles=handles, loc="outside upper center" if len(groups) > 1 else "outside lower center",
                   ncols=1 if longest > 48 else min(2, len(handles)),
                   frameon=False, fontsize=FONT_PT - 0.5)
    if title:
        fig.suptitle(title, fontsize=FONT_PT + 1)
    return fig


# --- the claims ledger's headline ------------------------------------------------------------------------------------
def ledger_rows(evidence: Mapping[str, pd.DataFrame], paper_numbers: pd.DataFrame | None = None,
                recipe: str = "paper", metric: str = "h") -> tuple[pd.DataFrame, pd.DataFrame]:
    """One forest row per claim of :data:`adu_book.ledger.CLAIMS` measured in ``metric`` with runs under ``recipe``
    (its paired effect, drawn by its verdict; a stability claim with its band, a non-inferiority claim with its
    margin), and the paper's difference for the claims :data:`adu_book.paper.COMPARISONS` knows, on the
    |D_forget| our runs cover."""
    from . import ledger
    from .paper import COMPARISONS, paper_difference

    rows, points = [], []
    for c in ledger.CLAIMS:
        if c.direction == "q" or c.metric != metric:
            continue
        e = c.effect(evidence, recipe)
        if not e or not e.get("n"):
            continue
        label = f"{c.effect_of} [{c.source}]"
        band = (-ledger.STABILITY_MARGIN, ledger.STABILITY_MARGIN) if c.direction == "=" else \
            (-ledger.NONINFERIORITY_MARGIN, math.nan) if c.direction == ">=" else (math.nan, math.nan)
        rows.append({"label": label, "group": "", "mean": e["mean"], "lo": e["lo"], "hi": e["hi"],
                     "n": int(e["n"]), "kind": ledger.verdict(e, c.direction), "band_lo": band[0],
                     "band_hi": band[1]})
        if paper_numbers is not None and c.key in COMPARISONS:
            sizes = _covered_sizes(c, evidence)  # the |D_forget| our runs cover, as the ledger's table uses
            diff = paper_difference(paper_numbers, c.key, sizes)
            for ds, g in diff.groupby("dataset", sort=False):
                points.append({"label": label, "group": "", "source": ds, "value": float(g["value"].mean())})
    return pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(points, columns=PAPER_COLUMNS)


def _covered_sizes(claim, evidence: Mapping[str, pd.DataFrame]) -> list[int] | None:
    """The |D_forget| that the claim's two rows have runs for (paper's recipe), None when unknown."""
    from .ledger import recipe_view

    runs = recipe_view(evidence.get(claim.evidence), "paper") if claim.evidence else None
    if runs is None or not len(runs) or "n_forget" not in runs:
        return None
    a, b = claim.rows(runs)
    sizes = sorted({int(k) for k in runs.loc[runs["variant"].isin([a, b]), "n_forget"]})
    return sizes or None


def ledger_forest(pg, evidence: Mapping[str, pd.DataFrame] | None = None) -> plt.Figure:
    """The ledger's headline figure for page ``pg``: each claim's paired effect in H on ``pg``'s tier under the
    paper's recipe, coloured by its verdict, with the paper's own difference beside it (``evidence``: the
    ledger's :func:`adu_book.ledger.collect` of ``pg``; collected here when not given)."""
    from . import ledger

    evidence = ledger.collect(pg) if evidence is None else evidence
    rows, points = ledger_rows(evidence, pg.paper)
    return forest(rows, "our paired effect on the testbed, H points (dot: mean; line: 95 % interval)"
                  if pg.tier == "testbed" else f"our paired effect ({pg.tier} tier), H points",
                  paper=points, paper_label="paper, {}: its printed means, no interval", label_width=44)


# --- the table pages' headlines --------------------------------------------------------------------------------------
H_AXIS = "paired difference in H, points (dot: mean; line: 95 % interval)"


def table1_forest(pg, runs: pd.DataFrame) -> plt.Figure:
    """Table 1's headline: each method's H minus the Baseline's, paired by (forget set, seed), per |D_forget| and
    pooled, with the paper's own difference (its printed means, on the page's paper dataset) beside ours. ADU and
    the paper's rows first, then the rows the paper does not have."""
    from .names import METHOD_NAMES, PAPER_METHODS
    from .paper import beside

    have = list(dict.fromkeys(runs["variant"])) if len(runs) else []
    first = [METHOD_NAMES["adu"], *(METHOD_NAMES[m] for m in PAPER_METHODS if m not in ("adu", "baseline"))]
    order = [r for r in first if r in have] + [r for r in have if r not in first and r != METHOD_NAMES["baseline"]]
    comps = {METHOD_NAMES[m]: f"t1_{m}_vs_baseline" for m in PAPER_METHODS if m != "baseline"}
    side = beside(pg, 1)
    rows, points = versus_rows(runs, METHOD_NAMES["baseline"], order, paper=pg.paper, comparisons=comps,
                               paper_dataset=side.reference)
    return forest(rows, "H minus the Baseline's H, points (dot: mean; line: 95 % interval)", paper=points,
                  order=order, paper_label=_paper_words(side))


def _paper_words(side) -> str:
    return ("paper, {}: its printed means" if side.same else
            "paper ({}, ViT-B/16), its printed means: context, another setting")


def ablation_forest(pg, runs2: pd.DataFrame, runs3: pd.DataFrame, rows2: Sequence[Any],
                    rows3: Sequence[Any]) -> plt.Figure:
    """Tables 2 and 3's headline: each row of Table 2 minus the Baseline, each row of Table 3 minus InstaPG without
    DDL, paired and pooled over the |D_forget| ours covers, with the paper's difference on the same |D_forget|."""
    from .paper import COMPARISONS, beside, paper_difference
    from .plans import TABLE2_VARIANTS, TABLE3_VARIANTS

    keys2 = {"instapg_only": "t2_instapg", "ddl_only": "t2_ddl", "adu": "t2_adu"}
    keys3 = {"mmd_only": "t3_mmd_only", "ce_only": "t3_ce_only", "adu": "t3_adu"}
    parts, points, order = [], [], []
    for runs, rows, keys, table in ((runs2, rows2, keys2, 2), (runs3, rows3, keys3, 3)):
        if not rows:
            continue
        base = (TABLE2_VARIANTS if table == 2 else TABLE3_VARIANTS)[0]
        base_name = {2: "Baseline", 3: "InstaPG without DDL"}[table]
        side = beside(pg, table)
        sizes = sorted({int(k) for k in runs["n_forget"]}) if len(runs) else None
        for v in rows:
            if v.key == base.key:
                continue
            label = f"{v.label} − {base_name} [Table {table}]"
            order.append(label)
            e = paired(runs, v.label, base.label).get("all") if len(runs) else None
            parts.append(effect_rows({label: e}))
            if v.key in keys and keys[v.key] in COMPARISONS:
                d = paper_difference(pg.paper, keys[v.key], sizes, side.reference)
                if len(d):
                    points.append({"label": label, "group": "", "source": side.reference,
                                   "value": float(d["value"].mean())})
    rows_ = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) \
        else pd.DataFrame(columns=COLUMNS)
    return forest(rows_, H_AXIS, paper=pd.DataFrame(points, columns=PAPER_COLUMNS), order=order,
                  paper_label="paper, {}: its printed means on the same |D_forget| (context)", label_width=40)


SWEEP_SHORT = {"gamma": "γ", "lam": "λ", "prompt_depth": "prompt depth", "n_ctx": "prompt tokens",
               "mmd_kernel": "MMD kernel", "instapg": "InstaPG", "epochs": "epochs"}


def sweep_forest(runs: pd.DataFrame, points: Mapping[str, Sequence[Any]], titles: Mapping[str, str] | None = None,
                 symbols: Mapping[str, str] | None = None, units: Mapping[str, str] | None = None) -> plt.Figure:
    """The sensitivity page's headline: every point of every sweep minus the sweep's default, paired by (forget set,
    seed), so that no point is picked after looking; the sweep of DDL on the class token is set against DDL on the
    embedding at the same λ. (``titles``, ``symbols``, ``units``: kept for callers; the labels are short.)"""
    parts, order = [], []
    for sweep, pts in points.items():
        part = runs[runs["sweep"] == sweep] if len(runs) else runs
        default = next((p.value for p in pts if p.default), None)
        for p in pts:
            if p.default:
                continue
            if default is not None:
                label = f"{SWEEP_SHORT.get(sweep, sweep)}: {p.value} − {default} (default)"
                e = paired(part, p.value, default, key="setting").get("all") if len(part) else None
            elif sweep == "lam_pre":
                label = f"DDL feature: class token − embedding, λ = {p.value}"
                emb = runs[(runs["sweep"] == "lam") & (runs["setting"] == p.value)] if len(runs) else runs
                both = pd.concat([part[part["setting"] == p.value].assign(feature="class token"),
                                  emb.assign(feature="embedding")]) if len(runs) else runs
                e = paired(both, "class token", "embedding", key="feature").get("all") if len(both) else None
            else:
                continue
            order.append(label)
            parts.append(effect_rows({label: e}))
    rows = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) \
        else pd.DataFrame(columns=COLUMNS)
    return forest(rows, "H minus H at the sweep's default, points (dot: mean; line: 95 % interval over forget sets)",
                  order=[o for o in order if o in set(rows["label"])], label_width=44, row_height=0.27)
