"""The depth-of-forgetting page: linear-probe recovery and relearning (:mod:`adu_core.recovery`) for every run a
page shows, read from each run's ``recovery.json`` or measured within the page's budget, and their paired effects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from adu_core import recovery
from adu_core.backbones import BackboneError
from adu_core.data.base import DataError
from adu_core.results import RunFileError

from .effects import effect_text, effect_verdict, paired
from .runs import RunStatus, shard_slice, short_path

__all__ = ["DepthStatus", "depth_effects", "ensure_recovery", "facts", "relearn_frame"]


@dataclass
class DepthStatus:
    """The measurements that exist (``frame``: one row per run and model), and what is missing or broken."""

    frame: pd.DataFrame
    curves: pd.DataFrame
    measured: int
    missing: int
    problems: list[str]

    def message(self) -> str:
        have = self.frame["path"].nunique() if len(self.frame) else 0
        text = (f"**{have} of {have + self.missing} runs** have their depth measurements (`recovery.json`), "
                f"{self.measured} measured now.")
        if self.missing:
            text += (" The others are measured by this page with `-p max_new_runs -1` (they need the dataset on "
                     "this machine; each takes about a minute on 2 CPU cores).")
        return text + "".join(f"\n\n**Not measured:** {p}" for p in self.problems)


def ensure_recovery(status: RunStatus, budget: int, steps: Sequence[int] = recovery.RELEARN_STEPS,
                    progress: bool = True) -> DepthStatus:
    """Each run of ``status``: its recovery.json when it exists, else measured while ``budget`` lasts (-1: all)."""
    rows, curves, problems = [], [], []
    runs = status.runs.drop_duplicates("path") if len(status.runs) else status.runs
    folders = [(run, Path(run["path"]).parent) for _, run in runs.iterrows()]
    mine = {f for _, f in folders[shard_slice()]}  # ADU_RUN_SHARD: processes share the measurements too
    new = [f for _, f in folders if not (f / "recovery.json").is_file() and f in mine]
    allowed = set(new if budget < 0 else new[:budget])
    bar = tqdm(total=len(allowed), desc="depth", unit="run", disable=not progress or not allowed)
    measured = missing = 0
    for run, folder in folders:
        if not (folder / "recovery.json").is_file() and folder not in allowed:
            missing += 1
            continue
        try:
            rec = recovery.measure_run(folder, steps=steps)
        except (DataError, BackboneError, RunFileError, FileNotFoundError) as err:
            problems.append(f"`{short_path(folder)}`: {type(err).__name__}: {err}")
            missing += 1
            continue
        if folder in allowed:
            measured += 1
            bar.update()
        for model in ("unlearned", "original"):
            part = rec[model]
            base = {"variant": run["variant"], "forget": run["forget"], "seed": run["seed"], "model": model,
                    "path": str(folder / "recovery.json")}
            rows.append({**base, "probe_acc": part["probe_acc"], "n_test": part["n_test"]})
            curves += [{**base, "step": point["step"], "acc": point["acc"]} for point in part["relearn"] or []]
    bar.close()
    frame = pd.DataFrame(rows, columns=["variant", "forget", "seed", "model", "path", "probe_acc", "n_test"])
    curve_frame = pd.DataFrame(curves, columns=["variant", "forget", "seed", "model", "path", "step", "acc"])
    return DepthStatus(frame, curve_frame, measured, missing, problems)


def relearn_frame(depth: DepthStatus) -> pd.DataFrame:
    """Forgotten-domain accuracy per (method, model, step): mean ± sample std over runs, and n."""
    if not len(depth.curves):
        return pd.DataFrame()
    g = depth.curves.groupby(["variant", "model", "step"], sort=False)["acc"]
    table = g.agg(["mean", "std", "count"]).round(2).rename(columns={"count": "n"})
    return table.unstack("step")


def depth_effects(depth: DepthStatus, methods: Sequence[str], steps: Sequence[int]) -> pd.DataFrame:
    """Per method: unlearned − original, paired by (forget set, seed), for the probe and for accuracy after each
    number of relearning steps."""
    records = []
    for m in methods:
        probe = depth.frame[depth.frame["variant"] == m].rename(columns={"model": "which"})
        rec: dict[str, Any] = {"method": m,
                               "probe (unlearned − original)": effect_text(
                                   paired(probe, "unlearned", "original", "probe_acc", key="which").get("all"))}
        curve = depth.curves[depth.curves["variant"] == m]
        for s in steps:
            at = curve[curve["step"] == s].rename(columns={"model": "which"})
            rec[f"after {s} steps"] = effect_text(paired(at, "unlearned", "original", "acc", key="which").get("all")) \
                if len(at) else "no relearning (no gradient parameters)"
        records.append(rec)
    return pd.DataFrame(records).set_index("method") if records else pd.DataFrame()


def pct(x: float) -> str:
    """An accuracy for the page's text: "47.20 %", or a dash saying it is not measured yet."""
    return "– (not measured yet)" if x != x else f"{x:.2f} %"


def facts(depth: DepthStatus, steps: Sequence[int], main: str = "ADU", other: str = "Baseline") -> dict[str, str]:
    """The page's glued phrases: ADU's probe and relearning against the original, and ADU's against the Baseline's."""
    def probe_effect(m):
        part = depth.frame[depth.frame["variant"] == m].rename(columns={"model": "which"})
        return paired(part, "unlearned", "original", "probe_acc", key="which").get("all")

    def after(m, s, model="unlearned"):
        part = depth.curves[(depth.curves["variant"] == m) & (depth.curves["step"] == s)]
        return part.loc[part["model"] == model, "acc"].mean() if len(part) else float("nan")

    last, first = max(steps), min(steps)
    un = depth.frame[depth.frame["model"] == "unlearned"]
    adu_vs_base = paired(un, main, other, "probe_acc").get("all") if len(un) else None
    end = depth.curves[(depth.curves["step"] == last) & (depth.curves["model"] == "unlearned")]
    relearn_vs_base = paired(end, main, other, "acc").get("all") if len(end) else None
    frame_probe = depth.frame.groupby(["variant", "model"])["probe_acc"].mean() if len(depth.frame) else {}

    def probe_mean(m, model):
        try:
            return pct(float(frame_probe[(m, model)]))
        except (KeyError, TypeError):
            return pct(float("nan"))

    return {
        "depth_n": str(depth.frame["path"].nunique() if len(depth.frame) else 0),
        "depth_probe_main": probe_mean(main, "unlearned"), "depth_probe_orig": probe_mean(main, "original"),
        "depth_probe_effect": effect_verdict(probe_effect(main), "higher than the original's",
                                             "lower than the original's"),
        "depth_probe_vs_other": effect_verdict(adu_vs_base, f"higher than the {other}'s", f"lower than the {other}'s"),
        "depth_first": str(first), "depth_last": str(last),
        "depth_main_start": pct(after(main, first)), "depth_main_end": pct(after(main, last)),
        "depth_orig_end": pct(after(main, last, "original")),
        "depth_relearn_vs_other": effect_verdict(relearn_vs_base, f"higher than the {other}'s",
                                                 f"lower than the {other}'s"),
    }
