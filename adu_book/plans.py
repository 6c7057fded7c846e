"""Which runs a page needs: forget sets, seeds, the rows of a table (variants), and one planned run per cell.

A planned run's config is validated and resolved exactly as ``adu run`` does, so a page finds the CLI's runs and the
CLI finds the page's.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adu_core.config import RunConfig, make_config
from adu_core.train import resolve_config

from .names import METHOD_NAMES

__all__ = ["PROBE_GATE", "SWEEP_SEEDS", "TABLE2_VARIANTS", "TABLE3_VARIANTS", "TIER_GRIDS", "TIER_SEEDS", "PlannedRun",
           "Variant", "forget_sets",
           "forget_text", "method_variants", "parse_forget_sets", "parse_ints", "parse_list", "plan_runs",
           "resolve_seeds", "rows_of", "table_rows", "select_variants", "table1_variants", "tier_grid"]

# Seeds per tier when a notebook's `seeds` parameter is None. The paper averages 3 seeds [I6]; so does the testbed
# wherever the paper makes a claim (Tables 1-4), pairing runs by (forget set, seed). Pages that sweep one setting
# (sensitivity, shots, pseudo-labels, figures) use SWEEP_SEEDS: one seed per forget set on the testbed, to fit its
# 2-core budget (each page states its grid).
TIER_SEEDS: dict[str, tuple[int, ...]] = {"paper": (1, 2, 3), "testbed": (1, 2, 3), "smoke": (1,)}
SWEEP_SEEDS: dict[str, tuple[int, ...]] = {"paper": (1, 2, 3), "testbed": (1,), "smoke": (1,)}
# A page parameter left at None takes its tier's value here. The testbed runs Table 2 on the one-domain forget sets
# only (as the paper's Table 3): at |D_forget| = 2, 3 its two extra rows would cost 60 more ADU-sized runs (about
# 3.5 hours on 2 cores) and put the whole book far past its 8-hour goal; `-p n_forget 1,2,3` runs them.
TIER_GRIDS: dict[str, dict[str, dict[str, Any]]] = {
    "ablation": {"n_forget": {"paper": "1,2,3", "testbed": "1", "smoke": "1,2,3"}},
}


# --- parameters as papermill passes them ------------------------------------------------------------------------------
def parse_list(spec: Any) -> list[str]:
    """A papermill-friendly list: a list/tuple as is, or a string split on commas (blank items dropped)."""
    if spec is None:
        return []
    if isinstance(spec, str):
        return [s.strip() for s in spec.split(",") if s.strip()]
    if isinstance(spec, Iterable):
        return [str(s) for s in spec]
    return [str(spec)]


def parse_ints(spec: Any) -> tuple[int, ...]:
    """An int, a list of ints, or ``"1,2,3"`` as a tuple of ints."""
    if isinstance(spec, bool):
        raise ValueError(f"expected integers, got {spec!r}")
    if isinstance(spec, int):
        return (spec,)
    return tuple(int(s) for s in parse_list(spec))


def tier_grid(page: str, key: str, value: Any, tier: str) -> Any:
    """A page's grid parameter: ``value`` when given, else the tier's (:data:`TIER_GRIDS`)."""
    if value is not None:
        return value
    try:
        return TIER_GRIDS[page][key][tier]
    except KeyError:
        raise ValueError(f"{page} has no default {key} for tier {tier!r}; give -p {key} ...") from None


def resolve_seeds(seeds: Any, tier: str, sweep: bool = False) -> tuple[int, ...]:
    """``None`` -> the tier's seeds (its sweep seeds for a sweep page); an int N -> the first N seeds (1..N); a list
    or ``"1,2,3"`` -> those seeds."""
    if seeds is None:
        return (SWEEP_SEEDS if sweep else TIER_SEEDS).get(tier, (1,))
    if isinstance(seeds, bool):
        raise ValueError(f"seeds must be None, a count or a list, not {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds as a count must be >= 1, got {seeds}")
        return tuple(range(1, seeds + 1))
    return tuple(int(s) for s in parse_list(seeds))


# --- forget sets ------------------------------------------------------------------------------------------------------
def forget_sets(domains: Sequence[str], sizes: Iterable[int] = (1, 2, 3)) -> list[tuple[str, ...]]:
    """Every forget set of each size, in domain order; sizes that would forget every domain are skipped.

    ``forget_sets(("a", "b", "c", "d"))`` gives the paper's 4 + 6 + 4 = 14 configurations; a two-domain dataset
    gives only its 2 single-domain sets.
    """
    domains = list(domains)
    if len(set(domains)) != len(domains):
        raise ValueError(f"repeated domains in {domains}")
    out: list[tuple[str, ...]] = []
    for k in sizes:
        if int(k) < 1:
            raise ValueError(f"forget-set sizes start at 1, got {k}")
        if int(k) < len(domains):
            out += [tuple(c) for c in itertools.combinations(domains, int(k))]
    return out


def parse_forget_sets(spec: Any, domains: Sequence[str], sizes: Iterable[int] = (1, 2, 3),
                      canonical=None) -> list[tuple[str, ...]]:
    """``"all"`` -> :func:`forget_sets`; ``"sketch;photo+sketch"`` (sets split by ``;``, domains by ``+``) or a list
    of lists -> those sets. ``canonical`` (e.g. ``Dataset.check_domains``) maps user spellings to domain ids."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return forget_sets(domains, sizes)
    groups: list[Any] = [g for g in spec.split(";") if g.strip()] if isinstance(spec, str) else list(spec)
    out: list[tuple[str, ...]] = []
    for g in groups:
        names = [n.strip() for n in g.replace(",", "+").split("+") if n.strip()] if isinstance(g, str) else list(g)
        if canonical is not None:
            names = list(canonical(names))
        unknown = set(names) - set(domains)
        if unknown:
            raise ValueError(f"unknown domains {sorted(unknown)}; valid: {', '.join(domains)}")
        if not names or len(set(names)) >= len(domains):
            raise ValueError(f"a forget set needs 1 to {len(domains) - 1} domains, got {names}")
        out.append(tuple(d for d in domains if d in set(names)))
    return out


def forget_text(sets: Iterable[Sequence[str]]) -> str:
    """Forget sets as a page writes them: ``"photo; art_painting+sketch"``."""
    return "; ".join("+".join(s) for s in sets)


# --- the rows of a table ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """One row of a table: a method plus config switches, and how the paper's CSV marks the same row."""

    key: str
    label: str
    method: str
    overrides: tuple[tuple[str, Any], ...] = ()
    switches: tuple[tuple[str, bool], ...] = ()

    @property
    def override_dict(self) -> dict[str, Any]:
        return dict(self.overrides)


def method_variants(methods: Iterable[str]) -> list[Variant]:
    """One variant per method, labelled by its display name (Table 1, Table 4)."""
    return [Variant(m, METHOD_NAMES.get(m, m), m) for m in methods]


# The gate with a detector fitted on the few-shot pool's domain labels (never the test set): the data every trained
# method gets, so the gate's standing does not rest on a zero-shot detector whose prompts the backbone was
# pretrained on (the testbed's captions are "a {style} of a {class}.", its template).
PROBE_GATE = Variant("gate/probe", f"{METHOD_NAMES['gate']} (probe)", "gate",
                     (("method_options", {"detector": "probe"}),))


def table1_variants(methods: Iterable[str]) -> list[Variant]:
    """Table 1's rows: one per method (:func:`method_variants`), and with the gate its data-matched twin
    (:data:`PROBE_GATE`) right after it."""
    rows: list[Variant] = []
    for v in method_variants(methods):
        rows.append(v)
        if v.method == "gate":
            rows.append(PROBE_GATE)
    return rows


def select_variants(variants: Sequence[Variant], spec: Any) -> list[Variant]:
    """``"all"``/None -> all; else the variants whose keys are listed (comma-separated or a list)."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return list(variants)
    keys = parse_list(spec)
    known = {v.key for v in variants}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise ValueError(f"unknown rows {unknown}; valid: {', '.join(sorted(known))}")
    return [v for v in variants if v.key in keys]


def rows_of(variants: Sequence[Variant], spec: Any) -> list[Variant]:
    """A page with several tables: ``"all"`` -> every variant; else those of ``variants`` whose keys ``spec`` lists
    (keys of the page's other tables are left to them)."""
    if spec == "all":
        return select_variants(variants, spec)
    known = {v.key for v in variants}
    return select_variants(variants, [k for k in parse_list(spec) if k in known])


def table_rows(spec: Any, *tables: Sequence[Variant]) -> list[list[Variant]]:
    """The rows ``spec`` asks of each of a page's ``tables`` (:func:`rows_of`); a key no table has is an error."""
    if not (spec is None or (isinstance(spec, str) and spec.strip().lower() == "all")):
        known = {v.key for t in tables for v in t}
        unknown = [k for k in parse_list(spec) if k not in known]
        if unknown:
            raise ValueError(f"unknown rows {unknown}; valid: {', '.join(sorted(known))}")
    return [rows_of(t, spec) for t in tables]


# Table 2: DDL x InstaPG. Its (-, -) row is the Baseline and its (DDL, InstaPG) row is ADU, exactly as in Table 1,
# so those two reuse the Table 1 runs.
TABLE2_VARIANTS: tuple[Variant, ...] = (
    Variant("baseline", "neither (= Baseline)", "baseline", (), (("ddl", False), ("instapg", False))),
    Variant("instapg_only", "InstaPG only", "adu", (("ddl", False),), (("ddl", False), ("instapg", True))),
    Variant("ddl_only", "DDL only", "adu", (("instapg", False),), (("ddl", True), ("instapg", False))),
    Variant("adu", "DDL + InstaPG (= ADU)", "adu", (), (("ddl", True), ("instapg", True))),
)
# Table 3: CE x MMD inside DDL, InstaPG on. The (no CE, no MMD) row is the "InstaPG only" run of Table 2.
TABLE3_VARIANTS: tuple[Variant, ...] = (
    Variant("instapg_only", "neither (= InstaPG only)", "adu", (("ddl", False),), (("ddl_ce", False), ("ddl_mmd", False))),
    Variant("mmd_only", "MMD only", "adu", (("ddl_ce", False),), (("ddl_ce", False), ("ddl_mmd", True))),
    Variant("ce_only", "CE only", "adu", (("ddl_mmd", False),), (("ddl_ce", True), ("ddl_mmd", False))),
    Variant("adu", "CE + MMD (= ADU)", "adu", (), (("ddl_ce", True), ("ddl_mmd", True))),
)


# --- one planned run per cell -----------------------------------------------------------------------------------------
@dataclass
class PlannedRun:
    """A run a table needs: its resolved config and its labels in the table (variant, table, ...)."""

    cfg: RunConfig
    labels: dict[str, Any] = field(default_factory=dict)


def plan_runs(dataset: str, tier: str, variants: Sequence[Variant], forget: Sequence[Sequence[str]],
              seeds: Sequence[int], labels: Mapping[str, Any] | None = None, **overrides: Any) -> list[PlannedRun]:
    """Every (seed, forget set, variant) run, seeds outermost so that a partial budget fills every cell first.

    ``overrides`` are RunConfig fields given by the notebook's parameters (``None`` = the tier's default); they
    apply to every run, under each variant's own switches. Configs are validated and resolved (domain names,
    switches the method implies) exactly as ``adu run`` does, so the run folders are the CLI's.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    plan: list[PlannedRun] = []
    for seed in seeds:
        for fs in forget:
            for v in variants:
                cfg = make_config(dataset, tier, **{**given, **v.override_dict, "method": v.method,
                                                     "forget": tuple(fs), "seed": int(seed)})
                plan.append(PlannedRun(resolve_config(cfg), {**(labels or {}), "variant": v.label}))
    return plan
