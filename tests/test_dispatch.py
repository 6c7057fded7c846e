"""Dispatching independent runs: planning, failures that stay with their runs, `adu grid`'s cluster options, and
clear errors without an engine. The engines themselves (submitit's local executor, a local Ray) run in
``tests/test_engines.py``."""

from __future__ import annotations

import builtins
import json

import pytest

from adu_core.cli import main
from adu_core.config import make_config
from adu_core.dispatch import BackendMissing, GridFailed, default_run_dirs, dispatch, plan_jobs
from adu_core.paths import results_dir
from adu_core.train import resolve_config, run_experiment, run_folder


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


def test_a_failing_run_fails_alone_and_the_grid_names_each_failure(tmp_path):
    cfgs = [smoke(seed=1), smoke(seed=1, scheduler="bogus"), smoke(method="nope"), smoke(seed=2)]
    dirs = [tmp_path / f"r{i}" for i in range(4)]
    with pytest.raises(GridFailed) as caught:
        dispatch(cfgs, dirs, backend="inline")
    err = caught.value
    # the good runs finished; their results come back with the error
    assert [r is not None for r in err.results] == [True, False, False, True]
    assert (dirs[0] / "run.json").exists() and (dirs[3] / "run.json").exists()
    assert not (dirs[1] / "run.json").exists() and not (dirs[2] / "run.json").exists()
    lines = str(err).splitlines()
    assert lines[0].startswith("2 of 4 runs failed")
    assert lines[1:] == [f"  {dirs[1]}: ConfigError: scheduler='bogus' is out of range: cosine or constant",
                         f"  {dirs[2]}: {err.failures[1].cause}"]
    assert err.failures[1].cause.startswith("ConfigError: unknown method 'nope'")
    assert "Traceback" in err.failures[0].detail  # the full story is kept for whoever debugs it
    # submitted again: only the failed runs are retried (and fail again), the finished ones are not redone
    stamp = (dirs[0] / "run.json").stat().st_mtime_ns
    with pytest.raises(GridFailed, match="2 of 4 runs failed"):
        dispatch(cfgs, dirs, backend="inline")
    assert (dirs[0] / "run.json").stat().st_mtime_ns == stamp


def test_submitit_debug_executor_reports_a_failing_job_without_a_debugger(tmp_path):
    pytest.importorskip("submitit")
    dirs = [tmp_path / "good", tmp_path / "bad"]
    with pytest.raises(GridFailed) as caught:  # submitit's debug job.result() would open pdb on the failure
        dispatch([smoke(), smoke(scheduler="bogus")], dirs, backend="submitit", executor="debug",
                 folder=tmp_path / "logs")
    assert [str(f) for f in caught.value.failures] == [
        f"{dirs[1]}: ConfigError: scheduler='bogus' is out of range: cosine or constant"]
    assert (dirs[0] / "run.json").exists()


def test_grid_prints_one_line_per_failed_run_and_exits_2(tmp_path, capsys):
    args = ["grid", "--dataset", "synthetic", "--methods", "adu", "--forget", "sketch;photo;cartoon",
            "--set", "epochs=1", "--results-dir", str(tmp_path)]
    cfgs = [make_config("synthetic", forget=(d,), epochs=1) for d in ("sketch", "photo", "cartoon")]
    bad = default_run_dirs(cfgs, tmp_path)[1]
    bad.mkdir(parents=True)
    (bad / "checkpoint.pt").write_text("not a checkpoint")  # e.g. a file a crashed copy left behind
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert "adu        n=2" in out  # the finished runs are summarised all the same
    assert err.splitlines()[0] == "adu: error: 1 of 3 runs failed (the other runs finished; submitting the " \
                                  "grid again retries only the failed ones):"
    assert err.splitlines()[1:] == [f"  {bad}: ConfigError: {bad / 'checkpoint.pt'} is not a readable checkpoint "
                                    "(UnpicklingError); delete it or rerun with --force"]
    assert len(list(tmp_path.rglob("run.json"))) == 2


def test_grid_writes_where_adu_run_and_the_book_look(tmp_path):
    # The Baseline implies instapg=False and ddl=False: those are the method's, not overrides, so its runs must
    # land in seed1/ as with `adu run` (and a book page's plan), not in a seed1_<hash>/ folder nobody reads.
    cfgs = [make_config("synthetic", method=m, forget=("sketch",)) for m in ("baseline", "adu", "zeroshot")]
    assert default_run_dirs(cfgs, tmp_path) == [run_folder(tmp_path / "smoke", resolve_config(c)) for c in cfgs]
    assert default_run_dirs(cfgs)[0] == results_dir("smoke") / "synthetic" / "baseline" / "forget-sketch" / "seed1"


def test_grid_hands_the_cluster_options_to_the_engine(tmp_path, monkeypatch):
    import adu_core.dispatch

    seen: dict = {}

    def fake_dispatch(cfgs, dirs, **kw):  # the engines' own behaviour is tested in tests/test_engines.py
        seen.update(kw, n=len(cfgs))
        return [{"metrics": {"mem": 50.0, "for": 50.0, "h": 50.0}} for _ in cfgs]

    monkeypatch.setattr(adu_core.dispatch, "dispatch", fake_dispatch)
    common = ["grid", "--dataset", "synthetic", "--forget", "sketch", "--results-dir", str(tmp_path)]
    assert main([*common, "--backend", "submitit", "--executor", "slurm", "--partition", "gpu", "--timeout-min",
                 "90", "--param", "slurm_account=proj", "--param", "cpus_per_task=4", "--gpus-per-job", "2",
                 "--logs", str(tmp_path / "logs")]) == 0
    assert seen["parameters"] == {"slurm_partition": "gpu", "timeout_min": 90, "slurm_account": "proj",
                                  "cpus_per_task": 4}
    assert (seen["backend"], seen["executor"], seen["gpus_per_job"]) == ("submitit", "slurm", 2)
    assert seen["folder"] == str(tmp_path / "logs") and seen["ray_init"] is None
    assert main([*common, "--backend", "ray", "--ray-address", "auto", "--gpus-per-job", "0"]) == 0
    assert seen["ray_init"] == {"address": "auto"} and seen["gpus_per_job"] == 0
    assert main([*common, "--param", "oops"]) == 2  # not KEY=VALUE: one error line, nothing submitted


def test_a_group_job_waits_for_a_run_another_worker_holds_and_trains_only_the_rest(tmp_path):
    import threading

    from adu_core.dispatch import run_job
    from adu_core.train import run_lock

    cfgs = [smoke(forget=(d,)) for d in ("photo", "sketch")]  # compatible: one job trains both in one pass
    dirs = [tmp_path / "a", tmp_path / "b"]
    dirs[0].mkdir()
    done: dict = {}
    with run_lock(dirs[0]):  # another engine is training run a
        job = threading.Thread(target=lambda: done.update(
            runs=run_job([c.to_dict() for c in cfgs], [str(d) for d in dirs])))
        job.start()
        job.join(timeout=3)
        assert job.is_alive() and not (dirs[1] / "run.json").exists()  # waits before training either run
        other = {"schema": "adu-run/1", "config": cfgs[0].to_dict(), "made_by": "the other engine",
                 "metrics": {"mem": 50.0, "for": 50.0, "h": 50.0}}
        (dirs[0] / "run.json").write_text(json.dumps(other))
    job.join(timeout=120)
    assert done["runs"][0] == other  # not trained a second time
    assert "multirun" not in done["runs"][1]["timings"]  # its partner was done meanwhile: trained alone
