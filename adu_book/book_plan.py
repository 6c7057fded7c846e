"""The whole book's runs at one tier: every page's plan at its own default parameters, in one place.

What it is for: the intro page states what recomputing the complete book costs (the runs that exist are timed by
their own ``run.json``; a missing run is estimated from the committed runs of the same method, epochs and shots),
and ``python -m adu_book.book_plan --run`` completes every missing run in one command (one-domain forget sets
first, then seed by seed, so an interrupted grid is balanced; ``ADU_RUN_SHARD=k/n`` splits it between processes).

Each page's default parameters are read from its notebook's ``parameters`` cell, so this module cannot drift from
the pages' defaults; the few lines that turn parameters into a plan are the pages' own calls (``grids``, ``plans``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from adu_core.train import run_folder

from . import book_file, grids, plans
from .names import EXTRA_METHODS, PAPER_METHODS
from .plans import PlannedRun

__all__ = ["PAGE_PLANS", "BookPlan", "book_plan", "estimate_cost", "notebook_parameters", "page_plan", "page_title"]


@cache
def notebook_parameters(name: str) -> dict[str, Any]:
    """The default parameters of ``book/<name>.ipynb``: its papermill ``parameters`` cell, evaluated."""
    nb = json.loads(book_file(f"{name}.ipynb").read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            values: dict[str, Any] = {}
            exec("".join(cell["source"]), {}, values)  # noqa: S102 - the project's own notebook: assignments only
            return values
    raise ValueError(f"book/{name}.ipynb has no cell tagged 'parameters'")


def page_title(name: str) -> str:
    """The page's title: the first heading of ``book/<name>.ipynb``."""
    nb = json.loads(book_file(f"{name}.ipynb").read_text())
    first = "".join(nb["cells"][0]["source"]).splitlines()[0] if nb["cells"] else ""
    return first.lstrip("# ").strip() or name


def _page(name: str, dataset: str, tier: str, results_root: Path | None, sweep: bool = False):
    from . import page

    p = notebook_parameters(name)
    return page(name, dataset, tier, seeds=p.get("seeds"), epochs=p.get("epochs"), results_root=results_root,
                max_new_runs=0, sweep=sweep), p


def _main_results(pg, p) -> list[PlannedRun]:
    run_methods, _ = pg.methods(p["methods"], [*EXTRA_METHODS, *PAPER_METHODS])
    return pg.plan(plans.method_variants(run_methods), pg.forget(p["forget_sets"], p["n_forget"]))


def _ablation(pg, p) -> list[PlannedRun]:
    rows2, rows3 = plans.table_rows(p["methods"], plans.TABLE2_VARIANTS, plans.TABLE3_VARIANTS)
    sizes3 = plans.parse_ints(p["table3_n_forget"])
    sets3 = [s for s in pg.forget(p["forget_sets"], p["table3_n_forget"]) if len(s) in sizes3]
    sizes2 = plans.tier_grid("ablation", "n_forget", p["n_forget"], pg.tier)
    return pg.plan(rows2, pg.forget(p["forget_sets"], sizes2), table=2) + pg.plan(rows3, sets3, table=3)


def _sensitivity(pg, p) -> list[PlannedRun]:
    grid_values = {"gamma": p["gammas"], "lam": p["lams"], "lam_pre": p["lams"], "prompt_depth": p["depths"],
                   "n_ctx": p["n_ctxs"], "mmd_kernel": p["kernels"], "instapg": p["placements"],
                   "epochs": p["epoch_grid"]}
    points = grids.chosen_points(p["sweeps"], grid_values, pg.session_cfg("adu"))
    return grids.sweep_plan(pg, grids.all_points(points), pg.figure_forget(p["forget_sets"], p["n_forget"]))


def _shots(pg, p) -> list[PlannedRun]:
    run_methods, _ = pg.methods(p["methods"], ["zeroshot", "baseline", "adu"])
    ks = sorted(set(plans.parse_ints(p["shots_grid"])))
    return grids.shots_plan(pg, run_methods, ks, pg.figure_forget(p["forget_sets"], p["n_forget"]),
                            pg.session_cfg().shots)


def _pseudo_labels(pg, p) -> list[PlannedRun]:
    run_methods, _ = pg.methods(p["methods"], ["adu"])
    fracs = sorted({float(f) for f in plans.parse_list(p["fractions"])})
    plan, _ = grids.pseudo_label_plan(pg, run_methods, plans.parse_list(p["labellers"]), fracs,
                                      pg.figure_forget(p["forget_sets"], p["n_forget"]))
    return plan


def _authors_code(pg, p) -> list[PlannedRun]:
    from . import recipes

    parts = recipes.page_plan(pg, p["recipes_shown"], p["forget_sets"], p["n_forget"], p["switch_n_forget"],
                              p["switches"], p["table3_n_forget"])
    return [run for part in parts.values() for run in part]


def _methods_on(default: Sequence[str], forget: Callable) -> Callable:
    def build(pg, p) -> list[PlannedRun]:
        run_methods, _ = pg.methods(p["methods"], default)
        return pg.plan(plans.method_variants(run_methods), forget(pg, p))
    return build


# page -> (its plan from (Page, default parameters), whether it takes the tier's sweep seeds). The depth page's runs
# are Table 1's; what it adds is one depth measurement (recovery.json) per run.
PAGE_PLANS: dict[str, tuple[Callable, bool]] = {
    "main_results": (_main_results, False),
    "authors_code": (_authors_code, False),
    "ablation": (_ablation, False),
    "sensitivity": (_sensitivity, True),
    "shots": (_shots, True),
    "pseudo_labels": (_pseudo_labels, True),
    "depth": (_methods_on(["adu"], lambda pg, p: pg.forget(p["forget_sets"], p["n_forget"])), False),
    "domain_accuracy": (_methods_on(["zeroshot", "baseline", "adu"],
                                    lambda pg, p: pg.forget_like_art(p["forget_sets"], p["n_forget"])), False),
    "tsne": (_methods_on(["adu"], lambda pg, p: pg.figure_forget(p["forget_sets"], p["n_forget"], n=1)), True),
    "attention": (_methods_on(["adu"], lambda pg, p: pg.figure_forget(p["forget_sets"], p["n_forget"], n=1)), True),
}
MEASURED_PAGES = ("depth",)  # pages that measure each of their runs once more (recovery.json)


def page_plan(name: str, dataset: str, tier: str, results_root: Path | None = None) -> list[PlannedRun]:
    """The runs ``book/<name>.ipynb`` needs at its default parameters, each labelled with its folder (``_path``)."""
    if name not in PAGE_PLANS:
        raise ValueError(f"no plan for page {name!r}; pages with runs: {', '.join(PAGE_PLANS)}")
    build, sweep = PAGE_PLANS[name]
    pg, p = _page(name, dataset, tier, results_root, sweep)
    plan = build(pg, p)
    for run in plan:
        run.labels["_path"] = run_folder(pg.results_root, run.cfg)
        run.labels["page"] = name
    return plan


@dataclass
class BookPlan:
    """Every page's plan; ``runs``: one row per (page, run folder), whether it exists, and its (or an estimated)
    time; ``measurements``: the depth page's recovery.json, likewise."""

    runs: pd.DataFrame
    measurements: pd.DataFrame
    planned: list[tuple[str, PlannedRun]] = field(default_factory=list)  # (page, run), as the pages planned them

    def unique(self) -> pd.DataFrame:
        """One row per run folder (a run several pages share counts once)."""
        return self.runs.drop_duplicates("path")


def book_plan(dataset: str, tier: str, results_root: Path | None = None,
              pages: Sequence[str] | None = None) -> BookPlan:
    rows, measured, planned = [], [], []
    for name in pages or PAGE_PLANS:
        for run in page_plan(name, dataset, tier, results_root):
            planned.append((name, run))
            cfg, path = run.cfg, run.labels["_path"]
            row = {"page": name, "path": str(path), "method": cfg.method, "epochs": cfg.epochs, "shots": cfg.shots,
                   "seed": cfg.seed, "forget": "+".join(cfg.forget), "exists": (path / "run.json").is_file(),
                   "seconds": _run_seconds(path / "run.json")}
            rows.append(row)
            if name in MEASURED_PAGES:
                rec = path / "recovery.json"
                measured.append({**row, "exists": rec.is_file(), "seconds": _recovery_seconds(rec)})
    cols = ["page", "path", "method", "epochs", "shots", "seed", "forget", "exists", "seconds"]
    return BookPlan(pd.DataFrame(rows, columns=cols), pd.DataFrame(measured, columns=cols), planned)


SWEEP_PAGES = tuple(name for name, (_, sweep) in PAGE_PLANS.items() if sweep)
TABLE_PAGES = ("main_results", "ablation", "domain_accuracy")  # the paper's Tables 1-4, whose claims need 3 seeds


def _grids(figure_sets: Sequence[str]) -> dict[str, tuple[str, Callable[[pd.DataFrame], pd.Series]]]:
    """The grids the cost table compares, the book's own first: key -> (description, which rows of a plan it keeps).
    The intro page names them by key."""
    sets = f"{len(figure_sets)} forget sets ({', '.join(figure_sets)})"

    def seed_one(f: pd.DataFrame) -> pd.Series:
        return f["seed"] == 1

    def light(f: pd.DataFrame) -> pd.Series:  # one seed, and the sweeps only on the figure sets
        return seed_one(f) & (~f["page"].isin(SWEEP_PAGES) | f["forget"].isin(figure_sets))

    return {
        "book": ("the book's grid: 3 seeds for Tables 1-4 and the depth page; sweeps 1 seed on every one-domain set",
                 lambda f: f["seed"] > 0),
        "tables_3_seeds": (f"3 seeds for Tables 1-4 only; the depth page 1 seed; sweeps 1 seed on {sets}",
                           lambda f: f["page"].isin(TABLE_PAGES) | light(f)),
        "seed1": ("one seed everywhere", seed_one),
        "light": (f"one seed everywhere; sweeps 1 seed on {sets}", light),
    }


def grid_costs(bp: BookPlan, figure_sets: Sequence[str], workers: int = 2, extra_hours: float = 0.0) -> pd.DataFrame:
    """Runs and wall-clock hours (plus ``extra_hours``, e.g. pretraining) of the book's grid and of lighter ones,
    each estimated the same way (:func:`estimate_cost`): what the time goal would cost in seeds and forget sets.
    Indexed by the grids' keys (:func:`_grids`)."""
    rows = {}
    for key, (name, keep) in _grids(figure_sets).items():
        part = BookPlan(bp.runs[keep(bp.runs)], bp.measurements[keep(bp.measurements)])
        cost = estimate_cost(part, workers)
        rows[key] = {"grid": name, "runs": cost["runs_planned"], "hours": cost["wall_hours"] + extra_hours}
    return pd.DataFrame.from_dict(rows, orient="index")


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def _run_seconds(path: Path) -> float | None:
    run = _read(path)
    return float(run["timings"]["total_s"]) if run and (run.get("timings") or {}).get("total_s") else None


def _recovery_seconds(path: Path) -> float | None:
    rec = _read(path)
    return float(rec["provenance"]["seconds"]) if rec and (rec.get("provenance") or {}).get("seconds") else None


def _estimate(frame: pd.DataFrame) -> pd.Series:
    """Each row's seconds: its own when timed, else the mean of the timed rows of the same (method, epochs, shots),
    else of the same method scaled by epochs × shots (the steps it trains), else of every timed row."""
    timed = frame.dropna(subset=["seconds"])
    if not len(timed) or not len(frame):
        return pd.Series([None] * len(frame), index=frame.index, dtype="float64")
    exact = timed.groupby(["method", "epochs", "shots"])["seconds"].mean()
    per_step = (timed["seconds"] / (timed["epochs"] * timed["shots"])).groupby(timed["method"]).mean()
    overall = timed["seconds"].mean()

    def one(row) -> float:
        if pd.notna(row["seconds"]):
            return float(row["seconds"])
        key = (row["method"], row["epochs"], row["shots"])
        if key in exact.index:
            return float(exact[key])
        if row["method"] in per_step.index:
            return float(per_step[row["method"]] * row["epochs"] * row["shots"])
        return float(overall)

    return frame.apply(one, axis=1)


def estimate_cost(bp: BookPlan, workers: int = 2) -> dict[str, Any]:
    """Runs and measurements of the whole book: how many exist, their measured hours, the estimated hours of the
    missing ones, and the wall-clock hours with ``workers`` runs side by side (one thread each); per page too."""
    runs, meas = bp.unique().copy(), bp.measurements.drop_duplicates("path").copy()
    runs["est"] = _estimate(runs)
    meas["est"] = _estimate(meas)
    both = pd.concat([runs.assign(kind="run"), meas.assign(kind="measurement")], ignore_index=True)
    pages = bp.runs.drop_duplicates(["page", "path"]).merge(runs[["path", "est"]], on="path")
    per_page = (pages.groupby("page", sort=False)
                .agg(planned=("path", "size"), exist=("exists", "sum"),
                     hours=("est", lambda s: s.sum() / 3600)).reset_index())
    extra = meas.groupby("page")["est"].sum() / 3600
    per_page["hours"] += per_page["page"].map(extra).fillna(0.0)  # the depth page's own measurements
    exists = both["exists"].astype(bool)
    done, todo = both.loc[exists, "est"].sum() / 3600, both.loc[~exists, "est"].sum() / 3600
    return {"runs_planned": len(runs), "runs_exist": int(runs["exists"].sum()),
            "measurements_planned": len(meas), "measurements_exist": int(meas["exists"].sum()),
            "hours_done": done, "hours_missing": todo, "wall_hours": (done + todo) / max(1, workers),
            "workers": workers, "per_page": per_page}


def _main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m adu_book.book_plan", description=(
        "Every run the book needs at a tier: what exists, what is missing, what it costs; --run completes it "
        "(set ADU_RUN_SHARD=k/n to split the work between n processes, OMP_NUM_THREADS=1 each on a small CPU)."))
    ap.add_argument("--dataset", default="pacs")
    ap.add_argument("--tier", default="testbed")
    ap.add_argument("--results-root", type=Path, default=None)
    ap.add_argument("--pages", default=None, help="comma-separated pages (default: every page with runs)")
    ap.add_argument("--seeds", default=None, help="only runs of these seeds, e.g. 2,3")
    ap.add_argument("--run", action="store_true", help="train the missing runs, then the depth measurements")
    args = ap.parse_args(argv)
    pages = plans.parse_list(args.pages) or None
    try:
        bp = book_plan(args.dataset, args.tier, args.results_root, pages)
    except ValueError as err:  # an unknown page, dataset or tier: the cause in one line
        ap.exit(2, f"error: {err}\n")
    cost = estimate_cost(bp)
    print(cost["per_page"].to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    print(f"runs: {cost['runs_exist']} of {cost['runs_planned']} exist; depth measurements: "
          f"{cost['measurements_exist']} of {cost['measurements_planned']}; CPU-hours done "
          f"{cost['hours_done']:.1f}, missing ≈ {cost['hours_missing']:.1f}; whole book ≈ "
          f"{cost['wall_hours']:.1f} h with {cost['workers']} runs side by side")
    if args.run:
        _complete(args, bp)
    return 0


def _complete(args, bp: BookPlan) -> None:
    from adu_core.paths import results_dir
    from adu_core.recovery import measure_run

    from .runs import ensure_runs, shard_slice

    seeds = set(plans.parse_ints(args.seeds)) if args.seeds else None
    planned: dict[str, PlannedRun] = {}
    measured: list[Path] = []
    for name, run in bp.planned:
        if seeds is None or run.cfg.seed in seeds:
            planned.setdefault(str(run.labels["_path"]), run)
            if name in MEASURED_PAGES and run.labels["_path"] not in measured:
                measured.append(run.labels["_path"])
    # one-domain forget sets first (every page reads them; most read only them), then seed by seed, so that an
    # interrupted grid is balanced; the costly methods early, so that the two processes end together
    order = sorted(planned.values(), key=lambda r: (len(r.cfg.forget), r.cfg.seed, r.cfg.method not in
                                                    ("adu", "baseline", "clipfit"), r.cfg.method))
    ensure_runs(order, args.results_root or results_dir(args.tier), max_new_runs=-1)
    # each process measures the runs of its own share (those it trained), so none waits for another's runs
    mine = {str(r.labels["_path"]) for r in order[shard_slice()]}
    steps = plans.parse_ints(notebook_parameters("depth")["relearn_steps"])
    for folder in tqdm([f for f in measured if str(f) in mine], desc="depth", unit="run"):
        if (folder / "run.json").is_file():
            measure_run(folder, steps=steps)


if __name__ == "__main__":
    sys.exit(_main())
