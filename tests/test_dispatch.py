"""Dispatching independent runs on an engine (submitit here; Ray where installed), and clear errors without one."""

from __future__ import annotations

import builtins
import json

import pytest

from adu_core.config import make_config
from adu_core.dispatch import BackendMissing, dispatch, plan_jobs
from adu_core.train import resolve_config, run_experiment


def smoke(**kw):
    return make_config("synthetic", **{"forget": ("sketch",), "epochs": 1, **kw})


@pytest.mark.parametrize("backend", ["submitit", "ray"])
def test_missing_engine_names_the_pip_install(backend, monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_engine(name, *args, **kw):
        if name == backend:
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_engine)
    with pytest.raises(BackendMissing, match=f"pip install {backend}"):
        dispatch([smoke()], [tmp_path / "r"], backend=backend)


def test_unknown_backend(tmp_path):
    with pytest.raises(ValueError, match="unknown dispatch backend"):
        dispatch([smoke()], [tmp_path / "r"], backend="cron")


def test_finished_runs_are_not_submitted_and_groups_are_planned(tmp_path):
    cfgs = [resolve_config(smoke(seed=1)), resolve_config(smoke(seed=1, forget=("photo",))),
            resolve_config(smoke(seed=2))]
    dirs = [tmp_path / f"r{i}" for i in range(3)]
    dirs[2].mkdir()
    (dirs[2] / "run.json").write_text("{}")
    assert plan_jobs(cfgs, dirs) == [[0], [1]]
    assert plan_jobs(cfgs, dirs, group_size=4) == [[0, 1]]  # one job trains both in one pass
    assert plan_jobs(cfgs, dirs, force=True) == [[0], [1], [2]]


def test_submitit_debug_executor_runs_each_config_once(tmp_path):
    pytest.importorskip("submitit")
    cfgs = [smoke(seed=1), smoke(seed=1, forget=("photo",))]
    dirs = [tmp_path / "a", tmp_path / "b"]
    results = dispatch(cfgs, dirs, backend="submitit", executor="debug", folder=tmp_path / "logs", group_size=2)
    assert [r["config"]["forget"] for r in results] == [["sketch"], ["photo"]]
    assert all((d / "run.json").exists() for d in dirs)
    alone = run_experiment(cfgs[0], tmp_path / "alone", progress=False)
    assert results[0]["metrics"]["mem"] == pytest.approx(alone["metrics"]["mem"], abs=1e-6)
    # submitted again: nothing to do, the results come from the store
    stamp = (dirs[0] / "run.json").stat().st_mtime_ns
    again = dispatch(cfgs, dirs, backend="submitit", executor="debug", folder=tmp_path / "logs")
    assert (dirs[0] / "run.json").stat().st_mtime_ns == stamp
    assert again[1] == json.loads((dirs[1] / "run.json").read_text())


def test_submitit_local_executor_runs_a_job_in_another_process(tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the job's process, on shared cores
    jobs = dispatch([smoke(seed=3)], [tmp_path / "r"], backend="submitit", executor="local",
                    folder=tmp_path / "logs", gpus_per_job=0, wait=False, parameters={"timeout_min": 5})
    assert len(jobs) == 1
    result = jobs[0].result()  # the job's own list of run results
    assert result[0]["config"]["seed"] == 3 and (tmp_path / "r" / "run.json").exists()
