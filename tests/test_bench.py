"""The benchmark (`python -m benchmarks.bench`) on CPU with the tiny model: the JSON contract, FLOP counting, host-sync freedom of the step.

No timing is asserted: speed targets are measured by the benchmark scripts, not by tests.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import torch

from adu_core.backbones import load_clip
from adu_core.losses import memorize_loss
from adu_core.train import Trainer
from benchmarks import bench


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    clip, train_tf, eval_tf, tok = load_clip("adu-tiny")
    clip.requires_grad_(False)
    cfg = bench.bench_config("adu-tiny", len(clip.visual.transformer.resblocks), batch=8)
    env = bench.bench_env(clip, tok, cfg, torch.device("cpu"), n_classes=7)
    return clip, tok, cfg, env


def test_bench_json_on_cpu(capsys):
    code = bench.main(["--json", "--device", "cpu", "--batch", "8", "--steps", "2", "--naive-steps", "2", "--repeats", "1",
                 "--workers", "0", "--eval-images", "16", "--eval-batch", "8", "--runs", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    r = json.loads(out)  # stdout is exactly one JSON object
    from adu_core.train import cpu_has_bf16

    assert r["model"] == "adu-tiny" and r["device_type"] == "cpu"
    assert r["precision"] == ("bfloat16" if cpu_has_bf16() else "float32")  # what the trainer's auto picks
    for key in ("ours_images_per_s", "naive_images_per_s", "ratio", "eval_images_per_s"):
        assert r[key] > 0
    assert r["ratio"] == pytest.approx(r["train"]["ratio_runs"][0])  # one repeat: the one pair's ratio
    assert r["peak_memory_bytes"] == {"ours": None, "naive": None}  # CPU: no allocator statistics
    assert r["saved_activation_bytes"]["ours_per_image"] > 0
    assert r["flops_per_image"]["train_step"] > r["flops_per_image"]["forward"] > 0
    assert r["peak_bf16_tflops"] is None and r["fraction_of_peak"] is None
    assert r["multirun"]["runs"] == 2 and r["multirun"]["ratio"] > 0
    assert r["eval"]["images"] == 16
    assert r["train"]["checkpoint_s"] > 0
    assert r["grid_estimate_office_home"]["one_run_at_a_time"]["runs"] == 210


def test_bench_rejects_bad_sizes(capsys):
    assert bench.main(["--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err


def analytic_forward_flops(width, layers, patches, n_ctx, depth, instapg_layers, patch, embed, classes, domains):
    """Matrix-product FLOPs of one image through the prompted ViT and the heads (2 per multiply-add)."""
    t = 1 + patches + n_ctx  # prompts ride along after the last prompted layer
    block = 24 * t * width**2 + 4 * t * t * width
    gen = 2 * n_ctx * width**2 + 4 * patches * width**2 + 4 * n_ctx * patches * width + 2 * n_ctx * width**2
    stem = 2 * patches * 3 * patch * patch * width
    head = 2 * width * embed + 2 * embed * classes + 2 * embed * domains
    return layers * block + len(instapg_layers) * gen + stem + head


def test_flop_count_matches_the_architecture(tiny):
    clip, _, cfg, env = tiny
    method = bench.make_method(env)
    x = torch.rand(2, 3, 32, 32)
    flops = bench.step_flops(method, x, torch.tensor([0, 1]), torch.tensor([0, 1]))
    expected = analytic_forward_flops(64, 4, 16, cfg.n_ctx, cfg.prompt_depth, range(1, cfg.prompt_depth), 8, 32, 7, 4)
    assert flops["forward"] == pytest.approx(expected, rel=0.02)
    # backward through frozen layers: activation gradients only (~1x forward for products, 2x for attention)
    assert 1.8 * flops["forward"] < flops["train_step"] < 3.2 * flops["forward"]


def test_saved_activations_grow_with_batch_and_shrink_in_bf16(tiny):
    _, _, _, env = tiny
    method = bench.make_method(env)
    y, d = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 3])
    x = torch.rand(4, 3, 32, 32)
    fp32_2 = bench.saved_activation_bytes(method, x[:2], y[:2], d[:2], None)
    fp32_4 = bench.saved_activation_bytes(method, x, y, d, None)
    bf16_4 = bench.saved_activation_bytes(method, x, y, d, torch.bfloat16)
    assert fp32_4 > 1.8 * fp32_2
    assert bf16_4 < fp32_4


def test_host_sync_counter_flags_what_stalls_a_gpu():
    x = torch.randn(6, 3)
    with bench.HostSyncCounter() as c:
        x[x > 0]  # boolean mask -> nonzero
        x.sum().item()
        torch.unique(torch.tensor([1, 1, 2]))
        memorize_loss(x, torch.zeros(6, dtype=torch.long), mask=x[:, 0] > 0)  # masked: no sync
    assert c.ops == ["aten.index[bool mask]", "aten._local_scalar_dense", "aten._unique2"]


def test_training_step_has_no_host_sync(tiny):
    """The step (batch gather + device augmentation, forward, ADU loss, backward, SGD) never makes the host wait."""
    clip, tok, cfg, env = tiny
    method = bench.make_method(env)
    data = bench.synthetic_train_data(16, 32, 4, 7, torch.device("cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, env, data, Path(tmp) / "c.pt", progress=False)
        gen = torch.Generator()
        idx = trainer.epoch_batches(0, gen)[0]
        opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
        method.train()
        with bench.HostSyncCounter() as counter:
            for _ in range(2):  # the second step also exercises the momentum buffers
                terms = trainer.step(method, opt, idx, gen)
    assert set(terms) >= {"memorize", "forget", "domain_ce", "mmd2"}
    assert counter.ops == []


def test_epoch_syncs_do_not_grow_with_steps(tiny):
    """Whatever the trainer syncs (batch planning on the host, the epoch's history) happens per epoch, not per step."""
    clip, tok, cfg, env = tiny
    counts = []
    for steps in (1, 3):
        method = bench.make_method(env)
        data = bench.synthetic_train_data(8 * steps, 32, 4, 7, torch.device("cpu"))
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(cfg, env, data, Path(tmp) / "c.pt", progress=False)
            with bench.HostSyncCounter() as counter:
                trainer.fit_gradient(method)
        assert len(trainer.history) == 1
        counts.append(len(counter.ops))
    assert counts[0] == counts[1]


def test_peak_table_and_grid_estimate(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 PCIe")
    assert bench.peak_bf16_tflops(torch.device("cuda"))[0] == 756.0
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    assert bench.peak_bf16_tflops(torch.device("cuda"))[0] == 989.4
    assert bench.peak_bf16_tflops(torch.device("cpu"))[0] is None
    est = bench.grid_estimate(1000.0, 5000.0, overhead_s=0.0, feature_method_s=0.0)
    assert est["runs"] == 5 * 14 * 3
    assert est["train_s_per_run"] == pytest.approx(50 * 2080 / 1000)
    assert est["hours"] == pytest.approx(3 * 42 * (104.0 + (3123 + 2080) / 5000) / 3600)  # the committed split


def test_live_memory_tracker_counts_live_storages_once():
    with bench.LiveMemoryTracker() as t:
        a = torch.zeros(1000)  # 4,000 bytes
        v = a[:10]  # a view: same storage
        b = torch.ones(4000)  # 16,000 bytes, then freed
        del b
        c = a + 1  # 4,000 more
    assert t.peak == 20_000 and t.current == 8_000
    del v, c


def test_memory_report_of_a_tiny_run():
    r = bench.memory_report("adu-tiny", "cpu", batch=32, n_train=64, n_classes=7, precisions=("fp32",))
    plain, ckpt = r["configs"]["fp32"], r["configs"]["fp32+ckpt"]
    assert plain["predicted_peak_bytes"] > plain["persistent_bytes"]["clip_weights"]
    assert plain["step_bytes_per_image"] >= plain["saved_activation_bytes_per_image"] > 0
    assert ckpt["saved_activation_bytes_per_image"] < plain["saved_activation_bytes_per_image"]
    assert plain["max_batch_in_budget"] > 32


def test_ratio_is_the_median_of_paired_ratios_and_a_wide_spread_is_flagged():
    """A load that comes and goes: the paired ratios stay put, and when they do not, the summary says so."""
    steady = bench.paired_ratios([40.0, 20.0, 41.0], [10.0, 5.0, 10.0])  # both halves slowed alike in repeat 2
    assert steady["ratio"] == pytest.approx(4.0) and steady["ratio_reliable"]
    noisy = bench.paired_ratios([40.0, 4.0, 41.0], [10.0, 10.0, 2.0])
    assert noisy["ratio_runs"] == pytest.approx([4.0, 0.4, 20.5]) and noisy["ratio"] == pytest.approx(4.0)
    assert not noisy["ratio_reliable"] and noisy["ratio_spread"] == pytest.approx(20.5 / 0.4)
    warning = bench.spread_warning("train", noisy)
    assert len(warning) == 1 and "rerun on an idle machine" in warning[0] and "0.40-20.50x" in warning[0]
    assert bench.spread_warning("train", steady) == []
