"""What produced the numbers on a page: the runs' own provenance, and this session's code, device, weights, data."""

from __future__ import annotations

import math
import platform
import textwrap
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from adu_core.backbones import file_sha256, looks_like_path
from adu_core.config import RunConfig
from adu_core.data import get_dataset
from adu_core.paths import resolve_path
from adu_core.results import git_version, package_versions

from .runs import RunStatus, missing_weights, short_path

__all__ = ["provenance_banner", "recompute_cost", "session_banner"]


def _counted(values: Iterable[Any], width: int = 12) -> str:
    counts = Counter("none" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values)
    parts = [f"{(k[:width] + '…') if len(k) > width + 1 and all(c in '0123456789abcdef' for c in k) else k}"
             f" ({n} run{'s' if n != 1 else ''})" for k, n in counts.most_common()]
    return "; ".join(parts) if parts else "–"


def provenance_banner(results: RunStatus | pd.DataFrame) -> str:
    """Code versions, weights and data hashes and devices recorded in the shown runs' run.json files."""
    runs = results.runs if isinstance(results, RunStatus) else results
    if runs is None or not len(runs):
        return "Runs shown: none yet (no run.json of this page's plan exists)."
    code = [f"{'uncommitted' if c is None else c[:10]}{'' if d is None else (' (dirty)' if d else '')}"
            for c, d in zip(runs["commit"], runs["dirty"], strict=True)]
    unique = runs.drop_duplicates("path")
    lines = [
        f"Runs shown: {len(unique)} run.json files",
        f"  code (git commit):   {_counted(code[i] for i in np.flatnonzero(~runs.duplicated('path')))}",
        f"  adu-core / torch:    {_counted(f'{a} / {t}' for a, t in zip(unique['adu_core'], unique['torch'], strict=True))}",
        f"  weights:             {_counted(unique['weights'])}",
        f"  weights sha256:      {_counted(unique['weights_sha256'])}",
        f"  data manifest sha256: {_counted(unique['data_sha256'])}",
        f"  device:              {_counted(unique['device'])}",
    ]
    return "\n".join(lines)


def session_banner(cfg: RunConfig | None = None) -> str:
    """This session's code version, device, and the weights and data that new runs of ``cfg`` would use."""
    git = git_version()
    pk = package_versions()
    commit = git.get("commit")
    code = "no git commit" if commit is None else f"git {commit[:10]}{' (adu_core modified)' if git.get('dirty') else ''}"
    if torch.cuda.is_available():
        device = f"cuda: {torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    else:
        device = f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    lines = [f"Code: adu-core {pk.get('adu-core')}, {code}; python {pk['python']}, torch {pk.get('torch')}, "
             f"open_clip {pk.get('open_clip_torch')}",
             f"Device: {device}"]
    if cfg is not None:
        lines.append(f"Weights: {_weights_text(cfg)}")
        lines.append(f"Data: {_data_text(cfg)}")
    return "\n".join(wrap(line) for line in lines)


def wrap(line: str, width: int = 88) -> str:
    """A long line of a banner, wrapped with an indent (paths and hashes are broken, not hyphenated)."""
    return "\n".join(textwrap.wrap(line, width, subsequent_indent="    ", break_on_hyphens=False,
                                   break_long_words=True))


def _weights_text(cfg: RunConfig) -> str:
    if cfg.pretrained is None:
        return f"{cfg.backbone}, random initialisation (no weights)"
    if looks_like_path(cfg.pretrained):
        reason = missing_weights(cfg)
        if reason:
            return f"{cfg.backbone}: MISSING — {reason}; new runs of this tier cannot start here"
        path = resolve_path(cfg.pretrained)
        return f"{short_path(path)} sha256 {file_sha256(path)}"
    return f"open_clip {cfg.backbone} '{cfg.pretrained}' (downloaded at the first run; its sha256 goes in run.json)"


def _data_text(cfg: RunConfig) -> str:
    try:
        ds = get_dataset(cfg.dataset, root=cfg.data_root)
        where = f" at {ds.dir}" if getattr(ds, "on_disk", False) else " (generated in process)"
        return f"{cfg.dataset}{where}, manifest sha256 {ds.manifest_sha256()}"
    except Exception as err:  # the page still renders the runs that exist; say why new runs cannot start
        return (f"{cfg.dataset} is not on this machine, so this execution can neither train missing runs nor "
                f"compute figures from images; the committed runs and figure artifacts are shown. "
                f"({type(err).__name__}: {err})")


def _page_hours(per_page: pd.DataFrame, name: str) -> float:
    row = per_page[per_page["page"] == name]
    return float(row["hours"].iloc[0]) if len(row) else 0.0


GOAL_HOURS = 8.0  # the testbed book, recomputed from nothing on 2 cores


def recompute_cost(dataset: str, tier: str, card_path: str | Path, results_root: str | Path | None = None,
                   workers: int = 2) -> dict[str, Any]:
    """How long the whole testbed book takes to recompute from nothing on ``workers`` cores, glued on the intro page:
    every page's runs (:mod:`adu_book.book_plan`), timed by their own ``run.json`` where they exist and estimated
    from the committed runs of the same method, epochs and shots where they do not, one thread each, ``workers``
    side by side; plus the testbed CLIP's pretraining (its card). ``cost_table``: the same per page."""
    import json

    from .book_plan import book_plan, estimate_cost, grid_costs, page_title
    from .paper import figure_forget_sets

    plan = book_plan(dataset, tier, Path(results_root) if results_root else None)
    cost = estimate_cost(plan, workers)
    card = json.loads(Path(card_path).read_text()) if Path(card_path).is_file() else {}
    pretrain_h = float((card.get("timings") or {}).get("total_s") or 0.0) / 3600
    figure_sets = ["+".join(s) for s in figure_forget_sets(get_dataset(dataset).domains)]
    grids = grid_costs(plan, figure_sets, workers, pretrain_h)
    fits = grids[grids["hours"] <= GOAL_HOURS]
    runs_h = cost["wall_hours"]
    total = runs_h + pretrain_h
    table = cost["per_page"].round({"hours": 1}).assign(page=lambda d: d["page"].map(page_title)).rename(columns={
        "planned": "runs planned", "exist": "runs committed", "hours": "CPU-hours (measured + estimated)"})
    met = "met" if total <= GOAL_HOURS else ("met by the runs alone, not with pretraining" if runs_h <= GOAL_HOURS
                                             else "not met")
    return {"cost_runs_planned": str(cost["runs_planned"]), "cost_runs_exist": str(cost["runs_exist"]),
            "cost_meas_planned": str(cost["measurements_planned"]),
            "cost_meas_exist": str(cost["measurements_exist"]),
            "cost_hours_done": f"{cost['hours_done']:.1f}", "cost_hours_missing": f"{cost['hours_missing']:.1f}",
            "cost_workers": str(workers), "cost_runs_wall": f"{runs_h:.1f}",
            "cost_pretrain_min": f"{pretrain_h * 60:.0f}", "cost_total_wall": f"{total:.1f}",
            "cost_goal": f"{GOAL_HOURS:g}", "cost_goal_met": met,
            "cost_t1_wall": f"{_page_hours(cost['per_page'], 'main_results') / max(1, workers):.1f}",
            "cost_cpu": (card.get("hardware") or {}).get("cpu", "?"),
            **{f"cost_{key}_wall": f"{grids.at[key, 'hours']:.1f}" for key in grids.index},
            "cost_fits": (f"the fullest of them that fits it is: {fits['grid'].iloc[0]}" if len(fits)
                          else "none of these grids fits it"),
            "cost_tables_fit": "fits" if grids.at["tables_3_seeds", "hours"] <= GOAL_HOURS else "does not fit",
            "cost_table": table,
            "cost_grids": grids.reset_index(drop=True).round({"hours": 1}).rename(columns={"hours": "hours from nothing"})}
