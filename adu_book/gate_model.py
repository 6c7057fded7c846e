"""The domain gate in closed form, and its verdict carried to the paper's datasets.

The gate (:mod:`adu_core.methods.gate`) answers like zero-shot CLIP, except on images its detector puts in a
forgotten domain, which get a class drawn uniformly. So its Mem, For and H follow from three things: the detector's
accuracy ``a``, zero-shot CLIP's accuracy ``z_d`` on each domain, and the number of classes ``C``.

Derivation. Take a test image of domain d; D domains, k of them forgotten. Assume (i) the detector is right with
probability a on every domain and, when wrong, names each of the D − 1 other domains equally often; (ii) whether it
is right does not depend on whether zero-shot CLIP names the class right. The image is *gated* (gets the random
answer) with probability

    g_kept = (1 − a)·k/(D − 1)                      for a kept domain (it is wrongly named one of the k forgotten),
    g_forg = a + (1 − a)·(k − 1)/(D − 1)            for a forgotten one (named itself, or another forgotten one),

and is then right with probability 1/C; otherwise zero-shot CLIP answers, right with probability z_d. Its accuracy
on domain d is ``acc_d = (1 − g_d)·z_d + g_d·100/C`` (in %), and, pooled over test images as the metrics are,

    Mem = Σ_{d kept} n_d·acc_d / Σ_{d kept} n_d,     For = 100 − Σ_{d forgotten} n_d·acc_d / Σ_{d forgotten} n_d,
    H = 2·Mem·For/(Mem + For).

With one z for every domain: Mem = z − g_kept·(z − 100/C), For = 100 − z + g_forg·(z − 100/C). Both rise with a
(where z > 100/C), so H does too; a perfect detector gives Mem = z and For = 100·(1 − 1/C), the cap no method that
answers forgotten domains at random can pass. :func:`break_even` inverts H for the accuracy that matches a target.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from adu_core.metrics import h_score

from .names import dataset_name

__all__ = ["PAPER_DATASETS", "ZERO_SHOT_ASSUMPTIONS", "ZeroShotAssumption", "break_even", "break_even_table",
           "check_runs", "closed_form", "curves", "gate_metrics", "gating_rates", "h_against_accuracy",
           "observed_against_closed_form", "paper_regimes", "testbed_curves"]

PAPER_DATASETS = ("office_home", "mini_domainnet", "imagenet")  # the paper's Table 1 datasets


def gating_rates(a: float, n_domains: int, n_forget: int) -> tuple[float, float]:
    """(P(gated | kept domain), P(gated | forgotten domain)) for a detector of accuracy ``a`` (a fraction) whose
    errors spread evenly over the other domains."""
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"detector accuracy is a fraction within [0, 1], got {a}")
    if not 1 <= n_forget < n_domains:
        raise ValueError(f"need 1 <= |D_forget| < |D|, got {n_forget} of {n_domains}")
    other = n_domains - 1
    return (1.0 - a) * n_forget / other, a + (1.0 - a) * (n_forget - 1) / other


def gate_metrics(a: float, zeroshot: Mapping[str, float], n_test: Mapping[str, int], forget: Collection[str],
                 n_classes: int) -> dict[str, float]:
    """The closed form for one forget set: Mem, For and H (%) from the detector's accuracy ``a`` (fraction), zero-shot
    accuracy per domain ``zeroshot`` (%), test images per domain ``n_test`` (the pooling weights) and C."""
    forget = set(forget)
    domains = list(zeroshot)
    unknown = forget - set(domains)
    if unknown:
        raise ValueError(f"forgotten domains {sorted(unknown)} have no zero-shot accuracy")
    g_kept, g_forg = gating_rates(a, len(domains), len(forget))
    chance = 100.0 / n_classes

    def pooled(names: Sequence[str], g: float) -> float:
        weights = np.array([float(n_test[d]) for d in names])
        acc = np.array([(1.0 - g) * float(zeroshot[d]) + g * chance for d in names])
        return float((weights * acc).sum() / weights.sum())

    mem = pooled([d for d in domains if d not in forget], g_kept)
    for_ = 100.0 - pooled([d for d in domains if d in forget], g_forg)
    return {"mem": mem, "for": for_, "h": h_score(mem, for_)}


def closed_form(a: float, z: float, n_classes: int, n_domains: int, n_forget: int) -> dict[str, float]:
    """The closed form with one zero-shot accuracy ``z`` (%) for every domain (so no pooling weights are needed)."""
    names = [f"d{i}" for i in range(n_domains)]
    return gate_metrics(a, dict.fromkeys(names, z), dict.fromkeys(names, 1), names[:n_forget], n_classes)


def break_even(target_h: float, z: float, n_classes: int, n_domains: int, n_forget: int,
               tol: float = 1e-6) -> float:
    """The least detector accuracy (fraction) at which the gate's H reaches ``target_h``; NaN when even a perfect
    detector falls short. H rises with a (module doc), so bisection finds it."""
    def h(a: float) -> float:
        return closed_form(a, z, n_classes, n_domains, n_forget)["h"]

    if h(1.0) < target_h:
        return math.nan
    if h(0.0) >= target_h:
        return 0.0
    lo, hi = 0.0, 1.0
    while hi - lo > tol:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if h(mid) < target_h else (lo, mid)
    return hi


# --- the committed gate runs against the closed form ---------------------------------------------------------------
def check_runs(gate_runs: pd.DataFrame, zeroshot_runs: pd.DataFrame, n_classes: int) -> pd.DataFrame:
    """One row per gate run: the detector's measured test accuracy (``domain_acc_head``, the ``a`` put into the
    closed form), the observed Mem/For/H, and the closed form's, with zero-shot accuracy per domain from the
    zero-shot run of the same forget set and seed (same test set) and the run's own test counts as weights.

    Both frames need a ``path`` column (the run folders); ``gate_runs`` may carry labels (``variant``) kept as is."""
    import json
    from pathlib import Path

    def metrics(path: str) -> dict[str, Any]:
        return json.loads((Path(path) / "run.json" if Path(path).is_dir() else Path(path)).read_text())["metrics"]

    zs = {(r.forget, int(r.seed)): metrics(r.path) for r in zeroshot_runs.itertuples()}
    rows = []
    for r in gate_runs.itertuples():
        z = zs.get((r.forget, int(r.seed)))
        if z is None:
            continue
        m = metrics(r.path)
        a = float(m["domain_acc_head"]) / 100.0
        pred = gate_metrics(a, z["per_domain_acc"], m["n_test"], r.forget.split("+"), n_classes)
        row = {k: getattr(r, k) for k in ("variant", "forget", "seed", "n_forget") if hasattr(r, k)}
        row.update(a=100.0 * a, **{f"{k}_observed": float(m[k]) for k in ("mem", "for", "h")},
                   **{f"{k}_closed_form": pred[k] for k in ("mem", "for", "h")})
        rows.append(row)
    out = pd.DataFrame(rows)
    for k in ("mem", "for", "h"):
        if len(out):
            out[f"{k}_error"] = out[f"{k}_observed"] - out[f"{k}_closed_form"]
    return out


# --- the paper's datasets ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ZeroShotAssumption:
    """Where a paper dataset's zero-shot accuracy comes from (none is printed): a method row of the paper's Table 1
    and how to read it."""

    key: str
    label: str
    method: str
    metric: str  # "mem": that row's Mem; "acc_forgotten": 100 − its For (its accuracy on the forgotten domains)


# LP++ trains a linear head on frozen features and barely forgets (For 18-43), so its accuracy on the kept domains
# (Mem) and on the forgotten ones (100 − For) bracket what the frozen CLIP reaches on them: the assumption is shown
# as that range, never as one number.
ZERO_SHOT_ASSUMPTIONS = (
    ZeroShotAssumption("high", "z = LP++'s Mem (kept domains)", "lp++", "mem"),
    ZeroShotAssumption("low", "z = 100 − LP++'s For (its accuracy on the forgotten domains)", "lp++",
                       "acc_forgotten"),
)


def _value(cell: pd.DataFrame, method: str, metric: str) -> float:
    v = cell.loc[(cell["method"] == method) & (cell["metric"] == metric), "value"]
    return float(v.iloc[0]) if len(v) else math.nan


def paper_regimes(paper: pd.DataFrame, datasets: Sequence[str] = PAPER_DATASETS) -> pd.DataFrame:
    """Per paper dataset and |D_forget| of its Table 1: C and |D| (from the dataset registry), the paper's ADU H and
    Baseline H (the lines to beat), and the zero-shot accuracy under each assumption (:data:`ZERO_SHOT_ASSUMPTIONS`)."""
    from adu_core.data import get_dataset

    t1 = paper[paper["table"] == 1]
    rows = []
    for ds in datasets:
        info = get_dataset(ds)
        part = t1[t1["dataset"] == ds]
        for k in sorted(part["n_forget"].unique()):
            cell = part[part["n_forget"] == k]
            row = {"dataset": ds, "name": dataset_name(ds), "n_forget": int(k), "n_classes": len(info.classnames),
                   "n_domains": len(info.domains), "adu_h": _value(cell, "adu", "h"),
                   "baseline_h": _value(cell, "baseline", "h")}
            for z in ZERO_SHOT_ASSUMPTIONS:
                row[f"z_{z.key}"] = (_value(cell, z.method, "mem") if z.metric == "mem"
                                     else 100.0 - _value(cell, z.method, "for"))
            rows.append(row)
    return pd.DataFrame(rows)


def break_even_table(regimes: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and |D_forget|: the detector accuracy (%) at which the gate's H reaches the paper's ADU H, under
    each zero-shot assumption, and the gate's H with a perfect detector."""
    rows = []
    for r in regimes.itertuples():
        row = {"dataset": r.name, "|D_forget|": r.n_forget, "C": r.n_classes, "ADU H (paper)": r.adu_h}
        for z in ZERO_SHOT_ASSUMPTIONS:
            zv = getattr(r, f"z_{z.key}")
            row[f"z ({z.key})"] = zv
            row[f"break-even a, % ({z.key} z)"] = 100.0 * break_even(r.adu_h, zv, r.n_classes, r.n_domains,
                                                                     r.n_forget)
            row[f"gate H at a = 100 % ({z.key} z)"] = closed_form(1.0, zv, r.n_classes, r.n_domains, r.n_forget)["h"]
        rows.append(row)
    return pd.DataFrame(rows)


def curves(regimes: pd.DataFrame, grid: Sequence[float] | None = None) -> pd.DataFrame:
    """The closed form's H over detector accuracies (%) for each regime row and zero-shot assumption (long form)."""
    grid = list(np.linspace(0.0, 1.0, 101)) if grid is None else list(grid)
    rows = []
    for r in regimes.itertuples():
        for z in ZERO_SHOT_ASSUMPTIONS:
            zv = getattr(r, f"z_{z.key}")
            for a in grid:
                rows.append({"dataset": r.name, "n_forget": r.n_forget, "assumption": z.key, "a": 100.0 * a,
                             "h": closed_form(a, zv, r.n_classes, r.n_domains, r.n_forget)["h"]})
    return pd.DataFrame(rows)


def testbed_curves(check: pd.DataFrame, zeroshot: Mapping[str, float], n_test: Mapping[str, int], n_classes: int,
                   grid: Sequence[float] | None = None) -> pd.DataFrame:
    """The closed form's H over detector accuracies (%) on the testbed, averaged per |D_forget| over the forget sets
    of ``check`` (each with its own kept and forgotten domains), as Table 1 averages runs."""
    grid = list(np.linspace(0.0, 1.0, 101)) if grid is None else list(grid)
    rows = []
    for forget in dict.fromkeys(check["forget"]):
        names = forget.split("+")
        for a in grid:
            rows.append({"n_forget": len(names), "forget": forget, "a": 100.0 * a,
                         "h": gate_metrics(a, zeroshot, n_test, names, n_classes)["h"]})
    frame = pd.DataFrame(rows, columns=["n_forget", "forget", "a", "h"])
    return frame.groupby(["n_forget", "a"], as_index=False)["h"].mean()


def _legible(draw):
    """``draw`` run with the book's text sizes (:data:`adu_book.forest.FONT_PT`), so its figure reads at the book's
    width."""
    import functools

    @functools.wraps(draw)
    def wrapped(*args, **kwargs):
        import matplotlib.pyplot as plt

        from .forest import FONT_PT

        with plt.rc_context({"font.size": FONT_PT, "axes.titlesize": FONT_PT, "axes.labelsize": FONT_PT,
                             "legend.fontsize": FONT_PT - 1, "xtick.labelsize": FONT_PT - 1,
                             "ytick.labelsize": FONT_PT - 1}):
            return draw(*args, **kwargs)
    return wrapped


@_legible
def h_against_accuracy(regimes: pd.DataFrame, testbed: Mapping[str, Any] | None = None):
    """One panel per paper dataset: the gate's H against its detector's accuracy by the closed form (a band between
    the two zero-shot assumptions, one colour per |D_forget|) and the paper's ADU H as the dashed line to beat.
    ``testbed`` adds a last panel: ``curves`` (:func:`testbed_curves`), ``points`` (the gate runs: n_forget, a,
    h observed), ``adu_h`` ({|D_forget|: our ADU's mean H}) and ``name``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from .forest import BOOK_WIDTH_IN

    names = list(dict.fromkeys(regimes["name"]))
    panels = len(names) + (1 if testbed else 0)
    cols = min(2, panels)
    rows = -(-panels // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(BOOK_WIDTH_IN, 2.9 * rows + 1.0), squeeze=False, sharey=True,
                             layout="constrained")
    axes = grid.reshape(1, -1)[:, :panels]
    for extra in grid.reshape(-1)[panels:]:
        extra.set_visible(False)
    long = curves(regimes)
    sizes = sorted(set(regimes["n_forget"]) | set((testbed or {}).get("adu_h", {})))
    palette = dict(zip(sizes, sns.color_palette("deep"), strict=False))
    for ax, name in zip(axes[0], names, strict=False):
        part = long[long["dataset"] == name]
        for k, g in part.groupby("n_forget"):
            hi = g[g["assumption"] == "high"].set_index("a")["h"]
            lo = g[g["assumption"] == "low"].set_index("a")["h"]
            ax.fill_between(hi.index, lo.reindex(hi.index), hi, color=palette[k], alpha=0.35, linewidth=0,
                            label=f"gate (closed form), |D_forget| = {k}")
            target = regimes.loc[(regimes["name"] == name) & (regimes["n_forget"] == k), "adu_h"].iloc[0]
            ax.axhline(target, color=palette[k], linestyle="--", linewidth=1, label=f"ADU, |D_forget| = {k}")
        ax.set_title(f"{name} (paper's ADU)")
    if testbed:
        ax = axes[0, -1]
        for k, g in testbed["curves"].groupby("n_forget"):
            ax.plot(g["a"], g["h"], color=palette[k], linewidth=1.2)
            if k in testbed.get("adu_h", {}):
                ax.axhline(testbed["adu_h"][k], color=palette[k], linestyle="--", linewidth=1)
        pts = testbed.get("points")
        if pts is not None and len(pts):
            ax.scatter(pts["a"], pts["h"], s=9, c=[palette.get(k, "black") for k in pts["n_forget"]],
                       edgecolors="black", linewidths=0.3, zorder=3, label="gate runs (observed)")
        ax.set_title(f"{testbed.get('name', 'testbed')} (our ADU)")
    for ax in axes[0]:
        ax.set_xlabel("detector accuracy a (%)")
        ax.set_xlim(0, 100)
        ax.grid(True, color="0.92")
    for ax in grid[:, 0]:
        ax.set_ylabel("H (%)")
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    return fig


@_legible
def observed_against_closed_form(check: pd.DataFrame, by: str = "detector"):
    """Each gate run's observed H against the closed form's, one colour per ``by`` (the detector: zero-shot, probe,
    degraded), with the identity line: how well the closed form predicts the runs."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(5.0, 4.2), layout="constrained")
    if len(check):
        sns.scatterplot(data=check, x="h_closed_form", y="h_observed", hue=by if by in check else None, s=14,
                        ax=ax)
        lo = float(min(check["h_closed_form"].min(), check["h_observed"].min())) - 2
        hi = float(max(check["h_closed_form"].max(), check["h_observed"].max())) + 2
        ax.plot([lo, hi], [lo, hi], color="0.4", linewidth=0.8, linestyle="--")
        if ax.get_legend() is not None:
            ax.legend(title=None, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no gate runs yet", ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xlabel("H by the closed form (%)")
    ax.set_ylabel("H observed (%)")
    ax.grid(True, color="0.92")
    return fig
