"""Grids that outgrow one GPU: independent runs dispatched on an existing engine, not a home-made scheduler.

Every job is one call of :func:`adu_core.train.run_experiment` (or, with ``group_size > 1``, one group of compatible
runs trained in one pass by :func:`adu_core.multirun.run_grid`). Runs are independent through the results store: a
run whose ``run.json`` exists is skipped (not even submitted), an interrupted run resumes from its epoch checkpoint,
so a grid is finished by submitting it again.

Backends (optional packages, not core dependencies; ``pip install 'adu-core[cluster]'`` installs both):

* ``submitit`` — SLURM job arrays on a cluster; ``executor="local"`` runs the jobs as local processes (one GPU
  each), ``executor="debug"`` in this process (for tests and debugging).
* ``ray`` — tasks on a Ray cluster (``ray.init(address="auto")``) or on this machine (a local Ray instance),
  each asking for ``gpus_per_job`` GPUs. Ray retries a task whose worker died (up to 3 times); the retry resumes
  the run from its checkpoint.
* ``inline`` — one after another in this process (no engine; what ``adu run`` does in a loop).

Failures stay with their runs: a job that fails (a bad config among good ones, a killed worker) does not stop the
others. :func:`dispatch` waits for every job, then raises :class:`GridFailed`, whose message has one line per failed
run (its run folder and the cause's last line) and which carries the finished runs' results. Several engines or
grids may work on one results folder at once: every run is trained under its folder's lock
(:func:`adu_core.train.run_lock`), so a run is trained once and the others wait for its ``run.json`` (written
atomically, last, after the trained state).
"""

from __future__ import annotations

import json
import os
import re
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BACKENDS = ("submitit", "ray", "inline")


class BackendMissing(ImportError):
    """The chosen engine is not installed; the message names the pip command."""


@dataclass(frozen=True)
class RunFailure:
    """One run that did not finish: its folder, the cause's last line, and the engine's full report."""

    run_dir: Path
    cause: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.run_dir}: {self.cause}"


class GridFailed(RuntimeError):
    """Some runs of a grid failed; every other run finished.

    ``failures``: one :class:`RunFailure` per failed run, in config order. ``results``: the run.json contents in
    config order, ``None`` for the failed runs.
    """

    def __init__(self, failures: Sequence[RunFailure], results: Sequence[dict[str, Any] | None]) -> None:
        self.failures = list(failures)
        self.results = list(results)
        head = (f"{len(self.failures)} of {len(self.results)} runs failed (the other runs finished; "
                "submitting the grid again retries only the failed ones):")
        super().__init__("\n".join([head, *(f"  {f}" for f in self.failures)]))


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
    """Where `adu run` (and a book page) would write each run: ``<results>/<tier>/<dataset>/<method>/forget-.../seed...``.

    Each config is resolved first, as `adu run` does, so that the switches a method implies (the Baseline's
    ``instapg=False``) are not taken for overrides. A config that does not resolve is named without the overrides'
    hash (it only labels its failure).
    """
    from .paths import results_dir
    from .train import resolve_config, run_folder

    dirs = []
    for c in cfgs:
        base = Path(root) / c.tier if root is not None else results_dir(c.tier)
        try:
            dirs.append(Path(run_folder(base, resolve_config(c))))
        except Exception:  # noqa: BLE001 - reported by dispatch as this run's failure
            dirs.append(base / c.dataset / c.method / f"forget-{'+'.join(sorted(c.forget))}" / f"seed{c.seed}")
    return dirs


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
        gpus_per_job: GPUs each job asks for (submitit ``gpus_per_node``, Ray ``num_gpus``); 0 on CPU machines.
        force: rerun finished runs (their run.json and checkpoint are removed first).
        wait: wait and return the run results in config order; else return the engine's job handles.
        parameters: extra submitit ``update_parameters`` (e.g. ``timeout_min``, ``slurm_partition``).
        ray_init: keyword arguments of ``ray.init`` when Ray is not initialised yet (e.g. ``address="auto"``).

    Raises:
        GridFailed: after every job has ended, when some runs failed (a config that does not resolve, a job that
            raised or was killed); one line per failed run, the others' results in ``.results``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown dispatch backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    cfgs, failed = _resolve_each(cfgs)
    dirs = [Path(d) for d in run_dirs] if run_dirs is not None else default_run_dirs(cfgs)
    if len(dirs) != len(cfgs):
        raise ValueError("one run folder per config")
    failures: dict[int, RunFailure] = {i: RunFailure(dirs[i], *why) for i, why in failed.items()}
    ok = [i for i in range(len(cfgs)) if i not in failures]
    if force:
        for i in ok:
            (dirs[i] / "run.json").unlink(missing_ok=True)
            (dirs[i] / "checkpoint.pt").unlink(missing_ok=True)
    jobs = [[ok[j] for j in job] for job in plan_jobs([cfgs[i] for i in ok], [dirs[i] for i in ok], group_size)]
    args = [([cfgs[i].to_dict() for i in job], [str(dirs[i]) for i in job]) for job in jobs]
    outcomes: list[list[dict] | tuple[str, str]]  # per job: its runs' results, or (cause, detail)
    if backend == "inline":
        outcomes = []
        for c, d in args:
            try:
                outcomes.append(run_job(c, d))
            except Exception as err:  # noqa: BLE001 - a failing run fails alone; the grid reports it at the end
                outcomes.append(_cause(err, traceback.format_exc()))
    elif backend == "submitit":
        submitit = _import("submitit")
        cluster = None if executor in (None, "auto") else executor
        ex = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        params = {"timeout_min": 24 * 60, "gpus_per_node": int(gpus_per_job), "tasks_per_node": 1, "nodes": 1}
        ex.update_parameters(**{**params, **(parameters or {})})
        handles = ex.map_array(run_job, [c for c, _ in args], [d for _, d in args]) if args else []
        if not wait:
            return handles
        outcomes = [_submitit_outcome(h) for h in handles]
    else:
        ray = _import("ray")
        if not ray.is_initialized():
            ray.init(**(ray_init or {}))
        have = ray.cluster_resources().get("GPU", 0)
        if args and gpus_per_job and have < gpus_per_job:  # Ray would queue the tasks for ever, waiting for GPUs
            raise ValueError(f"each job asks for {gpus_per_job:g} GPU(s) but the Ray cluster has {have:g}: use "
                             "gpus_per_job=0 (--gpus-per-job 0) to train on CPUs, or start the GPU nodes first")
        remote = ray.remote(num_gpus=gpus_per_job)(run_job)
        handles = [remote.remote(c, d) for c, d in args]
        if not wait:
            return handles
        outcomes = [_ray_outcome(ray, h) for h in handles]
    by_index: dict[int, dict] = {}
    for job, outcome in zip(jobs, outcomes, strict=True):
        if isinstance(outcome, tuple):
            failures.update((i, RunFailure(dirs[i], *outcome)) for i in job)
        else:
            by_index.update(zip(job, outcome, strict=True))
    results = [by_index.get(i) if i in by_index or i in failures else json.loads((dirs[i] / "run.json").read_text())
               for i in range(len(cfgs))]
    if failures:
        raise GridFailed([failures[i] for i in sorted(failures)], results)
    return results


def _resolve_each(cfgs: Sequence[Any]) -> tuple[list[Any], dict[int, tuple[str, str]]]:
    """Each config resolved as `adu run` would; one that does not resolve is kept as given and reported."""
    from .train import resolve_config

    resolved, failed = [], {}
    for i, cfg in enumerate(cfgs):
        try:
            resolved.append(resolve_config(cfg))
        except Exception as err:  # noqa: BLE001 - a bad config fails alone, before anything is submitted
            resolved.append(cfg)
            failed[i] = _cause(err, traceback.format_exc())
    return resolved, failed


def _last_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _cause(err: BaseException, detail: str = "") -> tuple[str, str]:
    """(``"ExceptionName: last line of its message"``, the full report) of an exception raised by a run."""
    message = _last_line(str(err))
    return (f"{type(err).__name__}: {message}" if message else type(err).__name__), detail or str(err)


def _submitit_outcome(job: Any) -> list[dict] | tuple[str, str]:
    """A submitit job's run results, or its failure. ``exception()`` first: it waits without raising (and the debug
    executor's ``result()`` would open pdb on a failure)."""
    try:
        err = job.exception()
        if err is None:
            return job.result()
    except Exception as raised:  # noqa: BLE001 - e.g. a job whose results file never appeared
        err = raised
    text = str(err)
    if type(err).__name__ == "FailedJobError":
        # "... failed during processing with trace:\n-----\n<traceback>\n-----\nYou can check full logs ..."
        parts = text.split("----------------------")
        line = _last_line(parts[1] if len(parts) > 2 else text)
        return re.sub(r"^(?:[A-Za-z_]\w*\.)+(?=\w+(?::|$))", "", line), text  # adu_core.train.ConfigError: ...
    if type(err).__name__ == "UncompletedJobError":  # killed, timed out, never started: submitit's own sentence
        return "UncompletedJobError: " + " ".join(line.strip() for line in text.splitlines()[:2]), text
    return _cause(err)


def _ray_outcome(ray: Any, ref: Any) -> list[dict] | tuple[str, str]:
    """A Ray task's run results, or its failure (the task's own exception when it raised)."""
    try:
        return ray.get(ref)
    except Exception as err:  # noqa: BLE001 - RayTaskError, WorkerCrashedError, TaskCancelledError, ...
        cause = getattr(err, "cause", None)
        if isinstance(cause, BaseException) and not isinstance(cause, ray.exceptions.RayError):
            return _cause(cause, str(err))[0], str(err)
        return _cause(err)
