"""Paired comparisons: one row of a table minus another, on the runs they share (same forget set, same seed).

Two methods run on the same forget sets and seeds differ by much less than either varies across forget sets, so a
difference is measured per (forget set, seed) pair. The pairs are not independent samples: a table's forget sets are
all the combinations of its domains (fixed, not drawn), and the seeds are the replicates within each. So an effect
carries two intervals, each saying what it estimates (:mod:`adu_core.metrics`):

* **stratified** (the primary one): the mean over forget sets of each set's mean difference, its error from the
  seed-to-seed spread *within* each forget set: "would it hold with other seeds, on these forget sets";
* **over forget sets** (the robustness one): the seed means of each forget set, a Student-t interval over the
  sets: "would it hold for another forget set".

Where no forget set has two seeds (a sweep at one seed) the stratified interval does not exist and the effect rests
on the interval over forget sets; every effect says which one it rests on (``basis``). The words a page uses follow
the primary interval, never the mean alone: "higher"/"lower" only when it excludes 0, "no measurable difference"
when it covers 0. Two different runs in one cell (same row, forget set and seed) are refused, never averaged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from adu_core.metrics import over_strata_difference, paired_difference, stratified_difference

from .facts import signed

__all__ = ["BASES", "PAIR_ON", "DuplicateRunsError", "best_by", "effect_text", "effect_verdict",
           "effects_for_display", "effects_table", "interval_text", "one_run_per_cell", "paired", "shared_pairs"]

PAIR_ON = ("forget", "seed")  # (stratum, replicate): forget sets are fixed, seeds are the replicates within them
BASES = {"stratified": "over seeds", "forget sets": "over forget sets"}  # what each interval's spread is


class DuplicateRunsError(ValueError):
    """Two different runs fill one cell (row, forget set, seed): averaging them would hide it."""


def one_run_per_cell(part: pd.DataFrame, index: Sequence[str]) -> pd.DataFrame:
    """``part`` with one row per cell of ``index``: the same run listed twice (same ``path``) counts once; two
    different runs in a cell raise :class:`DuplicateRunsError` naming the cell and the runs."""
    index = list(index)
    if "path" in part:
        part = part.drop_duplicates([*index, "path"])
    dup = part.duplicated(index, keep=False)
    if dup.any():
        first = part[dup].sort_values(index).head(4)
        cells = "; ".join(
            ", ".join(f"{k}={v}" for k, v in zip(index, row, strict=True))
            + (f" ({p})" if "path" in part else "")
            for row, p in zip(first[index].itertuples(index=False), first.get("path", [""] * len(first)),
                              strict=True))
        raise DuplicateRunsError(f"{int(dup.sum())} runs share a cell of ({', '.join(index)}), e.g. {cells}: "
                                 "one run per cell is expected; a table would silently average them")
    return part


def paired(runs: pd.DataFrame, a: str, b: str, metric: str = "h", key: str = "variant",
           by: str | None = None, pair_on: Sequence[str] = PAIR_ON) -> dict[Any, dict[str, Any]]:
    """``a − b`` of ``metric`` over the (forget set, seed) pairs where both rows have a run, per value of ``by``
    (and ``"all"``: every pair). Each entry: the primary interval's mean, lo, hi, n, sd, excludes_zero and its
    ``basis`` ("stratified", or "forget sets" where no forget set has two seeds), both intervals in full
    (``stratified``, ``over_sets``), ``pooled`` (every pair as an independent sample: the rule the book used
    before, kept to say which verdicts the choice changes), ``n_pairs``, ``n_sets``, a and b."""
    out: dict[Any, dict[str, Any]] = {}
    if runs is None or runs.empty or key not in runs:
        return out
    stratum = pair_on[0]
    index = [*([by] if by else []), *pair_on]
    part = one_run_per_cell(runs[runs[key].isin([a, b])], [*index, key])
    table = part.set_index([*index, key])[metric].unstack(key)
    if a not in table or b not in table:
        return out
    both = table[[a, b]].astype(float).dropna()
    groups = [("all", both)]
    if by:
        groups += [(k, g) for k, g in both.groupby(level=by, sort=True)]
    for k, g in groups:
        strata = g.index.get_level_values(stratum).astype(str).tolist()
        strat = stratified_difference(g[a].to_numpy(), g[b].to_numpy(), strata)
        over = over_strata_difference(g[a].to_numpy(), g[b].to_numpy(), strata)
        primary, basis = (strat, "stratified") if strat["df"] >= 1 else (over, "forget sets")
        out[k] = {**{f: primary[f] for f in ("mean", "lo", "hi", "n", "sd", "excludes_zero")}, "basis": basis,
                  "stratified": strat, "over_sets": over, "pooled": paired_difference(g[a].to_numpy(), g[b].to_numpy()),
                  "n_pairs": int(len(g)), "n_sets": over["n_strata"],
                  "a": a, "b": b}
    return out


def interval_text(e: Mapping[str, Any] | None, basis: str | None = None, digits: int = 2) -> str:
    """One interval of an effect in words: ``+1.23 (95 % CI −0.40 to +2.86 over seeds, n = 42 in 14 forget
    sets)`` (``basis`` "stratified"), ``+5.56 (95 % CI −1.14 to +12.25 over forget sets, n = 4)`` ("forget
    sets"), or without a basis ``+1.23 (95 % CI −0.40 to +2.86, n = 42)``."""
    if not e or not e.get("n"):
        return "n/a (no paired runs)"
    if e["n"] < 2 or math.isnan(e["lo"]):
        return f"{signed(e['mean'], digits)} (n = {e['n']}: no interval)"
    ci = f"95 % CI {signed(e['lo'], digits)} to {signed(e['hi'], digits)}"
    if basis == "stratified":
        sets = f"{e['n_strata']} forget set{'s' if e['n_strata'] != 1 else ''}"
        return f"{signed(e['mean'], digits)} ({ci} {BASES[basis]}, n = {e['n']} in {sets})"
    if basis == "forget sets":
        return f"{signed(e['mean'], digits)} ({ci} {BASES[basis]}, n = {e['n']})"
    return f"{signed(e['mean'], digits)} ({ci}, n = {e['n']})"


def effect_text(e: Mapping[str, Any] | None, digits: int = 2) -> str:
    """The effect's primary interval in words (:func:`interval_text`, naming its basis when it has one); ``n/a``
    without pairs; no interval for a single pair."""
    if not e or not e.get("n"):
        return "n/a (no paired runs)"
    basis = e.get("basis")
    if basis is None:
        return interval_text(e, None, digits)
    return interval_text(e["stratified"] if basis == "stratified" else e["over_sets"], basis, digits)


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
            rec["n pairs"] = first.get("n_pairs", first.get("n", 0))
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
