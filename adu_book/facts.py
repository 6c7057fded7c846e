"""Numbers and phrases for a page's conclusion: computed from the runs and glued (myst_nb), never typed by hand.

A page's prose says ``{glue:text}`main_h_gain```; :func:`glue_all` gives every such name its value. The helpers
here turn a summary table or a curve into the short phrases those sentences need ("higher at every |D_forget|").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["describe_curve", "describe_levels", "fmt", "gap", "glue_all", "mean_of", "peak_and_last",
           "plateau", "signed", "verdict", "with_unit"]


def glue_all(facts: Mapping[str, str]) -> None:
    """Glue every (name, text) for the page's prose, without displaying it where it is computed."""
    from myst_nb import glue

    for key, value in facts.items():
        glue(key, value, display=False)


def fmt(x: Any, digits: int = 2) -> str:
    """A number for a table or a glued sentence: fixed digits, "n/a" for missing."""
    try:
        if x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x):
            return "n/a"
    except (TypeError, ValueError):
        pass
    return f"{float(x):.{digits}f}"


def signed(x: float, digits: int = 2) -> str:
    """A difference for prose or a table: always a sign, and a true minus (U+2212), not a hyphen."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:+.{digits}f}".replace("-", "\u2212")


# --- differences in a summary table -----------------------------------------------------------------------------------
def gap(summary: pd.DataFrame, metric: str, a: str, b: str, column: str = "mean", key: str = "variant",
        by: str | None = "n_forget") -> dict[Any, float]:
    """``a − b`` of ``column`` ("mean": ours, "paper") for ``metric``, per value of ``by`` where both exist."""
    part = summary[summary["metric"] == metric]
    groups = part.groupby(by, sort=True) if by else [(None, part)]
    out: dict[Any, float] = {}
    for k, g in groups:
        va = g.loc[g[key] == a, column]
        vb = g.loc[g[key] == b, column]
        if len(va) and len(vb) and pd.notna(va.iloc[0]) and pd.notna(vb.iloc[0]):
            out[k] = float(va.iloc[0]) - float(vb.iloc[0])
    return out


def mean_of(values: Mapping[Any, float]) -> float:
    return float(np.mean(list(values.values()))) if values else math.nan


def verdict(gaps: Mapping[Any, float], expected: Iterable[Any], higher: str = "higher", lower: str = "lower",
            what: str = "|D_forget|") -> str:
    """A phrase for a glued sentence: where ``gaps`` (a − b per group) is positive, over the groups ``expected``."""
    expected = list(expected)
    have = [k for k in expected if k in gaps]
    if not have:
        return "not measurable yet (no runs)"
    pos = [k for k in have if gaps[k] > 0]
    neg = [k for k in have if gaps[k] <= 0]
    where = ", ".join(str(k) for k in have)
    tail = "" if len(have) == len(expected) else f" (only {what} = {where} have runs)"
    if not neg:
        return f"{higher} at every {what} ({where}){tail}"
    if not pos:
        return f"{lower} at every {what} ({where}){tail}"
    return (f"{higher} at {what} = {', '.join(str(k) for k in pos)} but {lower} at "
            f"{', '.join(str(k) for k in neg)}{tail}")


# --- curves over a grid -----------------------------------------------------------------------------------------------
def _points(labels: Sequence[Any], values: Sequence[float]) -> list[tuple[Any, float]]:
    """(label, value) pairs of a curve, without its missing (NaN) values."""
    return [(lab, float(v)) for lab, v in zip(labels, values, strict=True) if not pd.isna(v)]


def plateau(labels: Sequence[Any], values: Sequence[float], tol: float = 2.0) -> Any | None:
    """The first grid value from which every later value stays within ``tol`` of each other (at least two
    points), or None when the curve does not settle within the grid. Missing values (NaN) are skipped."""
    pairs = _points(labels, values)
    for i in range(len(pairs) - 1):
        rest = [v for _, v in pairs[i:]]
        if max(rest) - min(rest) <= tol:
            return pairs[i][0]
    return None


def with_unit(label: Any, unit: str) -> str:
    """``1`` + ``" shots"`` -> ``"1 shot"``; other labels keep the plural unit."""
    return f"{label}{unit[:-1] if str(label) == '1' and unit.endswith('s') else unit}"


def describe_curve(labels: Sequence[Any], values: Sequence[float], what: str = "", unit: str = "") -> str:
    """A phrase for a glued sentence: where the curve starts and ends, and its best point."""
    pairs = _points(labels, values)
    if not pairs:
        return "not measurable yet (no runs)"
    if len(pairs) == 1:
        return f"{pairs[0][1]:.2f} at {what}{with_unit(pairs[0][0], unit)} (one point only)"
    (l0, v0), (l1, v1) = pairs[0], pairs[-1]
    best = max(pairs, key=lambda p: p[1])
    text = f"{v0:.2f} at {what}{with_unit(l0, unit)} and {v1:.2f} at {what}{with_unit(l1, unit)} ({signed(v1 - v0)})"
    if best[0] not in (l0, l1):
        text += f", highest ({best[1]:.2f}) at {what}{with_unit(best[0], unit)}"
    return text


def peak_and_last(labels: Sequence[Any], values: Sequence[float]) -> tuple[Any, Any] | None:
    """The labels of a curve's highest point and of its last point, or None with fewer than two points."""
    pairs = _points(labels, values)
    return (max(pairs, key=lambda p: p[1])[0], pairs[-1][0]) if len(pairs) >= 2 else None


def describe_levels(labels: Sequence[Any], values: Sequence[float], what: str = "") -> str:
    """A phrase for unordered levels (kernels, placements): the highest and the lowest and their values."""
    pairs = _points(labels, values)
    if not pairs:
        return "not measurable yet (no runs)"
    if len(pairs) == 1:
        return f"{pairs[0][1]:.2f} with {what}{pairs[0][0]} (one point only)"
    best = max(pairs, key=lambda p: p[1])
    worst = min(pairs, key=lambda p: p[1])
    return f"highest with {what}{best[0]} ({best[1]:.2f}), lowest with {what}{worst[0]} ({worst[1]:.2f})"

