"""Numbers and phrases for a page's conclusion: computed from the runs and glued (myst_nb), never typed by hand.

A page's prose says ``{glue:text}`main_h_gain```; :func:`glue_all` gives every such name its value. The helpers
here turn a summary table or a curve into the short phrases those sentences need ("higher at every |D_forget|").
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["COMPARISON_WORDS", "compare", "comparison_problems", "describe_curve", "describe_levels", "fmt", "gap",
           "glue_all", "interval_words", "mean_of", "peak_and_last", "plateau", "signed", "verdict", "with_unit"]


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


def describe_curve(labels: Sequence[Any], values: Sequence[float], what: str = "", unit: str = "",
                   value_unit: str = "", diff_unit: str = "") -> str:
    """A phrase for a glued sentence: where the curve starts and ends, and its highest point (a description of the
    curve, not a test: the pages test named points with paired intervals). ``value_unit`` follows each value (" %"),
    ``diff_unit`` the change from start to end (" points")."""
    pairs = _points(labels, values)
    if not pairs:
        return "not measurable yet (no runs)"
    if len(pairs) == 1:
        return f"{pairs[0][1]:.2f}{value_unit} at {what}{with_unit(pairs[0][0], unit)} (one point only)"
    (l0, v0), (l1, v1) = pairs[0], pairs[-1]
    best = max(pairs, key=lambda p: p[1])
    text = (f"{v0:.2f}{value_unit} at {what}{with_unit(l0, unit)} and {v1:.2f}{value_unit} at "
            f"{what}{with_unit(l1, unit)} ({signed(v1 - v0)}{diff_unit})")
    if best[0] not in (l0, l1):
        text += f", highest ({best[1]:.2f}{value_unit}) at {what}{with_unit(best[0], unit)}"
    return text


def peak_and_last(labels: Sequence[Any], values: Sequence[float]) -> tuple[Any, Any] | None:
    """The labels of a curve's highest point and of its last point, or None with fewer than two points."""
    pairs = _points(labels, values)
    return (max(pairs, key=lambda p: p[1])[0], pairs[-1][0]) if len(pairs) >= 2 else None


def describe_levels(labels: Sequence[Any], values: Sequence[float], what: str = "", value_unit: str = "") -> str:
    """A phrase for unordered levels (kernels, placements): the highest and the lowest and their values."""
    pairs = _points(labels, values)
    if not pairs:
        return "not measurable yet (no runs)"
    if len(pairs) == 1:
        return f"{pairs[0][1]:.2f}{value_unit} with {what}{pairs[0][0]} (one point only)"
    best = max(pairs, key=lambda p: p[1])
    worst = min(pairs, key=lambda p: p[1])
    return (f"highest with {what}{best[0]} ({best[1]:.2f}{value_unit}), lowest with {what}{worst[0]} "
            f"({worst[1]:.2f}{value_unit})")



# --- comparisons in words: both sides, the unit, and the interval ---------------------------------------------------
def interval_words(e: Mapping[str, Any] | None, digits: int = 2) -> str:
    """The primary interval of a paired effect (:func:`adu_book.effects.paired`), without its mean: "95 % CI
    −0.40 to +3.65 over seeds, n = 12 in 4 forget sets" (or "over forget sets, n = 4"; or "one pair: no
    interval")."""
    if not e or not e.get("n"):
        return "no paired runs"
    basis = e.get("basis")
    part = (e.get("stratified") if basis == "stratified" else e.get("over_sets") if basis == "forget sets"
            else None) or e
    if part.get("n", 0) < 2 or math.isnan(part.get("lo", math.nan)):
        return f"n = {part.get('n', 0)}: no interval"
    ci = f"95 % CI {signed(part['lo'], digits)} to {signed(part['hi'], digits)}"
    if basis == "stratified":
        sets = part.get("n_strata", e.get("n_sets", "?"))
        return f"{ci} over seeds, n = {part['n']} in {sets} forget set{'' if sets == 1 else 's'}"
    if basis == "forget sets":
        return f"{ci} over forget sets, n = {part['n']}"
    return f"{ci}, n = {part['n']}"


def compare(e: Mapping[str, Any] | None, a: str, b: str, unit: str = "H points", higher: str = "higher",
            lower: str = "lower", digits: int = 2) -> str:
    """One comparison sentence that names both sides and the unit, with the words the 95 % interval allows:
    ``compare(e, "ADU's H", "the Baseline's")`` -> "ADU's H is higher than the Baseline's by 1.63 H points (95 % CI
    +0.40 to +2.86 over seeds, n = 12 in 4 forget sets)", or, when the interval covers 0, "ADU's H shows no
    measurable difference from the Baseline's (+1.63 H points; 95 % CI −0.40 to +3.65 …)". Never a verdict from
    the mean alone; "not measurable yet" without paired runs, "one pair, no interval" with one."""
    if not e or not e.get("n"):
        return f"{a} against {b}: not measurable yet (no paired runs)"
    mean = float(e["mean"])
    if e["n"] < 2 or math.isnan(e.get("lo", math.nan)):
        return f"{a} minus {b}: {signed(mean, digits)} {unit} from one pair (no interval)"
    ci = interval_words(e, digits)
    if e.get("excludes_zero"):
        word = higher if mean > 0 else lower
        return f"{a} is {word} than {b} by {abs(mean):.{digits}f} {unit} ({ci})"
    return f"{a} shows no measurable difference from {b} ({signed(mean, digits)} {unit}; {ci})"


# The words that make a glued phrase a comparison, and what such a phrase must then name (comparison_problems).
COMPARISON_WORDS = re.compile(r"\b(higher|lower|no measurable|measurable difference|ahead|behind|falls|rises|"
                              r"more separated|less separated)\b", re.I)
_COMPARATOR = re.compile(r"\b(than|from|against|between|versus|vs\.?|relative to|compared with|ahead of|behind)\b|"
                         r"[\w')\]]\s+(−|-|minus)\s+[\w'(\[]", re.I)
_DECIMAL = re.compile(r"[+−-]?\d+\.\d+")
_CI = re.compile(r"95\s*%\s*(CI|interval)", re.I)
_UNIT = re.compile(r"(\bpoints?\b|%|\bpp\b|\bsilhouette\b|\bentropy\b|\bshare\b|\bsteps?\b)", re.I)


def comparison_problems(text: str) -> list[str]:
    """What a glued phrase that compares lacks (empty when it is fine, or not a comparison). A phrase with a
    comparison word (:data:`COMPARISON_WORDS`: "higher", "no measurable difference", ...) must

    * name what is compared before its verdict (it does not start with the verdict: "no measurable difference:
      +1.73" leaves the reader to guess whose accuracy, against what);
    * name the comparator: "than X", "from X", "against X", "between X and Y", "ahead of X", or "A − B";
    * give the unit of any number with decimals ("points", "%"; the "95 %" of an interval does not count).
    """
    words = COMPARISON_WORDS.search(text)
    if not words:
        return []
    out = []
    if not text[:words.start()].strip(" :;,.("):
        out.append(f"starts with its verdict ({words.group(0)!r}): name what is compared first")
    if not _COMPARATOR.search(text):
        out.append("names no comparator (than / from / against / between / A − B)")
    if _DECIMAL.search(text) and not _UNIT.search(_CI.sub("", text)):
        out.append("gives a number without its unit (points, %)")
    return out
