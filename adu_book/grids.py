"""Grids of runs that change one thing at a time: the sensitivity sweeps, the shots, the labelled fractions.

Every sweep changes one configuration field while the others keep the tier's defaults, so the point at the default
value of every sweep is one and the same run (and the same run as Table 1's ADU row): it is planned once per
forget set and seed and trained once::

    points = grids.chosen_points("gamma,lam", {"gamma": "0,1,10,30,100", "lam": "0,10"}, pg.session_cfg())
    status = pg.run(grids.sweep_plan(pg, grids.all_points(points), sets))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from adu_core.backbones import looks_like_path, model_config
from adu_core.config import RunConfig
from adu_core.paths import resolve_path

from .names import METHOD_NAMES
from .plans import PlannedRun, Variant, parse_list
from .tables import ours_table

__all__ = ["LABELLERS", "PLACEMENTS", "SWEEPS", "SweepPoint", "all_points", "backbone_layers", "chosen_points",
           "defaults", "depth_grid", "grid_table", "orders", "pseudo_label_plan", "require_adu", "shots_plan",
           "shots_table", "split_reference", "sweep_plan", "sweep_points", "sweep_table"]

# Sweeps of the sensitivity page: RunConfig field (InstaPG's placement: `instapg`/`instapg_layers`) -> axis label.
SWEEPS: dict[str, str] = {
    "gamma": "γ (weight of DDL's domain CE)",
    "lam": "λ (weight of DDL's MMD²)",
    "lam_pre": "λ, DDL on the class token before the projection",
    "prompt_depth": "prompt depth (first layers prompted)",
    "n_ctx": "prompt tokens per layer",
    "mmd_kernel": "MMD kernel",
    "instapg": "InstaPG placement",
    "epochs": "training epochs",
}
# InstaPG placements among the prompted layers 0..depth-1 ("default" is RunConfig's: every prompted layer after
# the first, whose prompts pass the encoder's ln_pre instead).
PLACEMENTS = ("none", "first", "middle", "default", "all")
LABELLERS = ("kmeans", "zeroshot")


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: the axis label, its position, the config overrides (empty at the default)."""

    sweep: str
    value: str
    position: int
    overrides: tuple[tuple[str, Any], ...]
    default: bool
    x: float | None = None  # the numeric value, when the swept field is numeric

    def variant(self, method: str = "adu") -> Variant:
        return Variant(f"{self.sweep}={self.value}", self.value, method, self.overrides)


# --- the points of a sweep ------------------------------------------------------------------------------------------
def backbone_layers(cfg: RunConfig) -> int:
    """Transformer layers of ``cfg``'s image encoder: from a self-describing checkpoint when the file exists here,
    else from the named open_clip architecture (no weights are loaded)."""
    if cfg.pretrained and looks_like_path(cfg.pretrained) and resolve_path(cfg.pretrained).is_file():
        try:
            payload = torch.load(resolve_path(cfg.pretrained), map_location="cpu", weights_only=True, mmap=True)
            layers = (payload.get("model_cfg") or {}).get("vision_cfg", {}).get("layers") \
                if isinstance(payload, dict) else None
            if layers:
                return int(layers)
        except Exception:  # noqa: BLE001 - an unreadable file: fall back to the architecture's config
            pass
    return int(model_config(cfg.backbone)["vision_cfg"]["layers"])


def depth_grid(n_layers: int, default: int, points: int = 4) -> list[int]:
    """``points`` prompt depths spread from 1 to ``n_layers`` (rounded), plus the default depth.

    The testbed's 6-layer encoder with its default depth 4 gives [1, 3, 4, 6]; ViT-B/16 (12 layers, depth 9)
    gives [1, 5, 8, 9, 12].
    """
    if n_layers < 1 or points < 1:
        raise ValueError(f"need n_layers >= 1 and points >= 1, got {n_layers}, {points}")
    spread = {int(round(float(x))) for x in np.linspace(1, n_layers, points)} if points > 1 else {n_layers}
    return sorted(spread | ({int(default)} if 1 <= default <= n_layers else set()))


def _placement(name: str, depth: int) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """(axis label, overrides) of an InstaPG placement for a prompt depth."""
    last = depth - 1
    if name == "none":
        return "none", (("instapg", False),)
    if name == "first":
        return "first (0)", (("instapg_layers", (0,)),)
    if name == "middle":
        return f"middle ({depth // 2})", (("instapg_layers", (depth // 2,)),)
    if name == "default":
        return ("after the first " + (f"(1–{last})" if last > 1 else f"({last})" if last == 1 else "(none)")), ()
    if name == "all":
        return f"all (0–{last})" if last > 0 else "all (0)", (("instapg_layers", tuple(range(depth))),)
    raise ValueError(f"unknown InstaPG placement {name!r}; choose among {', '.join(PLACEMENTS)}")


def _sweep_number(sweep: str, item: Any, kind: type[int] | type[float]) -> Any:
    try:
        return kind(item)
    except ValueError:
        what = "numbers" if kind is float else "whole numbers"
        raise ValueError(f"the {sweep} sweep takes {what}, got {item!r}") from None


def sweep_points(sweep: str, values: Any, cfg: RunConfig, depth_points: int = 4) -> list[SweepPoint]:
    """The points of one sweep around ``cfg`` (the page's default configuration).

    ``values``: a list or ``"a,b,c"``; ``None`` means the default grid (prompt depth: :func:`depth_grid` over the
    backbone's layers; epochs: ½, 1, 2 and 4 times ``cfg.epochs``; the others have no default here). A value equal
    to ``cfg``'s own gives no override, so it is the shared default run.
    """
    if sweep not in SWEEPS:
        raise ValueError(f"unknown sweep {sweep!r}; choose among {', '.join(SWEEPS)}")
    if values is None:
        if sweep == "prompt_depth":
            items: list[Any] = depth_grid(backbone_layers(cfg), cfg.prompt_depth, depth_points)
        elif sweep == "epochs":  # half, the default, twice and four times the default schedule
            items = sorted({max(1, cfg.epochs // 2), cfg.epochs, 2 * cfg.epochs, 4 * cfg.epochs})
        else:
            raise ValueError(f"the {sweep} sweep needs its values")
    else:
        items = [values] if isinstance(values, int | float) and not isinstance(values, bool) else parse_list(values)
    points: list[SweepPoint] = []
    for i, item in enumerate(items):
        if sweep in ("gamma", "lam"):
            v = _sweep_number(sweep, item, float)
            label = f"{v:g}"
            default = math.isclose(v, getattr(cfg, sweep))
            # A zero weight is the term switched off: Table 3's run of that row (same training), not a new one.
            off = {"gamma": "ddl_ce", "lam": "ddl_mmd"}[sweep]
            over = () if default else ((off, False),) if v == 0 else ((sweep, v),)
            x = v
        elif sweep == "lam_pre":  # the λ sweep again, with DDL reading the other feature: no point is the default
            v = _sweep_number("λ", item, float)
            label, default, x = f"{v:g}", False, v
            over = (("ddl_feature", "pre_projection"),) + (() if math.isclose(v, cfg.lam) else (("lam", v),))
        elif sweep in ("prompt_depth", "n_ctx", "epochs"):
            v = _sweep_number(sweep, item, int)
            if v < 1:
                raise ValueError(f"{sweep} values start at 1, got {v}")
            label, default, x = str(v), v == getattr(cfg, sweep), float(v)
            over = () if default else ((sweep, v),)
        elif sweep == "mmd_kernel":
            label, default, x = str(item), str(item) == cfg.mmd_kernel, None
            over = () if default else (("mmd_kernel", str(item)),)
        else:
            label, over = _placement(str(item), cfg.prompt_depth)
            default, x = not over, None
        points.append(SweepPoint(sweep, label, i, over, default, x))
    labels = [p.value for p in points]
    if len(set(labels)) != len(labels):
        raise ValueError(f"repeated values in the {sweep} sweep: {labels}")
    return points


def require_adu(methods: Any) -> None:
    """The sweeps vary ADU's own options: any other ``methods`` parameter is an error."""
    if parse_list(methods) != ["adu"]:
        raise ValueError(f"the sweeps vary ADU's own options (γ, λ, DDL's kernel, InstaPG): methods must be "
                         f"'adu', not {methods!r}")


def chosen_points(spec: Any, grids: Mapping[str, Any], cfg: RunConfig) -> dict[str, list[SweepPoint]]:
    """Sweep -> its points, for the sweeps ``spec`` names ("all": every sweep of :data:`SWEEPS`, in that order),
    each over its grid in ``grids``."""
    chosen = list(SWEEPS) if str(spec).strip() == "all" else parse_list(spec)
    return {s: sweep_points(s, grids[s], cfg) for s in chosen}


def all_points(points: Mapping[str, Sequence[SweepPoint]]) -> list[SweepPoint]:
    """Every point of every sweep, sweep by sweep (the order of the plan and of the tables)."""
    return [p for pts in points.values() for p in pts]


def orders(points: Mapping[str, Sequence[SweepPoint]]) -> dict[str, list[str]]:
    """Sweep -> its values, in grid order (the x axis of its plot row)."""
    return {s: [p.value for p in pts] for s, pts in points.items()}


def defaults(points: Mapping[str, Sequence[SweepPoint]]) -> dict[str, str | None]:
    """Sweep -> the value that is the tier's default (None when the grid does not hold it)."""
    return {s: next((p.value for p in pts if p.default), None) for s, pts in points.items()}


def grid_table(points: Mapping[str, Sequence[SweepPoint]]) -> pd.DataFrame:
    """Each sweep's values, its default (shaded in the plots) and its number of points."""
    return pd.DataFrame([{
        "sweep": SWEEPS[s],
        "values": ", ".join(p.value for p in pts),
        "default": next((p.value for p in pts if p.default), "(not in the grid)"),
        "points": len(pts),
    } for s, pts in points.items()]).set_index("sweep")


def sweep_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Ours per (sweep, setting), the sweeps named by their axis labels."""
    table = ours_table(runs, ["sweep", "setting"])
    if len(table):
        table.index = table.index.set_levels(
            [table.index.levels[0].map(lambda s: SWEEPS.get(s, s)), table.index.levels[1]])
    return table


# --- plans -----------------------------------------------------------------------------------------------------------
def sweep_plan(page, points: Sequence[SweepPoint], forget: Sequence[Sequence[str]], method: str = "adu",
               **labels: Any) -> list[PlannedRun]:
    """One planned run per (point, forget set, seed), labelled ``sweep``, ``setting`` (the point's label),
    ``position``, ``default`` and ``x`` (its numeric value, or None)."""
    plan: list[PlannedRun] = []
    for p in points:
        plan += page.plan([p.variant(method)], forget, sweep=p.sweep, setting=p.value, position=p.position,
                          default=p.default, x=p.x, **labels)
    return plan


def shots_plan(page, methods: Sequence[str], shots: Sequence[int], forget: Sequence[Sequence[str]],
               default_shots: int) -> list[PlannedRun]:
    """Trained methods at every number of shots; ``zeroshot`` (which trains nothing) once, at the default, labelled
    ``reference``."""
    plan: list[PlannedRun] = []
    for m in methods:
        name = METHOD_NAMES.get(m, m)
        if m == "zeroshot":
            plan += page.plan([Variant(m, name, m)], forget, shots=default_shots, reference=True)
            continue
        for k in shots:
            over = () if int(k) == int(default_shots) else (("shots", int(k)),)
            plan += page.plan([Variant(f"{m}@{k}", name, m, over)], forget, shots=int(k), reference=False)
    return plan


def split_reference(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trained runs, reference runs) of a :func:`shots_plan`."""
    is_ref = runs["reference"].astype(bool) if len(runs) else pd.Series(dtype=bool)
    return runs[~is_ref], runs[is_ref]


def shots_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Ours per (method, shots); the reference (zero-shot CLIP) has no shots: it trains nothing."""
    if len(runs):
        runs = runs.assign(shots=runs["shots"].where(~runs["reference"].astype(bool), "–"))
    return ours_table(runs, ["variant", "shots"], key_names={"variant": "method"})


def pseudo_label_plan(page, methods: Sequence[str], labellers: Sequence[str], fractions: Sequence[float],
                      forget: Sequence[Sequence[str]]) -> tuple[list[PlannedRun], list[str]]:
    """Runs per (method, labeller, labelled fraction): (plan, notes on skipped points).

    A fraction of 1 keeps every domain label, so no labeller is used: it is the method's default run, shown at
    fraction 1 for every labeller. ``kmeans`` needs at least one labelled image per domain, so fraction 0 is
    skipped for it (noted).
    """
    plan: list[PlannedRun] = []
    notes: list[str] = []
    for labeller in labellers:
        if labeller not in LABELLERS:
            raise ValueError(f"unknown labeller {labeller!r}; choose among {', '.join(LABELLERS)}")
    for m in methods:
        name = METHOD_NAMES.get(m, m)
        for labeller in labellers:
            for f in fractions:
                f = float(f)
                if not 0.0 <= f <= 1.0:
                    raise ValueError(f"labelled fractions lie within [0, 1], got {f}")
                if labeller == "kmeans" and f == 0.0:
                    note = "kmeans needs at least one labelled image per domain, so it has no point at fraction 0"
                    if note not in notes:
                        notes.append(note)
                    continue
                over = () if f >= 1.0 else (("domain_label_fraction", f), ("pseudo_labeler", labeller))
                plan += page.plan([Variant(f"{m}/{labeller}@{f:g}", name, m, over)], forget, labeller=labeller,
                                  fraction=f)
    return plan, notes
