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

from adu_core.backbones import RANDOM, file_sha256, looks_like_path
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
        f"  data layout / split: {_counted(_layout_text(unique))}",
        f"  device:              {_counted(unique['device'])}",
    ]
    n_random = int(unique["random_weights"].fillna(False).astype(bool).sum()) if "random_weights" in unique else 0
    if n_random:
        lines.append(f"  RANDOM WEIGHTS:      {n_random} of these runs (a plumbing check: their numbers say nothing "
                     "about the method)")
    return "\n".join(lines)


def _layout_text(runs: pd.DataFrame) -> list[str]:
    if "data_layout" not in runs:
        return ["not recorded"] * len(runs)
    return [("not recorded" if not isinstance(lay, str) else f"{lay} / {proto}")
            for lay, proto in zip(runs["data_layout"], runs["data_protocol"], strict=True)]


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
    if cfg.pretrained is None or cfg.pretrained == RANDOM:
        return f"{cfg.backbone}, random initialisation (no weights: a plumbing check, not a measurement)"
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
        info = ds.protocol_info()
        split = f"; split {info['id']}" + (" (the authors')" if info["authors"] else "")
        layout = f", layout {ds.layout_note()}" if ds.layout != "standard" else ""
        return f"{cfg.dataset}{where}{layout}{split}, manifest sha256 {ds.manifest_sha256()}"
    except Exception:  # the page still renders the runs that exist; say why new runs cannot start
        # (the error itself names this machine's folders: it is for whoever trains, not for a reader)
        from adu_book.names import dataset_name

        return (f"{dataset_name(cfg.dataset)} is not on this machine, so this execution shows the committed runs and "
                f"figure artifacts and trains nothing new. To train or measure, fetch it with "
                f"`adu data download {cfg.dataset}` or point ADU_DATA_ROOT at a folder that holds `{cfg.dataset}/`.")


def _page_hours(per_page: pd.DataFrame, name: str) -> float:
    row = per_page[per_page["page"] == name]
    return float(row["hours"].iloc[0]) if len(row) else 0.0


def unused_runs(plan: Any, results_root: Path) -> pd.DataFrame:
    """The run.json files under ``results_root`` that no page of the book plans (``runs.csv`` lists every run.json,
    the pages only theirs): one row per kind of run (method and the options that set it apart), with their count and
    folders, so that the difference between the two counts is named rather than left to guess."""
    import json

    planned = {str((Path(p) / "run.json").resolve()) for p in plan.unique()["path"]}
    rows = []
    for path in sorted(Path(results_root).rglob("run.json")):
        if str(path.resolve()) in planned:
            continue
        try:
            run = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        cfg, over = run.get("config", {}), run.get("overrides") or {}
        rows.append({"method": cfg.get("method"), "options": ", ".join(f"{k} = {v}" for k, v in sorted(over.items()))
                     or "the tier's defaults", "seed": cfg.get("seed"), "folder": str(path.parent.relative_to(
                         Path(results_root).parent))})
    frame = pd.DataFrame(rows, columns=["method", "options", "seed", "folder"])
    if not len(frame):
        return pd.DataFrame(columns=["method", "options", "seeds", "runs"])
    return (frame.groupby(["method", "options"], sort=True)
            .agg(seeds=("seed", lambda s: ", ".join(map(str, sorted(set(s))))), runs=("folder", "size"))
            .reset_index())


def recompute_cost(dataset: str, tier: str, card_path: str | Path, results_root: str | Path | None = None,
                   workers: int = 2) -> dict[str, Any]:
    """What it takes to recompute the whole testbed book from nothing on ``workers`` cores, glued on the intro page:
    every page's runs (:mod:`adu_book.book_plan`), timed by their own ``run.json`` where they exist and estimated
    from the committed runs of the same method, epochs and shots where they do not, one thread each, ``workers``
    side by side; plus the testbed CLIP's pretraining (its card). ``cost_table``: the same per page;
    ``cost_grids``: lighter grids for a reader with less time, and what each gives up; ``cost_unused``: the
    committed runs no page shows (:func:`unused_runs`)."""
    import json

    from adu_core.paths import results_dir

    from .book_plan import book_plan, estimate_cost, grid_costs, page_title
    from .paper import figure_forget_sets

    plan = book_plan(dataset, tier, Path(results_root) if results_root else None)
    cost = estimate_cost(plan, workers)
    card = json.loads(Path(card_path).read_text()) if Path(card_path).is_file() else {}
    pretrain_h = float((card.get("timings") or {}).get("total_s") or 0.0) / 3600
    figure_sets = ["+".join(s) for s in figure_forget_sets(get_dataset(dataset).domains)]
    grids = grid_costs(plan, figure_sets, workers, pretrain_h)
    runs_h = cost["wall_hours"]
    total = runs_h + pretrain_h
    table = cost["per_page"].round({"hours": 1}).assign(page=lambda d: d["page"].map(page_title)).rename(columns={
        "planned": "runs planned", "exist": "runs committed", "hours": "CPU-hours (measured + estimated)"})
    root = Path(results_root) if results_root else results_dir(tier)
    unused = unused_runs(plan, root)
    n_files = sum(1 for _ in root.rglob("run.json")) if root.is_dir() else 0
    return {"cost_runs_planned": str(cost["runs_planned"]), "cost_runs_exist": str(cost["runs_exist"]),
            "cost_meas_planned": str(cost["measurements_planned"]),
            "cost_meas_exist": str(cost["measurements_exist"]),
            "cost_hours_done": f"{cost['hours_done']:.1f}", "cost_hours_missing": f"{cost['hours_missing']:.1f}",
            "cost_workers": str(workers), "cost_runs_wall": f"{runs_h:.1f}",
            "cost_pretrain_min": f"{pretrain_h * 60:.0f}", "cost_total_wall": f"{total:.1f}",
            "cost_t1_wall": f"{_page_hours(cost['per_page'], 'main_results') / max(1, workers):.1f}",
            "cost_cpu": (card.get("hardware") or {}).get("cpu", "?"),
            "cost_files": str(n_files), "cost_unused_n": str(int(unused["runs"].sum()) if len(unused) else 0),
            "cost_table": table, "cost_unused": unused,
            "cost_grids": grids.reset_index(drop=True).round({"hours": 1}).rename(columns={"hours": "hours from nothing"})}
