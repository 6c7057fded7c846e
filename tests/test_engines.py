"""Grids on real engines: submitit's local executor (real job processes) and a local Ray instance started here
(loopback only, 2 CPUs, no dashboard), on the synthetic dataset with a tiny random model.

On each engine: every run gets exactly the metrics of the inline backend; a failing job fails alone; a job killed
mid-run resumes when the grid is submitted again. And two engines on one results folder train each run once and
leave only whole run.json files. Nothing here is mocked; the engines come with ``pip install -e '.[cluster]'``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from adu_core.config import make_config
from adu_core.dispatch import GridFailed, dispatch
from adu_core.train import run_experiment
from tests._train_helpers import as_stored

pytestmark = pytest.mark.slow

BAD_SCHEDULER = "ConfigError: scheduler='bogus' is out of range: cosine or constant"


def smoke(**kw):
    return make_config("synthetic", **{"forget": ("sketch",), "epochs": 1, **kw})


def grid(**kw) -> list:
    """Four runs: ADU and the Baseline, each forgetting sketch or photo."""
    return [smoke(method=m, forget=(d,), **kw) for m in ("adu", "baseline") for d in ("sketch", "photo")]


@pytest.fixture(scope="module")
def local_ray():
    """A Ray instance on this machine only: every address 127.0.0.1, 2 CPUs, no dashboard, no usage report, and an
    authentication token kept in the environment (Ray would otherwise write one into ~/.ray)."""
    imported_before = "ray" in sys.modules
    with pytest.MonkeyPatch.context() as mp:
        env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
               # Ray's single-machine mode (its default on macOS/Windows): the node's address is 127.0.0.1, not
               # the address of the interface that routes to the internet
               "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
               "OMP_NUM_THREADS": "1"}  # the workers share 2 cores (and the inline reference uses one thread)
        for name, value in env.items():
            mp.setenv(name, value)
        mp.delenv("RAY_ADDRESS", raising=False)
        ray = pytest.importorskip("ray", reason="the cluster extra is not installed: pip install -e '.[cluster]'")
        if imported_before:  # Ray read these at import: make it read them again
            from ray._private import ray_constants
            from ray._raylet import Config

            mp.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
            Config.initialize("")
        # Ray's session (logs, sockets) in a folder of its own, removed afterwards; short, for the socket paths
        session = tempfile.mkdtemp(prefix="adu-ray-", dir="/tmp")
        ray.init(address="local",  # a new instance, even where another one runs on this machine
                 num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False,
                 object_store_memory=80 * 1024**2, _temp_dir=session)
        try:
            assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
            yield ray
        finally:
            ray.shutdown()
            shutil.rmtree(session, ignore_errors=True)


@pytest.fixture(params=["submitit", "ray"])
def engine(request, tmp_path, monkeypatch):
    """``run(cfgs, dirs, **dispatch_kw)`` on the engine, and the engine's name."""
    if request.param == "ray":
        request.getfixturevalue("local_ray")
    else:
        pytest.importorskip("submitit", reason="the cluster extra is not installed: pip install -e '.[cluster]'")
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the job processes share 2 cores

    def run(cfgs, dirs, **kw):
        if request.param == "submitit":
            return dispatch(cfgs, dirs, backend="submitit", executor="local", folder=tmp_path / "logs",
                            gpus_per_job=0, parameters={"timeout_min": 10}, **kw)
        return dispatch(cfgs, dirs, backend="ray", gpus_per_job=0, **kw)

    run.name = request.param
    return run


@pytest.fixture(scope="module")
def inline_grid(tmp_path_factory):
    root = tmp_path_factory.mktemp("inline")
    return dispatch(grid(), [root / f"r{i}" for i in range(4)], backend="inline")


def test_each_run_gets_the_inline_metrics_and_a_failing_job_fails_alone(engine, inline_grid, tmp_path):
    cfgs = [*grid(), smoke(scheduler="bogus")]  # a bad config among good ones
    dirs = [tmp_path / f"r{i}" for i in range(len(cfgs))]
    with pytest.raises(GridFailed) as caught:
        engine(cfgs, dirs)
    err = caught.value
    assert str(err).splitlines()[1:] == [f"  {dirs[4]}: {BAD_SCHEDULER}"]
    for mine, inline in zip(err.results[:4], inline_grid, strict=True):
        assert mine["metrics"] == inline["metrics"]  # bit for bit: same config, same seed, same CPU
        assert mine["history"] == inline["history"]
        assert mine["timings"]["resumed_from_epoch"] is None
    assert err.results[4] is None and not (dirs[4] / "run.json").exists()
    assert all(json.loads((d / "run.json").read_text()) == as_stored(r) for d, r in zip(dirs[:4], err.results[:4], strict=True))


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _kill(engine_name: str, handle: Any) -> None:
    """Kill a running job the hard way and wait until it is gone."""
    if engine_name == "submitit":
        controller = int(handle.job_id)  # the local executor's job id is its controller's pid
        for pid in _children(controller):  # the task process that trains
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not handle.done():
            assert time.monotonic() < deadline, "the killed job's controller did not end"
            time.sleep(0.1)
    else:
        import ray

        ray.cancel(handle, force=True)  # kills the worker process
        with pytest.raises(ray.exceptions.RayError):
            ray.get(handle, timeout=60)


def _finished(engine_name: str, handle: Any) -> bool:
    if engine_name == "submitit":
        return handle.done()
    import ray

    return bool(ray.wait([handle], timeout=0)[0])


def test_a_job_killed_mid_run_resumes_when_the_grid_is_submitted_again(engine, tmp_path):
    cfg = smoke(epochs=40, seed=4)  # a checkpoint after every epoch (checkpoint_interval_s=0)
    out = tmp_path / "run"
    [handle] = engine([cfg], [out], wait=False)
    deadline = time.monotonic() + 300
    while not (out / "checkpoint.pt").exists():
        assert not _finished(engine.name, handle), "the job ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint after 300 s"
        time.sleep(0.01)
    _kill(engine.name, handle)
    assert (out / "checkpoint.pt").exists() and not (out / "run.json").exists()
    [resumed] = engine([cfg], [out])
    assert resumed["timings"]["resumed_from_epoch"] >= 1
    reference = run_experiment(cfg, tmp_path / "uninterrupted", progress=False)
    assert resumed["metrics"] == reference["metrics"] and resumed["history"] == reference["history"]
    assert not (out / "checkpoint.pt").exists()


def test_two_engines_on_one_results_folder_train_each_run_once(local_ray, tmp_path, monkeypatch):
    pytest.importorskip("submitit", reason="the cluster extra is not installed: pip install -e '.[cluster]'")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cfgs = grid(epochs=4)
    dirs = [tmp_path / "results" / f"r{i}" for i in range(len(cfgs))]
    # submitit trains pairs in one pass (each job locks both of its runs), Ray one run per task: both at once
    jobs = dispatch(cfgs, dirs, backend="submitit", executor="local", folder=tmp_path / "logs", group_size=2,
                    gpus_per_job=0, parameters={"timeout_min": 10}, wait=False)
    refs = dispatch(cfgs, dirs, backend="ray", gpus_per_job=0, wait=False)
    by_submitit = {json.dumps(r["config"]): as_stored(r) for job in jobs for r in job.result()}
    by_ray = {json.dumps(r["config"]): as_stored(r) for runs in local_ray.get(refs) for r in runs}
    on_disk = {json.dumps(r["config"]): r for r in (json.loads((d / "run.json").read_text()) for d in dirs)}
    assert len(on_disk) == 4
    # Each run was trained once: both engines got the very result that is on disk (a second training would
    # have its own timings and finishing time, and would have rewritten run.json).
    assert by_submitit == on_disk and by_ray == on_disk
    left = sorted(p.name for p in (tmp_path / "results").rglob("*") if p.is_file())
    assert left == sorted(["run.json", "trained.pt", ".lock"] * 4)  # no temporary or checkpoint file left over


def test_ray_refuses_jobs_that_ask_for_gpus_the_cluster_lacks(local_ray, tmp_path):
    with pytest.raises(ValueError, match=r"has 0: use gpus_per_job=0 \(--gpus-per-job 0\)"):
        dispatch([smoke()], [tmp_path / "r"], backend="ray", gpus_per_job=1)  # else queued for ever
    assert not (tmp_path / "r").exists()
