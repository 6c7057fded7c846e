"""Knowledge-vector weakening (adu_core.methods.kvw): a training-free edit of the image encoder's MLP value vectors.

Smoke tier (tiny random CLIP, synthetic images). A random model's forgotten-domain accuracy is already near chance,
so the runs that must edit something switch the forgetting stop off (``stop_forget_acc=None``) and run a fixed
number of rounds.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from adu_core import evaluate as ev
from adu_core import recovery
from adu_core.backbones import state_sha256
from adu_core.config import make_config
from adu_core.data.tensor_cache import cached_images
from adu_core.device import resolve_device
from adu_core.methods import get_method
from adu_core.methods.kvw import KVW, KVWOptions, edit_of, resolve_layers
from adu_core.train import ConfigError, build_env, build_train_data, load_trained, resolve_config, run_experiment
from tests._train_helpers import as_stored

REPO = Path(__file__).resolve().parents[1]
EDITING = {"stop_forget_acc": None, "max_rounds": 3, "layers": "all", "factor": 0.0}


def smoke(**options):
    return make_config("synthetic", forget=("sketch",), method="kvw", method_options=options)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADU_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def kvw_run(tmp_path_factory):
    """One smoke run that edits: 3 rounds of factor 0 over every block."""
    out = tmp_path_factory.mktemp("kvw")
    return run_experiment(smoke(**EDITING), out, progress=False), out


def built(**options):
    """(dataset, env, pool, method) of a smoke kvw config, as run_experiment builds them before ``fit``."""
    cfg = resolve_config(smoke(**options))
    ds, env = build_env(cfg, resolve_device(cfg.device))
    data, _, _ = build_train_data(cfg, ds, env, progress=False)
    torch.manual_seed(cfg.seed)
    return ds, env, data, get_method("kvw")(env)


def zeroshot_of(env):
    """Zero-shot CLIP on the same (shared) model."""
    cfg = dataclasses.replace(env.cfg, method="zeroshot", method_options={})
    return get_method("zeroshot")(dataclasses.replace(env, cfg=cfg))


def decoded_test_images(ds, env):
    samples = ev.test_subset(ds.samples("test"), None)
    return cached_images(ds, samples, env.image_size, progress=False)


def logits_of(method, env, images, data) -> torch.Tensor:
    return ev.predict(method, env, images, data.mean, data.std, 64)["logits"]


# --- what the edit leaves alone ------------------------------------------------------------------------------------

def test_factor_one_is_zero_shot_clip_exactly(tmp_path):
    ds, env, data, kvw = built(**{**EDITING, "factor": 1.0})
    kvw.weaken(data.images, data.labels, data.domains, data.mean, data.std)
    zeroshot = zeroshot_of(env)
    images = decoded_test_images(ds, env)
    assert torch.equal(logits_of(kvw, env, images, data), logits_of(zeroshot, env, images, data))
    # end to end: the same metrics as the zero-shot run, although every round chose units
    run = run_experiment(smoke(**{**EDITING, "factor": 1.0}), tmp_path / "kvw", progress=False)
    zs = run_experiment(make_config("synthetic", forget=("sketch",), method="zeroshot"), tmp_path / "zs",
                        progress=False)
    assert run["metrics"]["per_domain_acc"] == zs["metrics"]["per_domain_acc"]
    assert run["metrics"]["train"] == zs["metrics"]["train"]
    edit = edit_of(run)
    assert edit["rounds"] == 3 and edit["n_weakened"] == 0  # chosen, but multiplied by 1


def _silence(env, block: int, units: list[int]) -> None:
    """Make ``units`` of ``block`` dead on every image: their pre-activation is exactly 0, so GELU gives 0."""
    fc = env.clip.visual.transformer.resblocks[block].mlp.c_fc
    with torch.no_grad():
        fc.weight[units] = 0.0
        fc.bias[units] = 0.0


def test_weakening_units_silent_on_the_forgotten_images_changes_no_prediction():
    ds, env, data, _ = built(**EDITING)
    dead = {1: [0, 5, 17], 3: [2, 200]}
    for block, units in dead.items():
        _silence(env, block, units)
    kvw, zeroshot = get_method("kvw")(env), zeroshot_of(env)
    forget = torch.isin(data.domains, torch.tensor(env.forget_idx))
    acts, _ = kvw.pool_pass(data.images, data.mean, data.std)
    for block, units in dead.items():
        assert (acts[block][forget][:, units] == 0).all()  # they never fire on the forgotten images
    with torch.no_grad():
        for block, units in dead.items():
            kvw.values[str(block)].gain[units] = 0.0  # weakened all the way
    images = torch.cat([decoded_test_images(ds, env), data.images])
    assert torch.equal(logits_of(kvw, env, images, data), logits_of(zeroshot, env, images, data))
    # control: the same units, left alive, do change predictions when weakened
    _, env_alive, _, alive = built(**EDITING)
    with torch.no_grad():
        for block, units in dead.items():
            alive.values[str(block)].gain[units] = 0.0
    assert not torch.equal(logits_of(alive, env_alive, images, data),
                           logits_of(zeroshot_of(env_alive), env_alive, images, data))
    # and the method itself never picks them: a unit silent on the forgotten images is no candidate
    kvw.weaken(data.images, data.labels, data.domains, data.mean, data.std)
    edited = kvw.edit_record()["weakened"]
    assert edited["1"]["units"] and edited["3"]["units"]  # it did weaken units in those blocks ...
    assert all(not set(units) & set(edited[str(block)]["units"]) for block, units in dead.items())


def test_the_run_never_edits_the_shared_clip():
    _, env, data, kvw = built(**EDITING)
    before = state_sha256(env.clip)
    kvw.weaken(data.images, data.labels, data.domains, data.mean, data.std)
    assert kvw.edit_record()["n_weakened"] > 0 and state_sha256(env.clip) == before
    assert kvw.visual is not env.clip.visual


# --- the record, determinism, reloading ----------------------------------------------------------------------------

def test_the_edit_is_recorded_in_run_json(kvw_run):
    result, out = kvw_run
    run = json.loads((out / "run.json").read_text())
    assert run["history"] == as_stored(result["history"])
    rounds = [h for h in run["history"] if "round" in h]
    assert [h["round"] for h in rounds] == [0, 1, 2, 3]
    assert all({"mem", "for", "h", "weakened"} <= set(h) for h in rounds)
    edit = edit_of(run)
    per_round = edit["units_per_round"]
    assert per_round == max(1, round(KVWOptions().unit_share * 4 * 256))  # default share of 4 blocks x 256 units
    assert edit["stop"] == "max_rounds" and edit["rounds"] == 3 and edit["blocks"] == [0, 1, 2, 3]
    # factor 0: a weakened unit has gain 0 and is never chosen again, so each round adds new units
    assert edit["n_weakened"] == 3 * per_round == sum(edit["count_per_block"].values())
    for block, rec in edit["weakened"].items():
        assert len(rec["units"]) == len(rec["gains"]) == edit["count_per_block"][block]
        assert rec["units"] == sorted(set(rec["units"])) and all(g == 0.0 for g in rec["gains"])
    assert rounds[-1]["weakened"] == edit["n_weakened"]
    assert (out / "trained.pt").exists()


def test_the_edit_is_deterministic_for_a_seed(kvw_run, tmp_path):
    result, _ = kvw_run
    again = run_experiment(smoke(**EDITING), tmp_path / "again", progress=False)
    assert edit_of(again)["weakened"] == edit_of(result)["weakened"]
    assert again["metrics"] == result["metrics"]
    other = run_experiment(dataclasses.replace(smoke(**EDITING), seed=2), tmp_path / "seed2", progress=False)
    assert edit_of(other)["weakened"] != edit_of(result)["weakened"]  # another pool, another edit


def test_load_trained_rebuilds_the_edited_model(kvw_run):
    result, out = kvw_run
    method, ds, run = load_trained(out)
    assert method.edit_record()["weakened"] == edit_of(run)["weakened"]
    samples = ev.test_subset(ds.samples("test"), None)
    images = cached_images(ds, samples, method.env.image_size, progress=False)
    env = method.env
    pred = ev.predict(method, env, images, env.mean, env.std, 64)["logits"].argmax(-1).numpy()
    labels = np.array([s.label for s in samples])
    sketch = np.array([s.domain == "sketch" for s in samples])
    assert 100 * (pred[~sketch] == labels[~sketch]).mean() == pytest.approx(result["metrics"]["mem"], abs=1e-9)
    assert 100 - 100 * (pred[sketch] == labels[sketch]).mean() == pytest.approx(result["metrics"]["for"], abs=1e-9)
    # the edit baked into plain open_clip weights gives the same features
    baked = method.export_visual().eval()
    x = torch.randn(4, 3, env.image_size, env.image_size)
    with torch.no_grad():
        assert torch.equal(baked(x), method.visual(x))


def test_depth_measurement_relearns_the_gains(kvw_run):
    result, out = kvw_run
    m = recovery.measure_run(out, steps=(0, 5))
    unlearned, original = m["unlearned"], m["original"]
    assert unlearned["relearn"][0]["acc"] == pytest.approx(100.0 - result["metrics"]["for"], abs=1e-6)
    assert original["relearn"] is not None and original["relearn"] != unlearned["relearn"]
    assert unlearned["relearn_lr"] == [smoke().lr]  # the shared loop's rate
    assert 0 <= unlearned["probe_acc"] <= 100
    # measuring leaves the saved edit as it was
    method, _, run = load_trained(out)
    assert method.edit_record()["weakened"] == edit_of(run)["weakened"]


# --- the rounds and their stopping rule ----------------------------------------------------------------------------

def scripted(kvw: KVW, accs: list[tuple[float, float]]):
    """Replace the pool's predictions by ones giving (kept accuracy, forgotten accuracy) per pass, in order."""
    real = kvw.pool_pass
    passes = iter(accs)

    def fake(images, mean, std, capture=True):
        acts, pred = real(images, mean, std, capture)
        kept_acc, forget_acc = next(passes)
        labels = fake.labels.clone()
        forget = fake.forget
        for mask, acc in ((~forget, kept_acc), (forget, forget_acc)):
            idx = torch.nonzero(mask).flatten()
            wrong = idx[round(len(idx) * acc / 100):]
            labels[wrong] = (labels[wrong] + 1) % kvw.n_classes
        return acts, labels

    kvw.pool_pass = fake
    return fake


def test_a_round_that_costs_too_much_kept_accuracy_is_undone():
    _, env, data, kvw = built(**{**EDITING, "stop_forget_acc": 0.0, "stop_mem_drop": 5.0, "max_rounds": 10})
    fake = scripted(kvw, [(100, 100), (100, 75), (96, 50), (90, 25)])
    fake.labels, fake.forget = data.labels.cpu(), torch.isin(data.domains.cpu(), torch.tensor(env.forget_idx))
    records, edit = kvw.weaken(data.images, data.labels, data.domains, data.mean, data.std)
    assert edit["stop"] == "mem_drop" and edit["rounds"] == 2
    assert records[-1]["undone"] and records[-1]["round"] == 3
    assert edit["n_weakened"] == 2 * edit["units_per_round"]  # the third round's units are back at gain 1
    assert edit["pool_end"]["mem"] == pytest.approx(records[2]["mem"])


def test_the_edit_stops_once_the_forgotten_domains_are_at_chance():
    _, env, data, kvw = built(**{**EDITING, "stop_forget_acc": 0.0, "stop_mem_drop": None, "max_rounds": 10})
    fake = scripted(kvw, [(100, 100), (100, 50), (100, 0), (100, 0)])
    fake.labels, fake.forget = data.labels.cpu(), torch.isin(data.domains.cpu(), torch.tensor(env.forget_idx))
    _, edit = kvw.weaken(data.images, data.labels, data.domains, data.mean, data.std)
    assert edit["stop"] == "forget_at_chance" and edit["rounds"] == 2


def test_ties_break_by_block_then_unit():
    _, _, _, kvw = built(layers=[1, 2])
    scores = {1: torch.tensor([1.0, 3.0, -torch.inf, 3.0]), 2: torch.tensor([3.0, 2.0, 3.0, -torch.inf])}
    assert kvw.choose(scores, 4) == [(1, 1), (1, 3), (2, 0), (2, 2)]
    assert kvw.choose(scores, 10)[-2:] == [(2, 1), (1, 0)]  # never a non-candidate (-inf)


# --- options -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("option", "value", "allowed"), [
    ("factor", 1.5, "a number within [0, 1]"),
    ("factor", -0.5, "a number within [0, 1]"),
    ("unit_share", 0, "a number > 0, < 1"),
    ("max_rounds", 0, "a number >= 1"),
    ("max_rounds", 2.5, "a whole number >= 1"),
    ("score", "ratio", "one of mean_diff, standardised, forget_mean"),
    ("pool", "max", "one of mean, cls"),
    ("stop_mem_drop", -1, "none or a number >= 0"),
    ("layers", "middle", "one of all, early, late, or a non-empty list of block indices >= 0"),
])
def test_bad_options_are_clear_errors(option, value, allowed, capsys):
    from adu_core.cli import main

    code = main(["run", "--dataset", "synthetic", "--forget", "sketch", "--method", "kvw",
                 "--set", f"method.{option}={json.dumps(value)}", "--out", "/nonexistent-never-written"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"adu: error: method.{option}={value!r} is out of range for kvw: {allowed}"


def test_layers_beyond_the_encoder_name_its_block_count(tmp_path):
    with pytest.raises(ConfigError, match=r"the image encoder has 4 MLP blocks, so indices within 0\.\.3"):
        run_experiment(smoke(layers=[2, 4]), tmp_path, progress=False)
    assert resolve_layers("late", 12) == tuple(range(6, 12)) and resolve_layers("early", 6) == (0, 1, 2)
    assert resolve_layers("early", 1) == resolve_layers("late", 1) == (0,)


def test_adu_methods_describes_kvw_and_its_options(capsys):
    from adu_core.cli import main

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("kvw "))
    assert "training-free" in line and "value vectors" in line
    for f in dataclasses.fields(KVWOptions):
        assert f"    method.{f.name}=" in out


def test_defaults_are_the_point_chosen_on_the_validation_pool():
    chosen = json.loads((REPO / "models" / "testbed" / "kvw_defaults.json").read_text())
    assert chosen["data"]["test_set_used"] is False and chosen["data"]["n_val"] > 0
    defaults = dataclasses.asdict(KVWOptions())
    assert {k: defaults[k] for k in chosen["chosen"]} == chosen["chosen"]
    assert set(chosen["chosen"]) == set(defaults)  # every option was chosen (or fixed) there
