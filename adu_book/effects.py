"""Paired comparisons: one row of a table minus another, on the runs they share (same forget set, same seed).

Two methods run on the same forget sets and seeds differ by much less than either varies across forget sets, so a
difference is measured per pair and summarised by its mean, a 95 % Student-t interval and n
(:func:`adu_core.metrics.paired_difference`). The words a page uses follow the interval, never the mean alone:
"higher"/"lower" only when the interval excludes 0, "no measurable difference" when it covers 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from adu_core.metrics import paired_difference

from .facts import signed

__all__ = ["PAIR_ON", "best_by", "effect_text", "effect_verdict", "effects_for_display", "effects_table", "paired",
           "shared_pairs"]

PAIR_ON = ("forget", "seed")


def paired(runs: pd.DataFrame, a: str, b: str, metric: str = "h", key: str = "variant",
           by: str | None = None, pair_on: Sequence[str] = PAIR_ON) -> dict[Any, dict[str, Any]]:
    """``a − b`` of ``metric`` over the (forget set, seed) pairs where both rows have a run, per value of ``by``
    (and ``"all"``: every pair). Each entry: mean, lo, hi, n, sd, excludes_zero, a, b."""
    out: dict[Any, dict[str, Any]] = {}
    if runs is None or runs.empty or key not in runs:
        return out
    part = runs[runs[key].isin([a, b])]
    index = [*([by] if by else []), *pair_on]
    table = part.pivot_table(index=index, columns=key, values=metric, aggfunc="mean")
    if a not in table or b not in table:
        return out
    both = table[[a, b]].dropna()
    groups = [("all", both)]
    if by:
        groups += [(k, g) for k, g in both.groupby(level=by, sort=True)]
    for k, g in groups:
        out[k] = {**paired_difference(g[a].to_numpy(), g[b].to_numpy()), "a": a, "b": b}
    return out


def effect_text(e: Mapping[str, Any] | None, digits: int = 2) -> str:
    """``+1.23 (95 % CI −0.40 to +2.86, n = 42)``; ``n/a`` without pairs; no interval for a single pair."""
    if not e or not e.get("n"):
        return "n/a (no paired runs)"
    if e["n"] < 2 or math.isnan(e["lo"]):
        return f"{signed(e['mean'], digits)} (n = {e['n']}: no interval)"
    return f"{signed(e['mean'], digits)} (95 % CI {signed(e['lo'], digits)} to {signed(e['hi'], digits)}, n = {e['n']})"


def effect_verdict(e: Mapping[str, Any] | None, higher: str = "higher", lower: str = "lower",
                   none: str = "no measurable difference", digits: int = 2) -> str:
    """The words for a paired effect: ``higher``/``lower`` only when the 95 % interval excludes 0."""
    if not e or not e.get("n"):
        return "not measurable yet (no paired runs)"
    if e["n"] < 2 or math.isnan(e["lo"]):
        return f"not measurable with one pair ({effect_text(e, digits)})"
    word = (higher if e["mean"] > 0 else lower) if e["excludes_zero"] else none
    return f"{word}: {effect_text(e, digits)}"


def effects_table(runs: pd.DataFrame, reference: str, rows: Iterable[str], metrics: Sequence[str] = ("h", "mem", "for"),
                  key: str = "variant", by: str | None = "n_forget") -> pd.DataFrame:
    """Each row minus ``reference``, paired, per ``by`` and over all: one text cell per metric, plus whether the
    H interval excludes 0 (so a display can mark only differences outside the noise)."""
    names = [f"Δ {m.upper() if m == 'h' else m.capitalize()}" for m in metrics]
    records = []
    for row in rows:
        if row == reference:
            continue
        per_metric = {m: paired(runs, row, reference, m, key, by) for m in metrics}
        groups = [g for g in per_metric[metrics[0]]]
        for g in groups:
            rec = {by or "group": g, key: row}
            for m in metrics:
                rec[f"Δ {m.upper() if m == 'h' else m.capitalize()}"] = effect_text(per_metric[m].get(g))
            first = per_metric[metrics[0]].get(g) or {}
            rec["n pairs"] = first.get("n", 0)
            rec["outside noise"] = bool(first.get("excludes_zero", False))
            records.append(rec)
    return pd.DataFrame.from_records(records, columns=[by or "group", key, *names, "n pairs", "outside noise"])


def effects_for_display(table: pd.DataFrame, by_name: str = "|D_forget|", key_name: str = "method") -> pd.DataFrame:
    """:func:`effects_table` as a page shows it: rows labelled by (group, row) instead of a running number, a
    group's rows left out when they repeat "all" (a single group), and "outside noise" as yes/no."""
    df = table.copy()
    by, key = df.columns[0], df.columns[1]
    groups = [g for g in df[by].unique() if g != "all"]
    if len(groups) == 1:
        df = df[df[by] == "all"]
    df["outside noise"] = df["outside noise"].map({True: "yes", False: "no"})
    return df.rename(columns={by: by_name, key: key_name}).set_index([by_name, key_name])


def best_by(runs: pd.DataFrame, metric: str = "h", key: str = "variant", by: str | None = "n_forget"
            ) -> dict[Any, dict[str, Any]]:
    """Per value of ``by`` (and ``"all"``): the row with the highest mean ``metric``, the runner-up, and the paired
    effect best − runner-up (so a page can say whether the lead is outside the noise). Means are taken over the
    (forget set, seed) pairs every row has (``n`` of them), so an incomplete grid compares like with like."""
    out: dict[Any, dict[str, Any]] = {}
    if runs is None or runs.empty:
        return out
    groups = [("all", runs)] + ([(k, g) for k, g in runs.groupby(by, sort=True)] if by else [])
    for k, g in groups:
        g = shared_pairs(g, key)
        means = g.groupby(key)[metric].mean().sort_values(ascending=False)
        if means.empty:
            continue
        entry: dict[str, Any] = {"best": means.index[0], "best_mean": float(means.iloc[0])}
        if len(means) > 1:
            entry.update(runner_up=means.index[1], runner_up_mean=float(means.iloc[1]),
                         lead=paired(g, means.index[0], means.index[1], metric, key).get("all"))
        entry["n"] = int(g[list(PAIR_ON)].drop_duplicates().shape[0]) if set(PAIR_ON) <= set(g) else len(g)
        out[k] = entry
    return out


def shared_pairs(runs: pd.DataFrame, key: str) -> pd.DataFrame:
    """The runs on the (forget set, seed) pairs that every row of ``key`` has, so that means are compared on the
    same forget sets and seeds while a grid is incomplete (a row with extra runs would otherwise average others)."""
    if not set(PAIR_ON) <= set(runs):
        return runs
    pairs = runs[[*PAIR_ON, key]].astype(str).drop_duplicates()
    counts = pairs.groupby(list(PAIR_ON))[key].nunique()
    shared = counts[counts == runs[key].nunique()].index
    keep = pd.MultiIndex.from_frame(runs[list(PAIR_ON)].astype(str)).isin(shared)
    return runs[keep]
