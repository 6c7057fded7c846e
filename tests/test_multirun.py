"""Several runs in one pass over the shared frozen backbone give the results of the same runs trained alone."""

from __future__ import annotations

import json

import pytest
import torch

from adu_core.backbones import load_clip, model_config, save_checkpoint
from adu_core.config import make_config
from adu_core.multirun import MultiPromptedViT, plan_groups, run_grid
from adu_core.prompting import PromptedViT
from adu_core.train import ConfigError, run_experiment
from tests._train_helpers import as_stored


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A tiny CLIP saved to a file: its weights do not depend on the run's seed (as pretrained weights)."""
    torch.manual_seed(0)
    clip = load_clip("adu-tiny").model
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(clip, {"name": "adu-tiny", **model_config("adu-tiny")}, path, half=False)
    return str(path)


def smoke(**kw):
    # CPU and fp32 wherever the tests run: the equality contract is checked where summation order is the only
    # difference (benchmarks/multirun_equivalence.py reports the bf16 GPU differences)
    return make_config("synthetic", **{"forget": ("sketch",), "epochs": 2, "device": "cpu", **kw})


def test_multi_prompted_vit_rows_use_their_own_run():
    torch.manual_seed(0)
    visual = load_clip("adu-tiny").model.visual
    members = [PromptedViT(visual, n_ctx=3, depth=3, instapg_layers=layers) for layers in ((1, 2), (), (2,))]
    for m in members:  # non-zero InstaPG outputs, so each run's prompts really depend on its own images
        for g in m.instapg.values():
            torch.nn.init.normal_(g.attn.out_proj.weight, std=0.5)
    group = MultiPromptedViT(members)
    x = torch.randn(6, 3, 32, 32)
    out = group(x)
    alone = torch.cat([m(c) for m, c in zip(members, x.chunk(3), strict=True)])
    torch.testing.assert_close(out, alone, atol=1e-5, rtol=1e-5)
    # gradients: the summed loss of the pass gives each run the gradient of its own loss
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    grouped_grads = [m.prompts.grad.clone() for m in members]
    for m in members:
        m.zero_grad()
    for m, c, w in zip(members, x.chunk(3), weights.chunk(3), strict=True):
        (m(c) * w).sum().backward()
        torch.testing.assert_close(grouped_grads.pop(0), m.prompts.grad, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="equal runs"):
        group(x[:5])
    with pytest.raises(ValueError, match="same prompt length"):
        MultiPromptedViT([members[0], PromptedViT(visual, n_ctx=2, depth=3)])


def test_grid_in_one_pass_matches_runs_trained_alone(tiny_checkpoint, tmp_path, monkeypatch):
    # two seeds (different few-shot sets and batches), three forget sets, ADU and Baseline (no InstaPG, no DDL)
    cfgs = [smoke(seed=1, pretrained=tiny_checkpoint), smoke(seed=2, forget=("photo",), pretrained=tiny_checkpoint),
            smoke(seed=1, forget=("cartoon", "painting"), method="baseline", pretrained=tiny_checkpoint)]
    writes: dict[str, list] = {}
    import adu_core.results
    import adu_core.train

    def recording(path, data, _write=adu_core.results.write_json_atomic):
        writes.setdefault(str(path), []).append(as_stored(data))
        _write(path, data)

    for module in (adu_core.results, adu_core.train):
        monkeypatch.setattr(module, "write_json_atomic", recording)
    grouped = run_grid(cfgs, [tmp_path / f"g{i}" for i in range(3)], max_runs=3, progress=False)
    assert all(r["timings"]["multirun"]["runs"] == 3 for r in grouped)
    # each run.json is written once, whole: a worker that finds it without taking the lock reads the final record
    for i, r in enumerate(grouped):
        assert writes[str(tmp_path / f"g{i}" / "run.json")] == [as_stored(r)]
    monkeypatch.undo()
    for i, (cfg, g) in enumerate(zip(cfgs, grouped, strict=True)):
        alone = run_experiment(cfg, tmp_path / f"a{i}", progress=False)
        assert g["config"] == alone["config"]
        assert [h["epoch"] for h in g["history"]] == [1, 2]
        for hg, ha in zip(g["history"], alone["history"], strict=True):
            assert hg == pytest.approx(ha, rel=1e-4, abs=1e-6)
        for key in ("mem", "for", "h"):
            assert g["metrics"][key] == pytest.approx(alone["metrics"][key], abs=1e-6)
        state_g = torch.load(tmp_path / f"g{i}" / "trained.pt", weights_only=True)
        state_a = torch.load(tmp_path / f"a{i}" / "trained.pt", weights_only=True)
        assert state_g.keys() == state_a.keys()
        for k in state_a:
            torch.testing.assert_close(state_g[k], state_a[k], atol=1e-5, rtol=1e-4)
        assert not (tmp_path / f"g{i}" / "checkpoint.pt").exists()
        saved = json.loads((tmp_path / f"g{i}" / "run.json").read_text())
        assert saved["timings"]["multirun"]["runs"] == 3
    # the store makes the grid idempotent: a second call reads the results back
    again = run_grid(cfgs, [tmp_path / f"g{i}" for i in range(3)], max_runs=3, progress=False)
    assert [a["metrics"] for a in again] == [g["metrics"] for g in grouped]


def test_groups_only_join_compatible_runs(tiny_checkpoint):
    a = smoke(seed=1, pretrained=tiny_checkpoint)
    cfgs = [a, smoke(seed=2, pretrained=tiny_checkpoint), smoke(seed=3, pretrained=tiny_checkpoint),
            smoke(seed=1, pretrained=tiny_checkpoint, epochs=3),  # another protocol
            smoke(seed=1), smoke(seed=2),  # random weights depend on the seed: never shared
            smoke(seed=1, method="zeroshot")]  # not a prompt method
    assert plan_groups(cfgs, max_runs=2) == [[0, 1], [2], [3], [4], [5], [6]]
    from adu_core.multirun import run_group

    with pytest.raises(ConfigError, match="cannot share a pass"):
        run_group([a, cfgs[3]], ["x", "y"], progress=False)
