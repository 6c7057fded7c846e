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

__all__ = ["PAIR_ON", "best_by", "effect_text", "effect_verdict", "effects_table", "paired"]

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


def _num(x: float, digits: int) -> str:
    return f"{x:+.{digits}f}".replace("-", "−")


def effect_text(e: Mapping[str, Any] | None, digits: int = 2) -> str:
    """``+1.23 (95 % CI −0.40 to +2.86, n = 42)``; ``n/a`` without pairs; no interval for a single pair."""
    if not e or not e.get("n"):
        return "n/a (no paired runs)"
    if e["n"] < 2 or math.isnan(e["lo"]):
        return f"{_num(e['mean'], digits)} (n = {e['n']}: no interval)"
    return f"{_num(e['mean'], digits)} (95 % CI {_num(e['lo'], digits)} to {_num(e['hi'], digits)}, n = {e['n']})"


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


def best_by(runs: pd.DataFrame, metric: str = "h", key: str = "variant", by: str | None = "n_forget"
            ) -> dict[Any, dict[str, Any]]:
    """Per value of ``by`` (and ``"all"``): the row with the highest mean ``metric``, the runner-up, and the paired
    effect best − runner-up (so a page can say whether the lead is outside the noise)."""
    out: dict[Any, dict[str, Any]] = {}
    if runs is None or runs.empty:
        return out
    groups = [("all", runs)] + ([(k, g) for k, g in runs.groupby(by, sort=True)] if by else [])
    for k, g in groups:
        means = g.groupby(key)[metric].mean().sort_values(ascending=False)
        if means.empty:
            continue
        entry: dict[str, Any] = {"best": means.index[0], "best_mean": float(means.iloc[0])}
        if len(means) > 1:
            entry.update(runner_up=means.index[1], runner_up_mean=float(means.iloc[1]),
                         lead=paired(g, means.index[0], means.index[1], metric, key).get("all"))
        out[k] = entry
    return out
