"""Depth of forgetting (adu_core.recovery): linear-probe recovery and relearning, on tiny synthetic runs."""

from __future__ import annotations

import json

import pytest
import torch

from adu_core import recovery
from adu_core.config import make_config
from adu_core.train import run_experiment
from tests._train_helpers import as_stored


def smoke(**kw):
    return make_config("synthetic", **{"forget": ("sketch",), "epochs": 3, **kw})


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline")
    return run_experiment(smoke(method="baseline"), out, progress=False), out


def test_relearning_starts_at_the_runs_own_accuracy_and_restores_the_model(baseline_run):
    result, out = baseline_run
    method, ds, _ = recovery.load_trained(out)
    before = {k: v.clone() for k, v in method.trainable_state().items()}
    data, _, _ = recovery.build_train_data(method.cfg, ds, method.env, progress=False)
    m = recovery.measure(method, method.env, method.cfg, data, ds, steps=(0, 5, 20))
    curve = m["relearn"]
    assert [p["step"] for p in curve] == [0, 5, 20]
    # step 0 is the unlearned model itself: its forgotten-domain accuracy is 100 - For of the run
    assert curve[0]["acc"] == pytest.approx(100.0 - result["metrics"]["for"], abs=1e-6)
    assert curve[0]["train_loss"] is None and curve[-1]["train_loss"] < curve[1]["train_loss"]  # it does learn
    after = method.trainable_state()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the measurement leaves the model as it was
    assert 0 <= m["probe_acc"] <= 100 and m["n_test"] == result["metrics"]["n_test"]["sketch"]


def test_measure_run_writes_once_and_compares_with_the_original(baseline_run):
    _, out = baseline_run
    first = recovery.measure_run(out, steps=(0, 5))
    saved = json.loads((out / "recovery.json").read_text())
    assert saved == as_stored(first) and saved["schema"] == "adu-recovery/1"
    assert {"unlearned", "original"} <= set(saved) and saved["original"]["relearn"][0]["step"] == 0
    assert saved["original"]["relearn"] != saved["unlearned"]["relearn"]  # two models, two curves
    stamp = (out / "recovery.json").stat().st_mtime_ns
    assert recovery.measure_run(out, steps=(0, 5)) == first and (out / "recovery.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("method", ["lp++", "gate"])
def test_frozen_feature_methods_keep_every_bit_of_probe_accuracy(method, tmp_path):
    """LP++ and the gate never change the image features: the probe recovers exactly what the original model has."""
    out = tmp_path / method
    run_experiment(smoke(method=method), out, progress=False)
    m = recovery.measure_run(out, steps=(0, 5))
    assert m["unlearned"]["probe_acc"] == m["original"]["probe_acc"]
    if method == "gate":
        assert m["unlearned"]["relearn"] is None  # no gradient parameters: nothing to relearn


def test_each_method_relearns_at_its_own_step_size(baseline_run, tmp_path):
    """Prompt methods relearn at the shared loop's peak rate; LP++ at the data-driven steps its run recorded
    (relearning it at 0.0025, thousands of times below its own step, would make it look unlearnable)."""
    _, out = baseline_run
    assert recovery.measure_run(out, steps=(0, 5))["unlearned"]["relearn_lr"] == [smoke().lr]
    lpp = tmp_path / "lpp"
    run = run_experiment(smoke(method="lp++"), lpp, progress=False)
    own = [h for h in run["history"] if "lr_alpha" in h][-1]
    m = recovery.measure_run(lpp, steps=(0, 5))
    assert m["unlearned"]["relearn_lr"] == pytest.approx([own["lr"], own["lr_alpha"] / 10])
    assert m["original"]["relearn_lr"] == m["unlearned"]["relearn_lr"]
    assert own["lr"] > 100 * smoke().lr
