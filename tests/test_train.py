"""End-to-end runs of the trainer on the synthetic set with a tiny random model (seconds each)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from adu_core.cli import main
from adu_core.config import field_names, make_config
from adu_core.train import ConfigError, resolve_config, run_experiment
from tests._train_helpers import as_stored, interrupt_after_epoch


def smoke(**kw):
    base = {"forget": ("sketch",), "epochs": 3}
    return make_config("synthetic", **{**base, **kw})


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    return run_experiment(smoke(), out, progress=False), out


def test_run_json_is_complete(reference_run):
    result, out = reference_run
    saved = json.loads((out / "run.json").read_text())
    assert saved == as_stored(result)
    assert saved["config"]["method"] == "adu" and saved["config"]["forget"] == ["sketch"]
    m = saved["metrics"]
    assert set(m) >= {"mem", "for", "h", "per_domain_acc", "domain_acc_probe", "domain_acc_head", "train"}
    assert set(m["train"]) == {"mem", "for", "h", "per_domain_acc"}  # the same metrics on the training images
    assert 0 <= m["train"]["mem"] <= 100 and m["train"]["h"] > 0
    assert set(m["per_domain_acc"]) == {"photo", "sketch", "cartoon", "painting"}
    prov = saved["provenance"]
    assert len(prov["weights"]["sha256"]) == 64 and len(prov["data_sha256"]) == 64
    assert prov["packages"]["torch"] and prov["hardware"]["device"] == "cpu"
    assert prov["precision"] == "fp32"  # the smoke tier pins fp32; auto on a bf16 CPU would say bf16
    assert "commit" in prov["code"]
    assert [h["epoch"] for h in saved["history"]] == [1, 2, 3]
    assert not (out / "checkpoint.pt").exists() and (out / "trained.pt").exists()


def test_same_seed_same_metrics_and_other_seed_differs(reference_run, tmp_path):
    result, _ = reference_run
    again = run_experiment(smoke(), tmp_path / "again", progress=False)
    assert again["metrics"] == result["metrics"]
    assert again["history"] == result["history"]
    other = run_experiment(smoke(seed=2), tmp_path / "other", progress=False)
    assert other["history"] != result["history"]


@pytest.mark.parametrize(("weight", "switch"), [("gamma", "ddl_ce"), ("lam", "ddl_mmd")])
def test_zero_weight_trains_as_the_term_switched_off(weight, switch, tmp_path):
    """The sensitivity page reads γ = 0 (λ = 0) from Table 3's run without DDL's CE (MMD): that is only sound if
    the two train the same model."""
    zero = run_experiment(smoke(epochs=2, **{weight: 0.0}), tmp_path / "zero", progress=False)
    off = run_experiment(smoke(epochs=2, **{switch: False}), tmp_path / "off", progress=False)
    assert off["metrics"]["per_domain_acc"] == pytest.approx(zero["metrics"]["per_domain_acc"], abs=1e-9)
    assert [h["loss"] for h in off["history"]] == pytest.approx([h["loss"] for h in zero["history"]], rel=1e-5)


def test_interrupted_run_resumes_to_identical_result(reference_run, tmp_path, monkeypatch):
    result, _ = reference_run
    out = tmp_path / "interrupted"
    interrupt_after_epoch(monkeypatch, smoke(), out, epoch=2)
    assert (out / "checkpoint.pt").exists() and not (out / "run.json").exists()
    resumed = run_experiment(smoke(), out, progress=False)
    assert resumed["timings"]["resumed_from_epoch"] == 2
    assert resumed["metrics"] == result["metrics"]


def test_existing_run_is_skipped_unless_forced(reference_run, tmp_path):
    out = tmp_path / "skip"
    first = run_experiment(smoke(epochs=1), out, progress=False)
    stamp = (out / "run.json").stat().st_mtime_ns
    assert run_experiment(smoke(epochs=1), out, progress=False) == json.loads((out / "run.json").read_text())
    assert (out / "run.json").stat().st_mtime_ns == stamp
    forced = run_experiment(smoke(epochs=1), out, force=True, progress=False)
    assert forced["metrics"] == first["metrics"]
    assert forced["provenance"]["finished_at"] >= first["provenance"]["finished_at"]


def test_checkpoint_of_another_config_is_refused(tmp_path):
    out = tmp_path / "mismatch"
    out.mkdir()
    torch.save({"config_key": "0000000000", "epochs_done": 1, "state": {}, "optimizer": {}, "history": []},
               out / "checkpoint.pt")
    with pytest.raises(ConfigError, match="different configuration"):
        run_experiment(smoke(), out, progress=False)


def test_method_switches_are_recorded():
    cfg = resolve_config(smoke(method="baseline"))
    assert (cfg.instapg, cfg.ddl) == (False, False)
    cfg = resolve_config(smoke(ddl_ce=False))
    assert cfg.ddl and not cfg.ddl_ce and cfg.instapg


@pytest.mark.parametrize(("args", "message"), [
    (["--dataset", "nope", "--forget", "x"], "unknown dataset 'nope'"),
    (["--dataset", "synthetic", "--forget", "sketch", "--method", "magic"], "unknown method 'magic'"),
    (["--dataset", "synthetic", "--forget", "watercolor"], "watercolor"),
    (["--dataset", "synthetic", "--forget", "photo,sketch,cartoon,painting"], "cannot forget every domain"),
    (["--dataset", "synthetic", "--forget", ","], "nothing to forget"),
    (["--dataset", "synthetic", "--forget", "sketch", "--set", "epoch=2"], "unknown config key 'epoch'"),
    (["--dataset", "synthetic", "--forget", "sketch", "--set", "epochs"], "KEY=VALUE"),
    (["--dataset", "synthetic", "--forget", "sketch", "--set", "prompt_depth=9"], "prompt depth 9"),
    (["--dataset", "synthetic", "--forget", "sketch", "--set", "method.nope=1"], "no option"),
])
def test_cli_bad_input_gives_clear_error(args, message, tmp_path, capsys):
    code = main(["run", *args, "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err


def test_cli_gpu_only_option_without_gpu(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    code = main(["run", "--dataset", "synthetic", "--forget", "sketch", "--set", "device=cuda",
                 "--out", str(tmp_path)])
    assert code == 2 and "no CUDA GPU" in capsys.readouterr().err


def test_cli_run_writes_run_json(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["run", "--dataset", "synthetic", "--forget", "Sketch", "--method", "baseline", "--seed", "3",
                 "--out", str(out), "--set", "epochs=1", "--no-progress"])
    assert code == 0
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["seed"] == 3 and run["config"]["forget"] == ["sketch"] and run["config"]["epochs"] == 1
    assert "Mem" in capsys.readouterr().out


def test_run_help_documents_every_option():
    proc = subprocess.run([sys.executable, "-m", "adu_core", "run", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0
    for key in field_names():
        if key not in ("dataset", "forget", "method", "seed", "tier"):
            assert key in proc.stdout, key
    for flag in ("--dataset", "--forget", "--method", "--seed", "--out", "--set", "--force", "--tier"):
        assert flag in proc.stdout


def test_cli_grid_runs_every_combination_once(tmp_path, capsys):
    args = ["grid", "--dataset", "synthetic", "--methods", "zeroshot", "--forget-sizes", "3", "--seeds", "1",
            "--results-dir", str(tmp_path)]
    assert main(args) == 0
    runs = sorted(tmp_path.rglob("run.json"))
    assert len(runs) == 4  # C(4, 3) forget sets of the four synthetic domains
    assert "zeroshot   n=4" in capsys.readouterr().out
    stamps = [p.stat().st_mtime_ns for p in runs]
    assert main(args) == 0  # finished runs are skipped, not redone
    assert [p.stat().st_mtime_ns for p in runs] == stamps


def test_a_second_worker_waits_for_the_first_and_reuses_its_run(tmp_path):
    import threading

    from adu_core.train import run_lock

    out = tmp_path / "shared"
    out.mkdir()
    done: dict = {}
    with run_lock(out):
        worker = threading.Thread(target=lambda: done.update(run=run_experiment(smoke(), out, progress=False)))
        worker.start()
        worker.join(timeout=2)
        assert worker.is_alive()  # blocked on the lock held by the "first worker"
        first = {"schema": "adu-run/1", "config": smoke().to_dict(), "made_by": "first worker",
                 "metrics": {"mem": 50.0, "for": 50.0, "h": 50.0}}
        (out / "run.json").write_text(json.dumps(first))
    worker.join(timeout=60)
    assert done["run"] == first  # found the finished run instead of training again


def test_ddl_can_read_the_class_token_before_the_projection(tmp_path):
    """ddl_feature=pre_projection: the domain head and MMD read the pooled token (encoder width), not the embedding."""
    from adu_core.device import resolve_device
    from adu_core.methods import get_method
    from adu_core.train import build_env

    cfg = resolve_config(smoke(ddl_feature="pre_projection"))
    _, env = build_env(cfg, resolve_device(cfg.device))
    method = get_method("adu")(env)
    assert method.domain_head.in_features == method.encoder.width != method.encoder.output_dim
    out = method(torch.randn(8, 3, env.image_size, env.image_size))
    assert out.ddl_features is not None and out.ddl_features.shape == (8, method.encoder.width)
    terms = method.loss(out, torch.randint(0, len(env.classnames), (8,)), torch.arange(8) % len(env.domains))
    terms["loss"].backward()
    assert method.encoder.prompts.grad is not None and method.encoder.prompts.grad.abs().sum() > 0
    default = get_method("adu")(build_env(resolve_config(smoke()), resolve_device(cfg.device))[1])
    assert default.domain_head.in_features == default.encoder.output_dim
    result = run_experiment(smoke(ddl_feature="pre_projection", epochs=1), tmp_path / "pre", progress=False)
    assert result["config"]["ddl_feature"] == "pre_projection" and result["metrics"]["h"] >= 0


def test_auto_precision_uses_bf16_where_the_cpu_has_it(monkeypatch):
    from adu_core import train

    cpu = torch.device("cpu")
    monkeypatch.setattr(train, "cpu_has_bf16", lambda: True)
    assert train.autocast_dtype(make_config("pacs"), cpu) is torch.bfloat16
    assert train.autocast_dtype(make_config("synthetic"), cpu) is None  # the smoke tier pins fp32
    monkeypatch.setattr(train, "cpu_has_bf16", lambda: False)
    assert train.autocast_dtype(make_config("pacs"), cpu) is None
    assert train.precision_name(torch.bfloat16) == "bf16" and train.precision_name(None) == "fp32"


@pytest.mark.parametrize(("content", "why"), [
    ('{"schema": "adu-run/1", "config": {', "not valid JSON (Expecting"),
    ('{"schema": "someone-else/3"}', "not a run of this project (schema 'someone-else/3'"),
    ('[1, 2]', "not a run of this project (schema 'list'"),
    ('{"schema": "adu-run/1", "config": {"dataset": "pacs", "method": "adu", "seed": 1, "tier": "testbed", '
     '"forget": ["photo"]}, "metrics": {"mem": 50.0, "for": "lots"}}', "missing or not a number: metrics.for, metrics.h"),
])
def test_a_broken_run_json_is_one_line_naming_the_file(tmp_path, capsys, content, why):
    from adu_core.results import RunFileError, load_runs, read_run

    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text(content)
    with pytest.raises(RunFileError) as err:
        read_run(out / "run.json")
    assert str(err.value).startswith(f"{out / 'run.json'}: ") and why in str(err.value)
    assert "delete it to train the run again" in str(err.value) and "\n" not in str(err.value)
    problems: list[str] = []
    assert load_runs(tmp_path, problems).empty and problems == [str(err.value)]
    assert main(["run", "--dataset", "synthetic", "--forget", "sketch", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"adu: error: {err.value}"
