"""Plots for the book, sized for its text column: at most :data:`BOOK_WIDTH_IN` wide, text at least
:data:`MIN_FONT_PT` points as rendered (``tests/test_book_html.py`` checks both on the built pages, from the text
positions :mod:`adu_book.legibility` saves in every figure).

* :func:`levels` — the table pages' levels (H, Mem, For; domain accuracy): ours as mean ± sample std over runs, one
  dot per row and group; the paper's printed value beside ours only where it measures the same thing (same dataset,
  same backbone), else it stays in the table as context;
* :func:`sweep_lines`, :func:`metric_lines` — the analysis pages' curves; :func:`embedding_grid`,
  :func:`attention_grid`, :func:`rollout_points`, :func:`relearn_lines` — the figure and depth pages.

Every function returns a matplotlib ``Figure``; with no runs it draws empty panels that say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .names import METRIC_NAMES

__all__ = ["BOOK_WIDTH_IN", "MIN_FONT_PT", "OURS", "attention_grid", "embedding_grid", "fit_ylim", "glue_figure",
           "levels", "long_with_paper", "metric_lines", "relearn_lines", "rollout_points", "sweep_lines"]

OURS = "ours"
BOOK_WIDTH_IN = 7.5  # the book's text column at 1400 px (about 770 CSS px) at 96 CSS px per inch
MIN_FONT_PT = 9.0
FONT = 10.0  # titles and labels
TICK = 9.5  # tick labels and legends
PALETTE = sns.color_palette("deep")


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


def glue_figure(name: str, figure: plt.Figure) -> None:
    """Glue ``figure`` for a ``{glue:figure}`` directive elsewhere on the page (e.g. the headline under the title)
    and close it, so that the cell does not show it a second time."""
    from myst_nb import glue

    glue(name, figure, display=False)
    plt.close(figure)


def _style(ax, grid_axis: str = "x") -> None:
    ax.grid(True, axis=grid_axis, color="0.9", lw=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=TICK)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _no_runs(ax, text: str = "no runs yet") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4", fontsize=FONT)


def _pretty(name: str) -> str:
    return {"n_forget": "|D_forget|"}.get(name, name)


# --- the table pages ----------------------------------------------------------------------------------------------
def levels(runs: pd.DataFrame, paper: pd.DataFrame | None, y: str, metrics: Sequence[str] = ("h", "mem", "for"),
           hue: str | None = None, order: Sequence[str] | None = None, paper_label: str = "paper",
           comparable: bool = False, chance: float | None = None, xlabel: str = "%",
           xlim: tuple[float, float] | None = (0.0, 100.0), width: float = BOOK_WIDTH_IN) -> plt.Figure:
    """Ours per row (``y``, e.g. the method), one panel per metric, rows labelled once on the left: a dot at the mean
    over runs and a line over ± one sample standard deviation; with ``hue`` (e.g. |D_forget|), one dot per value,
    side by side. ``comparable``: draw the paper's printed value (``paper``: tidy rows with ``y``, [``hue``],
    metric, value) as a hollow diamond beside ours; otherwise the paper is not drawn (its dataset or backbone
    differs: it is context, in the table). ``chance``: a dashed line, labelled inside the panel."""
    runs = runs if runs is not None else pd.DataFrame()
    present = [m for m in metrics if len(runs) and m in runs.columns]
    have = list(dict.fromkeys(runs[y])) if len(runs) else []
    order = [r for r in order if r in have] + [r for r in have if r not in order] if order is not None else have
    hues = sorted(runs[hue].dropna().unique()) if hue and len(runs) else [None]
    step = 0.62 / max(1, len(hues))
    height = 1.25 + 0.28 * max(2, len(order)) * max(1, len(hues)) ** 0.5
    fig, axes = plt.subplots(1, len(metrics), figsize=(width, height), sharey=True, squeeze=False,
                             layout="constrained")
    for ax, metric in zip(axes[0], metrics, strict=True):
        _style(ax)
        ax.set_title(METRIC_NAMES.get(metric, metric), fontsize=FONT)
        if chance is not None:
            ax.axvline(chance, color="0.3", ls="--", lw=1, zorder=1)
            ax.annotate(f"chance {chance:g}", (chance, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -2),
                        textcoords="offset points", ha="left", va="top", fontsize=TICK, color="0.3")
        if metric not in present:
            _no_runs(ax)
        for j, h in enumerate(hues):
            part = runs if h is None else runs[runs[hue] == h]
            stats = part.groupby(y)[metric].agg(["mean", "std"]) if metric in present else pd.DataFrame()
            for i, row in enumerate(order):
                yy = i + (j - (len(hues) - 1) / 2) * step
                if row in stats.index and pd.notna(stats.at[row, "mean"]):
                    m, s = stats.at[row, "mean"], stats.at[row, "std"]
                    if pd.notna(s):
                        ax.plot([m - s, m + s], [yy, yy], color=PALETTE[j], lw=1.6, zorder=2)
                    ax.plot(m, yy, "o", ms=5.5, color=PALETTE[j], zorder=3)
                if comparable and paper is not None and len(paper):
                    sel = paper[(paper[y] == row) & (paper["metric"] == metric)]
                    if h is not None and hue in sel:
                        sel = sel[sel[hue].astype(str) == str(h)]
                    for v in sel["value"]:
                        ax.plot(v, yy, "D", ms=6, color=PALETTE[j] if h is not None else "0.1",
                                markerfacecolor="none", mew=1.2, zorder=4)
        ax.set_yticks(range(len(order)), order)
        ax.set_ylim(max(1, len(order)) - 0.5, -0.5)
        ax.tick_params(axis="y", length=0)
        if xlim:
            ax.set_xlim(*xlim)
            if xlim == (0.0, 100.0):  # three ticks: the last of a panel and the first of the next never meet
                ax.set_xticks([0, 50, 100])
                ax.set_xticks([25, 75], minor=True)
                ax.grid(True, axis="x", which="minor", color="0.94", lw=0.6)
    fig.supxlabel(xlabel, fontsize=FONT)
    handles = []
    if hue and hues != [None]:
        handles += [plt.Line2D([], [], marker="o", color=PALETTE[j], lw=1.6, label=f"{_pretty(hue)} = {h}")
                    for j, h in enumerate(hues)]
    else:
        handles.append(plt.Line2D([], [], marker="o", color=PALETTE[0], lw=1.6, label="ours: mean ± sample std"))
    if comparable and paper is not None and len(paper):
        handles.append(plt.Line2D([], [], marker="D", color="0.1", markerfacecolor="none", lw=0, mew=1.2,
                                  label=paper_label))
    fig.legend(handles=handles, loc="outside upper center", ncols=min(4, len(handles)), frameon=False,
               fontsize=TICK)
    return fig


# --- the analysis pages -------------------------------------------------------------------------------------------
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
                unordered: Sequence[str] = (), by: str = "forget", height: float = 1.75,
                width: float = BOOK_WIDTH_IN) -> plt.Figure:
    """One row per sweep (``orders``: sweep -> its values in order), titled by the sweep's name (``titles``), one
    column per metric. Thin coloured lines: each level of ``by`` (the forget set; mean ± sample std over its seeds),
    so that a setting's effect is read within one forget set rather than against the spread between forget sets;
    bold black line: the mean over all runs (``runs`` has columns ``sweep``, ``setting``, ``by`` and the metrics).
    The default value of each sweep is shaded: it is the same run in every row. Sweeps listed in ``unordered``
    (e.g. kernels) are drawn as points without connecting lines. Each row's y axis is zoomed to its data (see
    :func:`fit_ylim`). Long values (InstaPG placements) are wrapped, never rotated over each other."""
    sweeps = list(orders)
    fig = plt.figure(figsize=(width, height * max(1, len(sweeps)) + 0.5), layout="constrained")
    rows = fig.subfigures(max(1, len(sweeps)), 1, hspace=0.02) if len(sweeps) > 1 else [fig]
    levels_ = list(dict.fromkeys(runs[by])) if len(runs) and by in runs else []
    palette = dict(zip(levels_, sns.color_palette("deep", len(levels_)), strict=True))
    all_axes = []
    for i, sweep in enumerate(sweeps):
        sub = rows[i]
        axes = sub.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
        all_axes.append(axes)
        default = defaults.get(sweep)
        title = (titles or {}).get(sweep, sweep)
        sub.suptitle(title + (f" (default {default}, shaded)" if default else ""), fontsize=FONT, x=0.01,
                     ha="left")
        part = runs[runs["sweep"] == sweep] if len(runs) else runs
        order = list(orders[sweep])
        labels = [_wrap_tick(v) for v in order]
        for j, metric in enumerate(metrics):
            ax = axes[j]
            _style(ax, "y")
            if default in order:
                ax.axvspan(order.index(default) - 0.3, order.index(default) + 0.3, color="0.9", zorder=0)
            data = part.dropna(subset=[metric]) if len(part) and metric in part else part.iloc[0:0]
            xs = {v: k for k, v in enumerate(order)}
            if len(data):
                for k, level in enumerate(levels_):
                    g = data[data[by] == level].groupby("setting")[metric].agg(["mean", "std"])
                    pts = [(xs[v] + (k - (len(levels_) - 1) / 2) * 0.06, g.at[v, "mean"], g.at[v, "std"])
                           for v in order if v in g.index]
                    if not pts:
                        continue
                    px, py, ps = zip(*pts, strict=True)
                    ax.errorbar(px, py, yerr=[0 if pd.isna(s) else s for s in ps], color=palette[level], lw=0.9,
                                ms=3, marker="o", alpha=0.8, capsize=0, elinewidth=0.7,
                                ls="none" if sweep in unordered else "-")
                mean = data.groupby("setting")[metric].mean()
                mx = [xs[v] for v in order if v in mean.index]
                ax.plot(mx, [mean[v] for v in order if v in mean.index], color="black", lw=1.8, marker="o", ms=4,
                        ls="none" if sweep in unordered else "-", zorder=5)
            else:
                _no_runs(ax)
            ax.set_xticks(range(len(order)), labels)
            ax.set_xlim(-0.5, len(order) - 0.5)
            ax.set_ylabel("%" if j == 0 else "", fontsize=FONT)
            ax.set_title(METRIC_NAMES.get(metric, metric), fontsize=FONT)
        fit_ylim(axes[0])  # the row shares its y axis
    if levels_:
        handles = [plt.Line2D([], [], color=palette[lv], marker="o", ms=3, lw=0.9, label=str(lv)) for lv in levels_]
        handles.append(plt.Line2D([], [], color="black", marker="o", ms=4, lw=1.8, label="mean over all runs"))
        fig.legend(handles=handles, loc="outside upper center", ncols=min(5, len(handles)), frameon=False,
                   fontsize=TICK, title=f"{by} (thin: mean ± sample std over its seeds)", title_fontsize=TICK)
    fig.axes_grid = all_axes  # type: ignore[attr-defined]  # rows of axes, for tests and callers
    return fig


def _wrap_tick(value: str, width: int = 9) -> str:
    import textwrap

    text = str(value)
    return "\n".join(textwrap.wrap(text, width, break_long_words=False)) if len(text) > width else text


def metric_lines(runs: pd.DataFrame, x: str, hue: str, metrics: Sequence[str] = ("h", "mem", "for"),
                 style: str | None = None, hue_order: Sequence[str] | None = None, xscale: str = "linear",
                 references: pd.DataFrame | None = None, reference_label: str = "reference",
                 xlabel: str | None = None, ylabel: str = "%", height: float = 2.7, width: float = BOOK_WIDTH_IN,
                 ylim: tuple[float, float] | None = None, sharey: bool = True, ncols: int = 3) -> plt.Figure:
    """Lines of each metric against a numeric ``x`` (mean ± sample std over runs, one line per ``hue``), one panel
    per metric, the legend above the panels. ``xscale``: linear, log2 (shots), symlog, or ordinal (the values evenly
    spaced, labelled with their own numbers: fractions such as 0, 0.05, 0.1, ..., 1). ``references``: rows with
    the metrics drawn as dashed horizontal lines (their mean), e.g. zero-shot CLIP, which does not depend on ``x``.
    ``ylim``: fixed y limits; None zooms the y axis to the data (see :func:`fit_ylim`), shared by the panels
    unless ``sharey`` is False (metrics of different ranges)."""
    if xscale not in ("linear", "log2", "symlog", "ordinal"):
        raise ValueError(f"xscale must be linear, log2, symlog or ordinal, not {xscale!r}")
    cols = max(1, min(ncols, len(metrics)))
    nrows = -(-len(metrics) // cols)
    fig, grid = plt.subplots(nrows, cols, figsize=(width, height * nrows), squeeze=False, sharey=sharey,
                             layout="constrained")
    axes = grid.reshape(1, -1)
    for ax in axes[0, len(metrics):]:
        ax.set_visible(False)
    palette = dict(zip(hue_order or sorted(runs[hue].dropna().unique()) if len(runs) else [],
                       sns.color_palette("deep"), strict=False))
    xs = sorted(runs[x].dropna().unique()) if len(runs) else []
    if xscale == "ordinal" and len(runs):
        runs = runs.assign(**{x: runs[x].map({v: i for i, v in enumerate(xs)})})
    for j, metric in enumerate(metrics):
        ax = axes[0, j]
        _style(ax, "both")
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
        ax.set_xlabel("")
        ax.set_ylabel(ylabel if j % cols == 0 or not sharey else "", fontsize=FONT)
        ax.set_title(METRIC_NAMES.get(metric, metric), fontsize=FONT)
    fig.supxlabel(xlabel if xlabel is not None else x, fontsize=FONT)
    last = axes[0, len(metrics) - 1]
    handles, labels = last.get_legend_handles_labels()
    if last.get_legend() is not None:
        last.get_legend().remove()
    if handles:
        fig.legend(handles, labels, loc="outside upper center", ncols=min(4, len(handles)), frameon=False,
                   fontsize=TICK)
    last._legend_labels = labels  # type: ignore[attr-defined]  # what the figure's legend says, for tests
    return fig


def embedding_grid(panels: Sequence[tuple[str, pd.DataFrame]], colour_by: Sequence[tuple[str, str]] = (
        ("domain", "by domain"), ("class", "by class")), width: float = BOOK_WIDTH_IN) -> plt.Figure:
    """Scatter plots of 2-D embeddings: one row per (title, frame with columns x, y and each colouring), one
    column per colouring (``colour_by``: (column, title)). Each column's legend is drawn once, under it."""
    side = (width - 0.3) / max(1, len(colour_by))
    fig, axes = plt.subplots(max(1, len(panels)), len(colour_by), figsize=(width, side * max(1, len(panels)) + 1.4),
                             squeeze=False, layout="constrained")
    for j, (column, what) in enumerate(colour_by):
        levels_ = list(dict.fromkeys(v for _, df in panels for v in df[column])) if panels else []
        palette = dict(zip(levels_, sns.color_palette("tab10" if len(levels_) <= 10 else "husl", len(levels_)),
                           strict=True))
        for i, (title, df) in enumerate(panels):
            ax = axes[i, j]
            sns.scatterplot(data=df, x="x", y="y", hue=column, hue_order=levels_, palette=palette, s=9,
                            linewidth=0, alpha=0.8, ax=ax, legend=i == len(panels) - 1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("")
            ax.set_ylabel(title if j == 0 else "", fontsize=FONT)
            ax.set_title(f"{title}, {what}", fontsize=FONT)
            if i == len(panels) - 1 and ax.get_legend() is not None:
                ax.legend(fontsize=TICK, markerscale=1.5, loc="upper center", bbox_to_anchor=(0.5, -0.02),
                          ncols=2, frameon=False)
    if not panels:
        _no_runs(axes[0, 0], "nothing to show")
    return fig


def attention_grid(images: np.ndarray | None, rows: Sequence[tuple[str, np.ndarray]], columns: Sequence[str],
                   alpha: float = 0.5, width: float = BOOK_WIDTH_IN) -> plt.Figure:
    """The images (uint8 [N, 3, S, S]) in the first row, then each (title, patch-grid maps [N, g, g]) upsampled and
    overlaid on them; ``columns`` titles the N columns (e.g. "photo (forgotten)"). Without ``images`` (the data is
    not on this machine) the maps are drawn alone."""
    import torch

    from adu_core.attribution import upsample

    n = len(columns)
    pictures = np.transpose(np.asarray(images), (0, 2, 3, 1)) if images is not None else None
    side = pictures.shape[1] if pictures is not None else 8 * np.asarray(rows[0][1]).shape[-1]
    first = 1 if pictures is not None else 0
    size = min(1.9, (width - 0.4) / max(1, n))
    fig, axes = plt.subplots(first + len(rows), n, figsize=(size * n + 0.4, (size + 0.25) * (first + len(rows))),
                             squeeze=False, layout="constrained")
    for j in range(n):
        axes[0, j].set_title(_wrap_tick(columns[j], 16), fontsize=FONT)
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
        axes[i, 0].set_ylabel(title, fontsize=FONT)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


ROLLOUT_NAMES = {"entropy": "entropy (1 = uniform)", "top10": "share on the top 10 % of patches (0.1 = uniform)"}


def rollout_points(stats: pd.DataFrame, width: float = BOOK_WIDTH_IN) -> plt.Figure:
    """The attention page's statistics (:func:`adu_book.figures.rollout_frame`): per domain, each model's mean ±
    sample std of the rollout entropy and of the top-10 % share, one panel per statistic, the legend under them."""
    models = list(dict.fromkeys(stats["model"])) if len(stats) else []
    domains = list(dict.fromkeys(stats["domain"])) if len(stats) else []
    fig, axes = plt.subplots(1, len(ROLLOUT_NAMES), figsize=(width, 2.9), squeeze=False, layout="constrained")
    for ax, (stat, name) in zip(axes[0], ROLLOUT_NAMES.items(), strict=True):
        _style(ax, "y")
        ax.set_title(name, fontsize=FONT)
        for k, model in enumerate(models):
            g = stats[stats["model"] == model].groupby("domain")[stat].agg(["mean", "std"])
            xs = [i + (k - (len(models) - 1) / 2) * 0.2 for i, d in enumerate(domains) if d in g.index]
            ys = [g.at[d, "mean"] for d in domains if d in g.index]
            es = [g.at[d, "std"] for d in domains if d in g.index]
            ax.errorbar(xs, ys, yerr=es, marker="o", ms=5, ls="none", color=PALETTE[k], capsize=2, label=model)
        ax.set_xticks(range(len(domains)), [_wrap_tick(d, 12) for d in domains])
        if not models:
            _no_runs(ax)
    if models:
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncols=len(models),
                   frameon=False, fontsize=TICK)
    return fig


def relearn_lines(curves: pd.DataFrame, order: Sequence[str] | None = None, reference: pd.DataFrame | None = None,
                  width: float = BOOK_WIDTH_IN, ncols: int = 4) -> plt.Figure:
    """Forgotten-domain test accuracy against relearning steps: one panel per method, the unlearned model (solid)
    and the original one (dashed), mean ± sample std over runs; ``reference`` (columns variant, acc): the page's
    reference for "nothing is gone" per method, a dotted line."""
    if not len(curves):
        fig, ax = plt.subplots(figsize=(4, 1.5), layout="constrained")
        _no_runs(ax)
        ax.axis("off")
        return fig
    methods = [m for m in (order or dict.fromkeys(curves["variant"])) if m in set(curves["variant"])]
    cols = min(ncols, len(methods))
    nrows = -(-len(methods) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(width, 2.3 * nrows + 0.9), squeeze=False, sharey=True,
                             sharex=True, layout="constrained")
    styles = {"unlearned": ("-", PALETTE[0]), "original": ("--", PALETTE[1])}
    for ax, m in zip(axes.flat, methods, strict=False):
        _style(ax, "both")
        part = curves[curves["variant"] == m]
        for model, (ls, colour) in styles.items():
            g = part[part["model"] == model].groupby("step")["acc"].agg(["mean", "std"])
            if len(g):
                ax.errorbar(g.index, g["mean"], yerr=g["std"].fillna(0), ls=ls, marker="o", ms=4, color=colour,
                            capsize=2, label=model)
        if reference is not None and m in set(reference["variant"]):
            ax.axhline(float(reference.loc[reference["variant"] == m, "acc"].iloc[0]), color="0.2", ls=":", lw=1.2,
                       label="reference")
        ax.set_title(m, fontsize=FONT)
    for ax in list(axes.flat)[len(methods):]:
        ax.set_visible(False)
    fig.supxlabel("relearning steps", fontsize=FONT)
    fig.supylabel("forgotten-domain accuracy, %", fontsize=FONT)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=len(handles), frameon=False, fontsize=TICK)
    return fig
