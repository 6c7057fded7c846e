"""Plots for the book: ours (bars: mean over runs, error bars: sample std) beside the paper (hatched bars).

Every helper takes the per-run frame of :func:`adu_core.report.ensure_runs` and the tidy paper frame, both already
restricted to one table, and returns the seaborn ``FacetGrid`` (its ``.figure`` is the matplotlib figure).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.colors as mcolors
import pandas as pd
import seaborn as sns

from .report import METRIC_NAMES

__all__ = ["OURS", "bars_vs_paper", "long_with_paper"]

OURS = "ours"


def long_with_paper(runs: pd.DataFrame, paper: pd.DataFrame, x: str, metrics: Sequence[str],
                    facet: str | None = None, paper_label: str = "paper") -> pd.DataFrame:
    """One row per (run or paper number, metric): columns x, [facet], metric, value, source."""
    keys = [x] + ([facet] if facet else [])
    parts = []
    present = [m for m in metrics if m in runs.columns]
    if len(runs) and present:
        ours = runs.melt(id_vars=keys, value_vars=present, var_name="metric", value_name="value")
        parts.append(ours.dropna(subset=["value"]).assign(source=OURS))
    if len(paper):
        ref = paper[paper["metric"].isin(metrics)][[*keys, "metric", "value"]]
        parts.append(ref.assign(source=paper_label))
    if not parts:
        return pd.DataFrame(columns=[*keys, "metric", "value", "source"])
    out = pd.concat(parts, ignore_index=True)
    out["value"] = out["value"].astype(float)
    out["metric"] = out["metric"].map(lambda m: METRIC_NAMES.get(m, m))
    return out


def bars_vs_paper(runs: pd.DataFrame, paper: pd.DataFrame, x: str, metrics: Sequence[str] = ("h", "mem", "for"),
                  row: str | None = None, order: Sequence | None = None, paper_label: str = "paper",
                  xlabel: str | None = None, ylabel: str = "%", height: float = 2.8, aspect: float = 1.3,
                  title: str | None = None) -> sns.FacetGrid:
    """Bars of ours (mean ± sample std over runs) and of the paper's number, side by side for each ``x`` value;
    one column per metric, one row per value of ``row`` (e.g. |D_forget|)."""
    data = long_with_paper(runs, paper, x, metrics, row, paper_label)
    if order is None:
        order = list(dict.fromkeys([*paper.get(x, pd.Series(dtype=object)).tolist(), *data[x].tolist()]))
    col_order = [METRIC_NAMES.get(m, m) for m in metrics]
    hue_order = [OURS, paper_label]
    palette = {OURS: sns.color_palette("deep")[0], paper_label: "0.75"}
    with sns.axes_style("whitegrid"):
        grid = sns.catplot(
            data=data, x=x, y="value", hue="source", col="metric", row=row, kind="bar", order=order,
            col_order=col_order, hue_order=hue_order, palette=palette, errorbar="sd", capsize=0.15,
            err_kws={"linewidth": 1}, height=height, aspect=aspect, sharey=True, legend_out=True,
            edgecolor="0.3", linewidth=0.6,
        )
    for ax in grid.axes.flat:
        ax.set_ylim(0, 100)
        ax.tick_params(axis="x", labelrotation=30 if len(order) > 3 else 0)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right" if len(order) > 3 else "center")
        for bar in ax.patches:  # the paper's bars are grey and hatched, whatever subset of bars was drawn
            if mcolors.same_color(bar.get_facecolor()[:3], mcolors.to_rgb(palette[paper_label])):
                bar.set_hatch("//")
    grid.set_axis_labels(xlabel if xlabel is not None else x, ylabel)
    if row:
        grid.set_titles(template="{col_name} · " + f"{_pretty(row)} = " + "{row_name}")
    else:
        grid.set_titles(col_template="{col_name}")
    if grid.legend is not None:
        grid.legend.set_title("")
    if title:
        grid.figure.suptitle(title, y=1.02)
    return grid


def _pretty(name: str) -> str:
    return {"n_forget": "|D_forget|"}.get(name, name)
