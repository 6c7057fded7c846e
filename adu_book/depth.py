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

from .effects import paired
from .facts import compare, signed
from .runs import RunStatus, shard_slice, short_path

__all__ = ["DepthStatus", "depth_effects", "ensure_recovery", "facts", "method_verdict", "reference_curve",
           "reference_means", "relearn_frame"]


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
            from .figures import missing_text

            problems.append(f"`{short_path(folder)}`: {missing_text(err)}")
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


def relearn_frame(depth: DepthStatus, digits: int = 1) -> pd.DataFrame:
    """Forgotten-domain accuracy per method, model and step, as a reader reads it: "mean ± sample std" (%) per step
    and the number of runs once (the same at every step)."""
    if not len(depth.curves):
        return pd.DataFrame()
    g = depth.curves.groupby(["variant", "model", "step"], sort=False)["acc"]
    stats = g.agg(["mean", "std", "count"]).reset_index()
    stats["text"] = [f"{m:.{digits}f}" if pd.isna(sd) else f"{m:.{digits}f} ± {sd:.{digits}f}"
                     for m, sd in zip(stats["mean"], stats["std"], strict=True)]
    table = stats.pivot_table(index=["variant", "model"], columns="step", values="text", aggfunc="first",
                              sort=False)
    table.columns = [f"after {s} steps, %" for s in table.columns]
    table["runs"] = stats.groupby(["variant", "model"], sort=False)["count"].max().reindex(table.index).astype(int)
    table.index.names = ["method", "model"]
    return table


def reference_curve(depth: DepthStatus, steps: Sequence[int]) -> pd.DataFrame:
    """The reference for "nothing is gone", per run: the better of the original model's forgotten-domain accuracy
    before relearning (step 0) and after the most relearning steps. Relearning lowers the original model's own
    accuracy (it starts from CLIP's zero-shot head and fits few images), so "unlearned − original relearned the same
    way" would compare against a model that was itself made worse; the better of the two does not degrade. Columns:
    variant, forget, seed, acc, which ("before relearning" or "after N steps")."""
    cols = ["variant", "forget", "seed", "acc", "which"]
    if not len(depth.curves):
        return pd.DataFrame(columns=cols)
    last, first = max(steps), min(steps)
    orig = depth.curves[depth.curves["model"] == "original"]
    wide = orig[orig["step"].isin([first, last])].pivot_table(index=["variant", "forget", "seed"], columns="step",
                                                              values="acc", aggfunc="first")
    if first not in wide or last not in wide:
        return pd.DataFrame(columns=cols)
    better = wide[[first, last]].max(axis=1)
    which = [f"after {last} steps" if b > a else "before relearning" for a, b in zip(wide[first], wide[last],
                                                                                       strict=True)]
    return better.rename("acc").reset_index().assign(which=which)[cols]


def _versus_reference(depth: DepthStatus, method: str, step: int, steps: Sequence[int]) -> dict[str, Any] | None:
    """The unlearned model's accuracy after ``step`` relearning steps minus :func:`reference_curve`, paired."""
    ref = reference_curve(depth, steps)
    un = depth.curves[(depth.curves["variant"] == method) & (depth.curves["model"] == "unlearned")
                      & (depth.curves["step"] == step)]
    ref = ref[ref["variant"] == method]
    if not len(un) or not len(ref):
        return None
    both = pd.concat([un[["forget", "seed", "acc"]].assign(which="unlearned", variant=method),
                      ref[["forget", "seed", "acc"]].assign(which="reference", variant=method)])
    return paired(both, "unlearned", "reference", "acc", key="which").get("all")


def _probe_effect(depth: DepthStatus, method: str) -> dict[str, Any] | None:
    part = depth.frame[depth.frame["variant"] == method].rename(columns={"model": "which"})
    return paired(part, "unlearned", "original", "probe_acc", key="which").get("all") if len(part) else None


def depth_effects(depth: DepthStatus, methods: Sequence[str], steps: Sequence[int]) -> pd.DataFrame:
    """Per method: the probe (unlearned − original, paired by forget set and seed), and the accuracy after each
    number of relearning steps minus the reference (:func:`reference_curve`), in percentage points."""
    records = []
    for m in methods:
        rec: dict[str, Any] = {"method": m, "probe: unlearned − original": _cell(_probe_effect(depth, m))}
        curve = depth.curves[depth.curves["variant"] == m]
        for s in steps:
            rec[f"after {s} steps − reference"] = _cell(_versus_reference(depth, m, s, steps)) \
                if len(curve[curve["step"] == s]) else "no relearning (nothing to train)"
        records.append(rec)
    return pd.DataFrame(records).set_index("method") if records else pd.DataFrame()


def _cell(e: dict[str, Any] | None) -> str:
    """A table cell: "−19.7 (−23.0 to −16.4), n = 12" in percentage points, the interval named in the heading."""
    if not e or not e.get("n"):
        return "–"
    if e["n"] < 2 or pd.isna(e["lo"]):
        return f"{signed(e['mean'], 1)} (one pair)"
    return f"{signed(e['mean'], 1)} ({signed(e['lo'], 1)} to {signed(e['hi'], 1)}), n = {e['n']}"


def pct(x: float) -> str:
    """An accuracy for the page's text: "47.20 %", or a dash saying it is not measured yet."""
    return "– (not measured yet)" if x != x else f"{x:.2f} %"


def _original_versus_reference(depth: DepthStatus, method: str, step: int, steps: Sequence[int]):
    """The original model's accuracy after ``step`` relearning steps minus the reference: below 0 when relearning
    lowers the original model itself (then relearning says little about what the unlearned model lost)."""
    ref = reference_curve(depth, steps)
    orig = depth.curves[(depth.curves["variant"] == method) & (depth.curves["model"] == "original")
                        & (depth.curves["step"] == step)]
    ref = ref[ref["variant"] == method]
    if not len(orig) or not len(ref):
        return None
    both = pd.concat([orig[["forget", "seed", "acc"]].assign(which="original", variant=method),
                      ref[["forget", "seed", "acc"]].assign(which="reference", variant=method)])
    return paired(both, "original", "reference", "acc", key="which").get("all")


def method_verdict(depth: DepthStatus, method: str, steps: Sequence[int]) -> str:
    """One sentence for one method: is the knowledge gone from the features, or only hidden behind the head or the
    prompt? Read from paired effects: a linear probe on the unlearned features against the original's (does the
    information survive in the features?), and the accuracy after the most relearning steps against the reference
    (:func:`reference_curve`: does it come back?). Where relearning lowers the original model too, it is said to
    say little, and the probe decides."""
    probe = _probe_effect(depth, method)
    last = max(steps)
    if not probe or not probe.get("n"):
        return f"{method}: not measured yet."
    means = depth.frame[depth.frame["variant"] == method].groupby("model")["probe_acc"].mean()
    probe_text = compare(probe, f"a probe on its features ({means.get('unlearned', float('nan')):.1f} %)",
                         f"the probe on the original's ({means.get('original', float('nan')):.1f} %)", unit="percentage points")
    kept = not probe["excludes_zero"] or probe["mean"] > 0
    relearn = _versus_reference(depth, method, last, steps)
    if relearn is None:
        where = ("the features still hold the forgotten domain's classes, and the forgetting sits in what the method "
                 "puts in front of them (its head, prompts or gate): hidden, not gone" if kept else
                 "the features lost class information: at least partly gone")
        return (f"{method}: {probe_text}. It has nothing that relearning (gradient steps) can train, so the probe "
                f"decides: {where}.")
    relearn_text = compare(relearn, f"after {last} relearning steps its forgotten-domain accuracy", "the reference",
                           unit="percentage points")
    back = not relearn["excludes_zero"] or relearn["mean"] > 0
    orig = _original_versus_reference(depth, method, last, steps)
    orig_short = bool(orig and orig.get("excludes_zero") and orig["mean"] < 0)
    if kept and back:
        verdict = "hidden, not gone: the features keep the classes and a few relearning steps bring them back"
    elif kept and orig_short:
        verdict = ("hidden, not gone: the features keep everything the original's had; relearning does not reach "
                   f"the reference, but {last} relearning steps leave the original model itself "
                   f"{abs(orig['mean']):.1f} percentage points lower than the reference, so relearning says little "
                   "here")
    elif kept:
        verdict = ("hidden in the features (a probe still finds the classes) but not given back by "
                   f"{last} steps of relearning")
    elif back:
        verdict = (f"partly gone from the features, yet {last} relearning steps restore the accuracy: shallow "
                   "forgetting")
    else:
        verdict = (f"partly lost from the features, not only hidden behind the head or prompt: a probe finds less, "
                   f"and {last} relearning steps do not bring the accuracy back to the reference")
    return f"{method}: {probe_text}; {relearn_text}. The knowledge is {verdict}."


def reference_means(depth: DepthStatus, steps: Sequence[int]) -> pd.DataFrame:
    """:func:`reference_curve` averaged per method (columns variant, acc), for the relearning plot."""
    return reference_curve(depth, steps).groupby("variant", as_index=False)["acc"].mean()


def facts(depth: DepthStatus, steps: Sequence[int], main: str = "ADU", other: str = "Baseline",
          methods: Sequence[str] = ()) -> dict[str, Any]:
    """The page's glued phrases: ADU's probe and relearning against the original and the reference, ADU's against
    the Baseline's, the reference itself, and one verdict per method (``depth_verdicts``: a Markdown list, for a
    ``{glue:md}`` directive)."""
    def after(m, s, model="unlearned"):
        part = depth.curves[(depth.curves["variant"] == m) & (depth.curves["step"] == s)]
        return part.loc[part["model"] == model, "acc"].mean() if len(part) else float("nan")

    last, first = max(steps), min(steps)
    un = depth.frame[depth.frame["model"] == "unlearned"]
    adu_vs_base = paired(un, main, other, "probe_acc").get("all") if len(un) else None
    end = depth.curves[(depth.curves["step"] == last) & (depth.curves["model"] == "unlearned")]
    relearn_vs_base = paired(end, main, other, "acc").get("all") if len(end) else None
    frame_probe = depth.frame.groupby(["variant", "model"])["probe_acc"].mean() if len(depth.frame) else {}
    ref = reference_curve(depth, steps)
    ref_main = ref[ref["variant"] == main]

    def probe_mean(m, model):
        try:
            return pct(float(frame_probe[(m, model)]))
        except (KeyError, TypeError):
            return pct(float("nan"))

    from IPython.display import Markdown

    shown = list(methods) or (list(dict.fromkeys(depth.frame["variant"])) if len(depth.frame) else [])
    verdicts = Markdown("\n".join(f"- {method_verdict(depth, m, steps)}" for m in shown) or "- not measured yet.")
    n_after = int((ref_main["which"] != "before relearning").sum()) if len(ref_main) else 0
    return {
        "depth_n": str(depth.frame["path"].nunique() if len(depth.frame) else 0),
        "depth_probe_main": probe_mean(main, "unlearned"), "depth_probe_orig": probe_mean(main, "original"),
        "depth_probe_effect": compare(_probe_effect(depth, main), f"the probe on {main}'s features",
                                      "on the original's", unit="percentage points"),
        "depth_probe_vs_other": compare(adu_vs_base, f"the probe on {main}'s features", f"the probe on the {other}'s",
                                        unit="percentage points"),
        "depth_first": str(first), "depth_last": str(last),
        "depth_main_start": pct(after(main, first)), "depth_main_end": pct(after(main, last)),
        "depth_orig_start": pct(after(main, first, "original")), "depth_orig_end": pct(after(main, last, "original")),
        "depth_ref_main": pct(float(ref_main["acc"].mean()) if len(ref_main) else float("nan")),
        "depth_ref_after": f"{n_after} of {len(ref_main)}",
        "depth_relearn_vs_ref": compare(_versus_reference(depth, main, last, steps),
                                        f"after {last} steps {main}'s accuracy", "the reference",
                                        unit="percentage points"),
        "depth_relearn_vs_other": compare(relearn_vs_base, f"after {last} steps {main}'s accuracy",
                                          f"the {other}'s", unit="percentage points"),
        "depth_verdicts": verdicts,
    }
