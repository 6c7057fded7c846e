"""Mem, For and H as the paper defines them, and their aggregation over runs.

Mem = top-1 % on kept-domain test images (pooled); For = 100 − top-1 % on forgotten-domain test images (pooled);
H = 2·Mem·For/(Mem+For) computed per run. Tables average Mem, For and H over runs (H is *not* recomputed from the
averaged Mem and For: the paper's reported H values are consistent only with the per-run average).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np


def h_score(mem: float, for_: float) -> float:
    """Harmonic mean of Mem and For (both in %); 0 when both are 0."""
    if mem < 0 or for_ < 0:
        raise ValueError(f"Mem and For are percentages >= 0, got {mem}, {for_}")
    return 0.0 if mem + for_ == 0 else 2.0 * mem * for_ / (mem + for_)


def accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    """Top-1 accuracy in %; NaN for an empty selection."""
    pred, target = np.asarray(pred), np.asarray(target)
    return float("nan") if target.size == 0 else float((pred == target).mean() * 100.0)


def unlearning_metrics(pred: Sequence[int], labels: Sequence[int], domains: Sequence[str],
                       forget: Iterable[str]) -> dict:
    """Mem/For/H plus per-domain accuracy from class predictions on the test set."""
    pred, labels, domains = np.asarray(pred), np.asarray(labels), np.asarray(domains)
    forget = set(forget)
    if not forget:
        raise ValueError("at least one domain must be forgotten")
    is_forget = np.isin(domains, sorted(forget))
    if is_forget.all() or not is_forget.any():
        raise ValueError("the test set must hold both kept and forgotten domains")
    mem = accuracy(pred[~is_forget], labels[~is_forget])
    for_ = 100.0 - accuracy(pred[is_forget], labels[is_forget])
    per_domain = {str(d): accuracy(pred[domains == d], labels[domains == d]) for d in sorted(set(domains.tolist()))}
    return {"mem": mem, "for": for_, "h": h_score(mem, for_), "per_domain_acc": per_domain,
            "n_test": {str(d): int((domains == d).sum()) for d in per_domain}}


def aggregate(runs: Iterable[Mapping[str, float]], keys: Sequence[str] = ("h", "mem", "for")) -> dict[str, float]:
    """Mean, sample std and n of each metric over runs (std is NaN for n = 1)."""
    rows = list(runs)
    out: dict[str, float] = {"n": float(len(rows))}
    for k in keys:
        vals = np.array([float(r[k]) for r in rows], dtype=float)
        out[k] = float(vals.mean()) if vals.size else math.nan
        out[f"{k}_std"] = float(vals.std(ddof=1)) if vals.size > 1 else math.nan
    return out


def paired_difference(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """Mean of the paired differences a_i − b_i with a Student-t confidence interval (``level``) and n.

    Pairs share everything but the method (forget set, seed), so the seed and forget-set spread cancels. ``lo``/``hi``
    are NaN for n < 2; ``excludes_zero`` says whether the interval lies entirely on one side of 0.
    """
    from scipy import stats

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.ndim != 1 or len(a) != len(b):
        raise ValueError("paired_difference needs two sequences of equal length")
    n = int(d.size)
    mean = float(d.mean()) if n else math.nan
    if n < 2:
        return {"mean": mean, "lo": math.nan, "hi": math.nan, "n": n, "sd": math.nan, "excludes_zero": False}
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    lo, hi = mean - half, mean + half
    return {"mean": mean, "lo": lo, "hi": hi, "n": n, "sd": sd, "excludes_zero": bool(lo > 0 or hi < 0)}


def _t_interval(mean: float, se: float, df: int, level: float) -> tuple[float, float]:
    from scipy import stats

    if df < 1 or not math.isfinite(se):
        return math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return mean - half, mean + half


def _by_stratum(a: Sequence[float], b: Sequence[float], strata: Sequence[object],
                who: str) -> tuple[np.ndarray, dict[object, list[float]]]:
    """The differences a − b and, per stratum (in first-seen order), its differences."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    keys = list(strata)
    if d.ndim != 1 or len(a) != len(b) or len(keys) != len(d):
        raise ValueError(f"{who} needs a, b and strata of equal length")
    groups: dict[object, list[float]] = {}
    for k, v in zip(keys, d.tolist(), strict=True):
        groups.setdefault(k, []).append(v)
    return d, groups


def stratified_difference(a: Sequence[float], b: Sequence[float], strata: Sequence[object],
                          level: float = 0.95) -> dict[str, float]:
    """Paired differences a_i − b_i grouped in fixed strata (forget sets), replicated within them (seeds).

    The estimate is the mean over strata of each stratum's mean difference (every forget set weighs the same, as in
    the paper's tables). Its standard error comes from the spread *within* strata only, pooled:
    s² = Σ_s Σ_r (d_sr − d̄_s)² / Σ_s (n_s − 1), se = sqrt(s² · Σ_s 1/n_s) / S, with Σ_s (n_s − 1) degrees of
    freedom; so the interval answers "would it hold with other seeds on these forget sets", not "on other forget
    sets" (:func:`over_strata_difference`). Undefined (NaN bounds, ``df`` 0) when no stratum has two replicates.
    """
    d, groups = _by_stratum(a, b, strata, "stratified_difference")
    n_strata = len(groups)
    means = np.array([np.mean(v) for v in groups.values()]) if groups else np.array([])
    mean = float(means.mean()) if n_strata else math.nan
    df = sum(len(v) - 1 for v in groups.values())
    ss = sum(float(((np.asarray(v) - np.mean(v)) ** 2).sum()) for v in groups.values())
    if df >= 1:
        sd = math.sqrt(ss / df)
        se = sd * math.sqrt(sum(1.0 / len(v) for v in groups.values())) / n_strata
    else:
        sd = se = math.nan
    lo, hi = _t_interval(mean, se, df, level)
    return {"mean": mean, "lo": lo, "hi": hi, "n": int(d.size), "n_strata": n_strata, "df": int(df), "sd": sd,
            "se": se, "excludes_zero": bool(lo > 0 or hi < 0)}


def over_strata_difference(a: Sequence[float], b: Sequence[float], strata: Sequence[object],
                           level: float = 0.95) -> dict[str, float]:
    """Paired differences averaged within each stratum (the seed mean per forget set), then a Student-t interval
    over the strata (S − 1 degrees of freedom): "would it hold for another forget set". ``n`` is the number of
    strata; ``n_pairs`` the differences behind them."""
    d, groups = _by_stratum(a, b, strata, "over_strata_difference")
    means = [float(np.mean(v)) for v in groups.values()]
    out = paired_difference(means, [0.0] * len(means), level)
    return {**out, "n_strata": len(means), "df": max(len(means) - 1, 0), "n_pairs": int(d.size)}
