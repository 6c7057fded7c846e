"""The training-free weight edit (KVW) on the main results page: what it edited, what it cost, where it stands.

KVW's runs record their edit (:func:`adu_core.methods.kvw.edit_of`: per encoder block, the weakened units and their
gains); this module reads it back from each run.json, draws how many units each block lost, and states KVW against
ADU and against the domain gate, paired by forget set and seed, with its cost per run beside the trained methods'.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from adu_core.methods.kvw import edit_of

from .effects import paired
from .facts import compare
from .forest import BOOK_WIDTH_IN, FONT_PT
from .names import METHOD_NAMES, METRIC_NAMES

__all__ = ["KVW", "edit_counts", "page_facts", "plot_edit_counts"]

KVW = METHOD_NAMES["kvw"]


def edit_counts(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (KVW run, encoder block): forget set, seed, block, units weakened, units in the block, rounds and
    why the edit stopped."""
    rows = []
    part = runs[runs["method"] == "kvw"] if len(runs) else runs
    for path in dict.fromkeys(part.get("path", [])):
        run = json.loads(Path(path).read_text())
        edit = edit_of(run)
        for block, count in edit["count_per_block"].items():
            rows.append({"forget": "+".join(run["config"]["forget"]), "seed": run["config"]["seed"],
                         "block": int(block), "weakened": int(count), "units": int(edit["hidden"][block]),
                         "n_weakened": int(edit["n_weakened"]), "rounds": edit.get("rounds"),
                         "stop": edit.get("stop"), "edit_s": edit.get("seconds")})
    return pd.DataFrame(rows, columns=["forget", "seed", "block", "weakened", "units", "n_weakened", "rounds",
                                       "stop", "edit_s"])


def plot_edit_counts(counts: pd.DataFrame) -> plt.Figure:
    """Units weakened per encoder block: mean over KVW's runs (bar) and the range over runs (line)."""
    with plt.rc_context({"font.size": FONT_PT, "axes.labelsize": FONT_PT, "xtick.labelsize": FONT_PT - 1,
                         "ytick.labelsize": FONT_PT - 1}):
        fig, ax = plt.subplots(figsize=(BOOK_WIDTH_IN * 0.7, 2.8), layout="constrained")
        if counts.empty:
            ax.text(0.5, 0.5, "no KVW runs yet", ha="center", va="center", transform=ax.transAxes, color="0.4")
            ax.set_axis_off()
            return fig
        by = counts.groupby("block")["weakened"]
        mean, lo, hi = by.mean(), by.min(), by.max()
        ax.bar(mean.index, mean.values, color="C0", width=0.6)
        ax.vlines(mean.index, lo.values, hi.values, color="0.25", lw=1.5)
        units = int(counts["units"].iloc[0])
        ax.set_xticks(list(mean.index), [str(b + 1) for b in mean.index])
        ax.set_xlabel("image-encoder block (1 = first)")
        ax.set_ylabel(f"units weakened (of {units})")
        ax.grid(axis="y", color="0.9")
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig


def page_facts(runs: pd.DataFrame, counts: pd.DataFrame) -> dict[str, str]:
    """Glued phrases: KVW against ADU and the gate (H, paired), its cost per run beside the trained methods', and
    the size of its edit."""
    facts: dict[str, str] = {}
    for other in ("adu", "gate"):
        name = METHOD_NAMES[other]
        for metric in ("h", "mem", "for"):
            e = paired(runs, KVW, name, metric).get("all") if len(runs) else None
            label = METRIC_NAMES[metric]
            facts[f"kvw_{metric}_vs_{other}"] = compare(e, f"KVW's {label}", f"{name}'s", unit=f"{label} points")
    facts["kvw_cost"] = _cost(runs)
    if counts.empty:
        facts["kvw_edit_size"] = "not measured yet (no KVW runs)"
    else:
        per_run = counts.drop_duplicates(["forget", "seed"])
        total = int(counts.groupby("block")["units"].first().sum())
        stops = per_run["stop"].value_counts()
        facts["kvw_edit_size"] = (f"{per_run['n_weakened'].mean():.0f} of the encoder's {total} MLP units on average "
                                  f"(from {per_run['n_weakened'].min()} to {per_run['n_weakened'].max()} over "
                                  f"{len(per_run)} runs), in {per_run['rounds'].mean():.1f} rounds; the edit itself "
                                  f"takes {per_run['edit_s'].mean():.0f} s; it stopped by "
                                  + ", ".join(f"{k.replace('_', ' ')} in {v}" for k, v in stops.items()))
    return facts


def _cost(runs: pd.DataFrame) -> str:
    """Mean wall time per run of KVW and of the trained methods, with the precision they ran at."""
    if runs.empty or "total_s" not in runs:
        return "not measured yet"
    parts = []
    for m in ("kvw", "baseline", "adu", "clipfit"):
        rows = runs[runs["method"] == m].drop_duplicates("path")
        if len(rows):
            prec = "/".join(sorted(set(rows.get("precision", pd.Series(dtype=str)).dropna()))) or "unrecorded"
            parts.append(f"{METHOD_NAMES[m]} {rows['total_s'].mean() / 60:.1f} min ({prec}, n = {len(rows)})")
    return "; ".join(parts) if parts else "not measured yet"
