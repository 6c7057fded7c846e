"""Grids that outgrow one GPU: independent runs dispatched on an existing engine, not a home-made scheduler.

Every job is one call of :func:`adu_core.train.run_experiment` (or, with ``group_size > 1``, one group of compatible
runs trained in one pass by :func:`adu_core.multirun.run_grid`). Runs are independent through the results store: a
run whose ``run.json`` exists is skipped (not even submitted), an interrupted run resumes from its epoch checkpoint,
so a grid is finished by submitting it again.

Backends (optional packages, not core dependencies; ``pip install 'adu-core[cluster]'`` installs both):

* ``submitit`` — SLURM job arrays on a cluster; ``executor="local"`` runs the jobs as local processes (one GPU
  each), ``executor="debug"`` in this process (for tests and debugging).
* ``ray`` — tasks on a Ray cluster (``ray.init(address="auto")``) or on this machine (a local Ray instance),
  each asking for ``gpus_per_job`` GPUs.
* ``inline`` — one after another in this process (no engine; what ``adu run`` does in a loop).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BACKENDS = ("submitit", "ray", "inline")


class BackendMissing(ImportError):
    """The chosen engine is not installed; the message names the pip command."""


def _import(backend: str):
    try:
        if backend == "submitit":
            import submitit

            return submitit
        import ray

        return ray
    except ImportError:
        raise BackendMissing(
            f"the {backend!r} dispatch backend needs the {backend} package, which is not installed: "
            f"pip install {backend}   (or: pip install 'adu-core[cluster]' for submitit and ray)") from None


def default_run_dirs(cfgs: Sequence[Any], root: str | os.PathLike | None = None) -> list[Path]:
    """Where `adu run` would write each run: ``<results>/<tier>/<dataset>/<method>/forget-.../seed...``."""
    from .paths import results_dir
    from .train import run_folder

    return [run_folder(Path(root) / c.tier if root is not None else results_dir(c.tier), c) for c in cfgs]


def run_job(cfg_dicts: Sequence[dict], run_dirs: Sequence[str], progress: bool = False) -> list[dict[str, Any]]:
    """One job: the given runs (one run, or a group trained in one pass). Top-level so every engine can pickle it."""
    from .config import RunConfig
    from .multirun import run_grid

    cfgs = [RunConfig.from_dict(d) for d in cfg_dicts]
    return run_grid(cfgs, list(run_dirs), max_runs=len(cfgs), progress=progress)


def plan_jobs(cfgs: Sequence[Any], run_dirs: Sequence[Path], group_size: int = 1,
              force: bool = False) -> list[list[int]]:
    """Indices of the runs each job executes; finished runs (run.json present) are left out unless ``force``."""
    from .multirun import plan_groups

    todo = [i for i, d in enumerate(run_dirs) if force or not (Path(d) / "run.json").exists()]
    if group_size <= 1:
        return [[i] for i in todo]
    return [[todo[j] for j in g] for g in plan_groups([cfgs[i] for i in todo], group_size)]


def dispatch(cfgs: Sequence[Any], run_dirs: Sequence[str | os.PathLike] | None = None, *,
             backend: str = "submitit", executor: str | None = None, folder: str | os.PathLike = "dispatch_logs",
             group_size: int = 1, gpus_per_job: float = 1, force: bool = False, wait: bool = True,
             parameters: dict[str, Any] | None = None, ray_init: dict[str, Any] | None = None) -> list[Any]:
    """Run every config of ``cfgs`` as independent jobs on ``backend``.

    Args:
        run_dirs: one output folder per config (default: where `adu run` puts it).
        executor: submitit only: None/"auto" (SLURM if available, else local), "slurm", "local" or "debug".
        folder: submitit's folder for job logs and pickles.
        group_size: runs per job trained in one pass (compatible runs only; see :mod:`adu_core.multirun`).
        gpus_per_job: GPUs each job asks for (submitit ``gpus_per_node``, Ray ``num_gpus``).
        force: rerun finished runs (their run.json and checkpoint are removed first).
        wait: wait and return the run results in config order; else return the engine's job handles.
        parameters: extra submitit ``update_parameters`` (e.g. ``timeout_min``, ``slurm_partition``).
        ray_init: keyword arguments of ``ray.init`` when Ray is not initialised yet (e.g. ``address="auto"``).
    """
    from .train import resolve_config

    if backend not in BACKENDS:
        raise ValueError(f"unknown dispatch backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    cfgs = [resolve_config(c) for c in cfgs]
    dirs = [Path(d) for d in run_dirs] if run_dirs is not None else default_run_dirs(cfgs)
    if len(dirs) != len(cfgs):
        raise ValueError("one run folder per config")
    if force:
        for d in dirs:
            (d / "run.json").unlink(missing_ok=True)
            (d / "checkpoint.pt").unlink(missing_ok=True)
    jobs = plan_jobs(cfgs, dirs, group_size, force=False)
    args = [([cfgs[i].to_dict() for i in job], [str(dirs[i]) for i in job]) for job in jobs]
    if backend == "inline":
        handles: list[Any] = [run_job(c, d) for c, d in args]
        outputs = handles
    elif backend == "submitit":
        submitit = _import("submitit")
        cluster = None if executor in (None, "auto") else executor
        ex = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        params = {"timeout_min": 24 * 60, "gpus_per_node": int(gpus_per_job), "tasks_per_node": 1, "nodes": 1}
        ex.update_parameters(**{**params, **(parameters or {})})
        handles = ex.map_array(run_job, [c for c, _ in args], [d for _, d in args]) if args else []
        if not wait:
            return handles
        outputs = [h.result() for h in handles]
    else:
        ray = _import("ray")
        if not ray.is_initialized():
            ray.init(**(ray_init or {}))
        remote = ray.remote(num_gpus=gpus_per_job)(run_job)
        handles = [remote.remote(c, d) for c, d in args]
        if not wait:
            return handles
        outputs = ray.get(handles)
    by_index: dict[int, dict] = {}
    for job, results in zip(jobs, outputs, strict=True):
        by_index.update(zip(job, results, strict=True))
    return [by_index[i] if i in by_index else json.loads((dirs[i] / "run.json").read_text())
            for i in range(len(cfgs))]
