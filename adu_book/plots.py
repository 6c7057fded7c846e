"""Plots for the book: ours (bars: mean over runs, error bars: sample std) beside the paper (hatched bars).

The table pages' helper takes the per-run frame of :func:`adu_book.runs.ensure_runs` and the tidy paper frame,
both already restricted to one table, and returns the seaborn ``FacetGrid`` (its ``.figure`` is the matplotlib figure). The
analysis pages' helpers (sweeps, curves against shots or labelled fraction, t-SNE scatter grids, attention maps)
return the matplotlib ``Figure``; with no runs they draw empty panels that say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .names import METRIC_NAMES

__all__ = ["OURS", "attention_grid", "bars_vs_paper", "chance_line", "embedding_grid", "fit_ylim",
           "long_with_paper", "metric_lines", "rollout_points", "sweep_lines"]

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


def chance_line(grid: sns.FacetGrid, chance: float, n_bars: int) -> None:
    """A dashed line at chance level (in %) in every panel of :func:`bars_vs_paper`'s grid, labelled just outside
    the panel's right edge, where no bar can cover the label. (``n_bars`` is kept for callers.)"""
    for ax in grid.axes.flat:
        ax.axhline(chance, color="0.2", linestyle="--", linewidth=1)
        ax.text(1.01, chance, "chance", transform=ax.get_yaxis_transform(), ha="left", va="center", fontsize=8,
                clip_on=False)


def _pretty(name: str) -> str:
    return {"n_forget": "|D_forget|"}.get(name, name)


# --- the analysis pages -----------------------------------------------------------------------------------------------
def _no_runs(ax, text: str = "no runs yet") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def fit_ylim(ax, min_span: float = 10.0, bounds: tuple[float, float] = (0.0, 100.0)) -> None:
    """Zoom the y axis to the data (matplotlib's autoscale), at least ``min_span`` points tall and within
    ``bounds``: differences of a few points stay visible without making noise look large."""
    lo, hi = ax.get_ylim()
    if hi - lo < min_span:
        mid = (lo + hi) / 2
        lo, hi = mid - min_span / 2, mid + min_span / 2
    lo, hi = max(bounds[0], lo), min(bounds[1], hi)
    if hi - lo < min_span:  # pushed against a bound: keep the span on the other side
        lo, hi = (bounds[0], bounds[0] + min_span) if lo == bounds[0] else (bounds[1] - min_span, bounds[1])
    ax.set_ylim(lo, hi)


def sweep_lines(runs: pd.DataFrame, orders: Mapping[str, Sequence[str]], defaults: Mapping[str, str | None],
                titles: Mapping[str, str] | None = None, metrics: Sequence[str] = ("h", "mem", "for"),
                unordered: Sequence[str] = (), by: str = "forget", height: float = 2.3,
                width: float = 3.2) -> plt.Figure:
    """One row per sweep (``orders``: sweep -> its values in order), one column per metric. Thin coloured lines:
    each level of ``by`` (the forget set; mean ± sample std over its seeds), so that a setting's effect is read
    within one forget set rather than against the spread between forget sets; bold black line: the mean over
    all runs (``runs`` has columns ``sweep``, ``setting``, ``by`` and the metrics). The default value of each
    sweep is shaded: it is the same run in every row. Sweeps listed in ``unordered`` (e.g. kernels) are drawn as
    points without connecting lines. Each row's y axis is zoomed to its data (see :func:`fit_ylim`)."""
    sweeps = list(orders)
    fig, axes = plt.subplots(max(1, len(sweeps)), len(metrics), figsize=(width * len(metrics),
                             height * max(1, len(sweeps))), squeeze=False, sharey="row")
    levels = list(dict.fromkeys(runs[by])) if len(runs) and by in runs else []
    palette = dict(zip(levels, sns.color_palette("deep", len(levels)), strict=True))
    for i, sweep in enumerate(sweeps):
        part = runs[runs["sweep"] == sweep] if len(runs) else runs
        order = list(orders[sweep])
        for j, metric in enumerate(metrics):
            ax = axes[i, j]
            ax.grid(True, axis="y", color="0.9")
            default = defaults.get(sweep)
            if default in order:
                ax.axvspan(order.index(default) - 0.3, order.index(default) + 0.3, color="0.9", zorder=0)
            data = part.dropna(subset=[metric]) if len(part) and metric in part else part.iloc[0:0]
            style = {"linestyle": "none"} if sweep in unordered else {}
            if len(data):
                if len(levels) > 1:
                    sns.pointplot(data=data, x="setting", y=metric, order=order, hue=by, hue_order=levels,
                                  palette=palette, errorbar="sd", markersize=3, linewidth=0.9, capsize=0.1,
                                  err_kws={"linewidth": 0.8}, alpha=0.8, dodge=0.25, ax=ax,
                                  legend=i == 0 and j == len(metrics) - 1, **style)
                sns.pointplot(data=data, x="setting", y=metric, order=order, errorbar=None, color="black",
                              markersize=4, linewidth=1.6, ax=ax, **style)
            else:
                ax.set_xticks(range(len(order)), order)
                ax.set_xlim(-0.5, len(order) - 0.5)
                _no_runs(ax)
            ax.set_xlabel((titles or {}).get(sweep, sweep), fontsize=9)
            ax.set_ylabel("%" if j == 0 else "")
            ax.set_title(METRIC_NAMES.get(metric, metric), fontsize=9)
            long = max(map(len, order or [""])) > 6
            ax.tick_params(axis="x", labelsize=8, labelrotation=30 if long else 0)
            if long:
                plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
        fit_ylim(axes[i, 0])  # the row shares its y axis
    legend = axes[0, -1].get_legend()
    if legend is not None:
        axes[0, -1].legend(title=f"{by} (mean: black)", fontsize=7, title_fontsize=7, loc="upper left",
                           bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def metric_lines(runs: pd.DataFrame, x: str, hue: str, metrics: Sequence[str] = ("h", "mem", "for"),
                 style: str | None = None, hue_order: Sequence[str] | None = None, xscale: str = "linear",
                 references: pd.DataFrame | None = None, reference_label: str = "reference",
                 xlabel: str | None = None, ylabel: str = "%", height: float = 2.8, width: float = 3.3,
                 ylim: tuple[float, float] | None = None, sharey: bool = True) -> plt.Figure:
    """Lines of each metric against a numeric ``x`` (mean ± sample std over runs, one line per ``hue``), one panel
    per metric. ``xscale``: linear, log2 (shots), symlog, or ordinal (the values evenly spaced, labelled with
    their own numbers: fractions such as 0, 0.05, 0.1, ..., 1). ``references``: rows with the
    metrics drawn as dashed horizontal lines (their mean), e.g. zero-shot CLIP, which does not depend on ``x``.
    ``ylim``: fixed y limits; None zooms the y axis to the data (see :func:`fit_ylim`), shared by the panels
    unless ``sharey`` is False (metrics of different ranges)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(width * len(metrics), height), squeeze=False, sharey=sharey)
    palette = dict(zip(hue_order or sorted(runs[hue].dropna().unique()) if len(runs) else [],
                       sns.color_palette("deep"), strict=False))
    if xscale not in ("linear", "log2", "symlog", "ordinal"):
        raise ValueError(f"xscale must be linear, log2, symlog or ordinal, not {xscale!r}")
    xs = sorted(runs[x].dropna().unique()) if len(runs) else []
    if xscale == "ordinal" and len(runs):
        runs = runs.assign(**{x: runs[x].map({v: i for i, v in enumerate(xs)})})
    for j, metric in enumerate(metrics):
        ax = axes[0, j]
        ax.grid(True, color="0.92")
        data = runs.dropna(subset=[metric]) if len(runs) and metric in runs else runs.iloc[0:0]
        if len(data):
            sns.lineplot(data=data, x=x, y=metric, hue=hue, style=style, hue_order=list(palette) or None,
                         palette=palette or None, errorbar="sd", marker="o", markersize=5, err_style="bars",
                         err_kws={"capsize": 3}, ax=ax, legend=j == len(metrics) - 1)
        else:
            _no_runs(ax)
        if references is not None and len(references) and metric in references:
            value = references[metric].mean()
            if pd.notna(value):
                ax.axhline(value, color="0.35", linestyle="--", linewidth=1,
                           label=reference_label if j == len(metrics) - 1 else None)
        if xscale == "log2":
            ax.set_xscale("log", base=2)
        elif xscale == "symlog":
            ax.set_xscale("symlog", linthresh=0.05, linscale=0.5)
        if xs:
            ax.set_xticks(range(len(xs)) if xscale == "ordinal" else xs, [f"{v:g}" for v in xs])
            ax.minorticks_off()
        if ylim:
            ax.set_ylim(*ylim)
        elif not sharey or j == len(metrics) - 1:  # a shared y axis is zoomed once, after the last panel
            fit_ylim(ax)
        ax.set_xlabel(xlabel if xlabel is not None else x)
        ax.set_ylabel(ylabel if j == 0 or not sharey else "")
        ax.set_title(METRIC_NAMES.get(metric, metric), fontsize=10)
    last = axes[0, -1]
    if last.get_legend_handles_labels()[0]:
        last.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def embedding_grid(panels: Sequence[tuple[str, pd.DataFrame]], colour_by: Sequence[tuple[str, str]] = (
        ("domain", "by domain"), ("class", "by class")), height: float = 3.4) -> plt.Figure:
    """Scatter plots of 2-D embeddings: one row per (title, frame with columns x, y and each colouring), one
    column per colouring (``colour_by``: (column, title)). Legends are drawn once per column."""
    fig, axes = plt.subplots(max(1, len(panels)), len(colour_by), figsize=(height * 1.25 * len(colour_by),
                             height * max(1, len(panels))), squeeze=False)
    for j, (column, what) in enumerate(colour_by):
        levels = list(dict.fromkeys(v for _, df in panels for v in df[column])) if panels else []
        palette = dict(zip(levels, sns.color_palette("tab10" if len(levels) <= 10 else "husl", len(levels)),
                           strict=True))
        for i, (title, df) in enumerate(panels):
            ax = axes[i, j]
            sns.scatterplot(data=df, x="x", y="y", hue=column, hue_order=levels, palette=palette, s=10,
                            linewidth=0, alpha=0.8, ax=ax, legend=i == 0)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("")
            ax.set_ylabel(title if j == 0 else "")
            ax.set_title(f"{title}, {what}", fontsize=10)
            if i == 0 and ax.get_legend() is not None:
                ax.legend(fontsize=7, markerscale=1.5, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    if not panels:
        _no_runs(axes[0, 0], "nothing to show")
    fig.tight_layout()
    return fig


def attention_grid(images: np.ndarray | None, rows: Sequence[tuple[str, np.ndarray]], columns: Sequence[str],
                   alpha: float = 0.5, size: float = 1.9) -> plt.Figure:
    """The images (uint8 [N, 3, S, S]) in the first row, then each (title, patch-grid maps [N, g, g]) upsampled and
    overlaid on them; ``columns`` titles the N columns (e.g. "photo (forgotten)"). Without ``images`` (the data is
    not on this machine) the maps are drawn alone."""
    import torch

    from adu_core.attribution import upsample

    n = len(columns)
    pictures = np.transpose(np.asarray(images), (0, 2, 3, 1)) if images is not None else None
    side = pictures.shape[1] if pictures is not None else 8 * np.asarray(rows[0][1]).shape[-1]
    first = 1 if pictures is not None else 0
    fig, axes = plt.subplots(first + len(rows), n, figsize=(size * n, size * (first + len(rows))), squeeze=False)
    for j in range(n):
        axes[0, j].set_title(columns[j], fontsize=9)
        if pictures is not None:
            axes[0, j].imshow(pictures[j])
    for i, (_, maps) in enumerate(rows, start=first):
        big = upsample(torch.as_tensor(np.asarray(maps, dtype=np.float32)), side).numpy()
        for j in range(n):
            if pictures is not None:
                axes[i, j].imshow(pictures[j])
            axes[i, j].imshow(big[j], cmap="jet", alpha=alpha if pictures is not None else 1.0, vmin=0, vmax=1,
                              extent=(-0.5, side - 0.5, side - 0.5, -0.5))
    for i, title in enumerate([*(["image"] if pictures is not None else []), *(t for t, _ in rows)]):
        axes[i, 0].set_ylabel(title, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def rollout_points(stats: pd.DataFrame) -> sns.FacetGrid:
    """The attention page's statistics (:func:`adu_book.figures.rollout_frame`): per domain, each model's mean ±
    sample std of the rollout entropy and of the top-10 % share, one panel per statistic."""
    names = {"entropy": "entropy (1 = uniform)", "top10": "top-10 % share (0.1 = uniform)"}
    long = stats.rename(columns=names).melt(id_vars=["model", "domain"], value_vars=list(names.values()),
                                            var_name="statistic")
    grid = sns.catplot(data=long, x="domain", y="value", hue="model", col="statistic", kind="point",
                       errorbar="sd", dodge=0.3, linestyle="none", sharey=False, height=2.8, aspect=1.4,
                       capsize=0.1, err_kws={"linewidth": 1})
    grid.set_axis_labels("", "")
    grid.set_titles("{col_name}")
    for ax in grid.axes.flat:
        ax.tick_params(axis="x", labelrotation=20)
    return grid


def relearn_lines(curves: pd.DataFrame, order: Sequence[str] | None = None) -> sns.FacetGrid | plt.Figure:
    """Forgotten-domain test accuracy against relearning steps: one panel per method, the unlearned model (solid)
    and the original one (dashed), mean ± sample std over runs."""
    if not len(curves):
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.text(0.5, 0.5, "no runs yet", ha="center", va="center")
        ax.axis("off")
        return fig
    grid = sns.relplot(data=curves, x="step", y="acc", col="variant", style="model", hue="model", kind="line",
                       errorbar="sd", marker="o", col_order=order, height=2.6, aspect=1.1,
                       style_order=["unlearned", "original"], hue_order=["unlearned", "original"])
    grid.set_axis_labels("relearning steps", "forgotten-domain acc. %")
    grid.set_titles("{col_name}")
    return grid
