"""Tables beside the paper: ours (mean ± sample std over runs, and n) next to the paper's printed value.

The input is the per-run frame of :func:`adu_book.runs.ensure_runs` (one row per run, H computed per run) and the
tidy paper frame of :mod:`adu_book.paper`; the output is a frame a notebook displays.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .facts import signed
from .names import METRIC_NAMES

__all__ = ["display_table", "number_text", "ours_table", "per_forget_set", "styled", "summary_table",
           "with_run_metrics"]


def summary_table(runs: pd.DataFrame, paper: pd.DataFrame, keys: Sequence[str],
                  metrics: Sequence[str] = ("h", "mem", "for"), digits: int = 2) -> pd.DataFrame:
    """Paper value beside ours, one row per (keys..., metric).

    ``runs`` has one row per run with the ``keys`` and metric columns (H is per run, then averaged, as the paper
    does); ``paper`` is the tidy paper frame restricted to the matching table and dataset, with the same ``keys``
    (and ``metric``/``value``). Columns: keys, metric, paper, mean, std (sample, NaN for n = 1), n, diff (ours −
    paper), ours ("mean ± std" text). Rows are in the order of first appearance in ``paper`` then ``runs``, key by
    key within the keys before it.
    """
    keys = list(keys)
    long = runs.melt(id_vars=keys, value_vars=[m for m in metrics if m in runs.columns], var_name="metric",
                     value_name="value") if len(runs) else pd.DataFrame(columns=[*keys, "metric", "value"])
    long = long.dropna(subset=["value"])
    ours = (long.groupby([*keys, "metric"], sort=False, dropna=False)["value"]
            .agg(mean="mean", std="std", n="count").reset_index())
    ref = paper[paper["metric"].isin(metrics)][[*keys, "metric", "value"]].rename(columns={"value": "paper"})
    for k in keys:  # align dtypes so that merge keys compare equal
        if k in ours.columns and len(ours):
            ref[k] = ref[k].astype(ours[k].dtype)
    out = ref.merge(ours, on=[*keys, "metric"], how="outer", sort=False)
    out["n"] = out["n"].fillna(0).astype(int)
    out["diff"] = out["mean"] - out["paper"]
    out["ours"] = [_mean_std(m, s, n, digits) for m, s, n in zip(out["mean"], out["std"], out["n"], strict=True)]
    # rows in nested order of first appearance (the paper's rows first, then ours-only rows): each key's values in
    # the order they first appear within the group of the keys before it, so that a value seen earlier under
    # another group (a sweep's "4" under prompt depth) does not move ahead in this one
    seen = pd.concat([ref[keys], ours[keys]], ignore_index=True) if len(ours) else ref[keys]
    sort_cols = []
    for i, k in enumerate(keys):
        group, col = keys[:i], f"_{k}"
        first = seen.drop_duplicates(subset=[*group, k])
        rank = first.groupby(group, sort=False, dropna=False).cumcount() if group else pd.Series(range(len(first)),
                                                                                                   index=first.index)
        out = out.merge(first[[*group, k]].assign(**{col: rank.to_numpy()}), on=[*group, k], how="left")
        sort_cols.append(col)
    out["_metric"] = out["metric"].map({m: i for i, m in enumerate(metrics)})
    sort_cols.append("_metric")
    return out.sort_values(sort_cols, kind="stable").drop(columns=sort_cols).reset_index(drop=True)


def _mean_std(mean: float, std: float, n: int, digits: int) -> str:
    if n == 0 or pd.isna(mean):
        return "–"
    if n == 1 or pd.isna(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def display_table(summary: pd.DataFrame, keys: Sequence[str], paper_col: str = "paper",
                  key_names: Mapping[str, str] | None = None, digits: int = 2, delta: bool = True) -> pd.DataFrame:
    """The summary as a wide, formatted table: per metric the paper's value, ours ("mean ± std") and, with
    ``delta``, Δ = ours − paper; then n (runs averaged). Missing values show as "–". Pass ``delta=False`` where
    the paper's dataset or backbone is not ours (:func:`adu_book.paper.same_setting`): the paper's value is then
    context, and a difference between two settings would read as a reproduction gap."""
    keys = list(keys)
    metrics = list(dict.fromkeys(summary["metric"]))
    blocks = {}
    for m in metrics:
        part = summary[summary["metric"] == m].set_index(keys)
        name = METRIC_NAMES.get(m, m)
        blocks[(name, paper_col)] = part["paper"].map(lambda x: "–" if pd.isna(x) else f"{x:.{digits}f}")
        blocks[(name, "ours")] = part["ours"]
        if delta:
            blocks[(name, "Δ")] = part["diff"].map(lambda x: "–" if pd.isna(x) else signed(x, digits))
    wide = pd.DataFrame(blocks).fillna("–")  # a row one metric lacks (e.g. a head only ADU has) shows "–", not nan
    n = summary.groupby(keys, sort=False)["n"].max()
    wide[("", "n")] = n.reindex(wide.index).fillna(0).astype(int)
    wide.columns = pd.MultiIndex.from_tuples(wide.columns)
    wide.index.names = [(key_names or {}).get(k, k) for k in keys]
    return wide


def ours_table(runs: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str] = ("h", "mem", "for"),
               key_names: Mapping[str, str] | None = None, digits: int = 2, sort: bool = False) -> pd.DataFrame:
    """Our numbers without a paper column: one row per key combination, "mean ± sample std" per metric ("–" where
    no run has it), and n (the runs averaged; the largest over metrics). Rows keep their first appearance in
    ``runs``, or are sorted (numbers numerically) with ``sort``; float keys are shown as ``%g``. Uses
    :func:`summary_table`'s aggregation."""
    keys = list(keys)
    empty_paper = pd.DataFrame(columns=[*keys, "metric", "value"])
    cols = [m for m in metrics if m in runs.columns]
    s = summary_table(runs, empty_paper, keys=keys, metrics=cols, digits=digits)
    names = {m: METRIC_NAMES.get(m, m) for m in cols}
    if not len(s):
        return pd.DataFrame(columns=[*(names[m] for m in cols), "n"],
                            index=pd.MultiIndex.from_arrays([[]] * len(keys), names=keys) if len(keys) > 1
                            else pd.Index([], name=keys[0]))
    # unstack(sort=False) keeps summary_table's row order (pivot_table re-sorts each key's values on its own)
    wide = s.set_index([*keys, "metric"])["ours"].unstack("metric", sort=False)
    wide = wide.reindex(columns=cols).rename(columns=names).fillna("–")
    wide["n"] = s.groupby(keys, sort=False)["n"].max().reindex(wide.index).astype(int)
    if sort:
        wide = wide.sort_index(key=lambda idx: idx.map(_sort_key))
    wide.index = wide.index.map(lambda k: tuple(map(_key_text, k)) if isinstance(k, tuple) else _key_text(k))
    wide.columns.name = None
    wide.index.names = [(key_names or {}).get(k, k) for k in keys]
    return wide


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers first, in numeric order, then text (so that "–" rows go last)."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return (0, float(value))
    return (1, str(value))


def _key_text(value: Any) -> Any:
    return f"{value:g}" if isinstance(value, float | np.floating) else value


def per_forget_set(runs: pd.DataFrame, metric: str = "h", digits: int = 2) -> pd.DataFrame | None:
    """``metric`` per (|D_forget|, forget set) and row (mean over seeds); prints "no runs yet" when there are none."""
    if not len(runs):
        print("no runs yet")
        return None
    return runs.pivot_table(index=["n_forget", "forget"], columns="variant", values=metric, aggfunc="mean",
                            sort=False).round(digits)


def with_run_metrics(runs: pd.DataFrame, wanted: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """``runs`` plus one column per ``wanted`` name, read from each run's run.json at ``metrics[key1][key2]...``
    (NaN where absent, e.g. ``{"pseudo_label_acc": ("pseudo_labels", "pseudo_label_acc")}``)."""
    out = runs.copy()
    cache: dict[str, dict] = {}
    for name, keys in wanted.items():
        values = []
        for path in out.get("path", pd.Series(dtype=str)):
            if path not in cache:
                cache[path] = json.loads(Path(path).read_text()).get("metrics", {})
            value: Any = cache[path]
            for k in keys:
                value = value.get(k) if isinstance(value, dict) else None
            values.append(float(value) if isinstance(value, int | float) else math.nan)
        out[name] = pd.Series(values, index=out.index, dtype=float)
    return out


def number_text(value: Any) -> str:
    """A table cell as a reader sees it: floats with two decimals (Styler's default prints six, a raw dump), tiny
    ones in short scientific form (1e-05), large ones with thousands separators; anything else as it is."""
    if isinstance(value, (float, np.floating)) and math.isfinite(value):
        if value != 0 and abs(value) < 0.005:
            return f"{value:.2g}"
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.2f}"
    return str(value)


def styled(df: pd.DataFrame, font_size: str = "0.8em", min_widths: Mapping[str, str] | None = None) -> Any:
    """A wide table in a smaller font, so that it fits the book's text column (a pandas Styler); ``min_widths``
    keeps long text columns readable (e.g. ``{"doc": "18em"}``)."""
    props = [("font-size", font_size), ("padding", "2px 6px"), ("vertical-align", "top")]
    sty = df.style.set_table_styles([{"selector": "th, td", "props": props}]).format(number_text, na_rep="–")
    counts = [c for c in df.columns if pd.api.types.is_float_dtype(df[c]) and len(df[c].dropna())
              and (df[c].dropna() % 1 == 0).all()]  # whole numbers a NaN turned to floats (n, images): no decimals
    if counts:
        sty = sty.format("{:,.0f}", subset=counts, na_rep="–")
    for column, width in (min_widths or {}).items():
        if column in df.columns:
            sty = sty.set_properties(subset=[column], **{"min-width": width})
    return sty
