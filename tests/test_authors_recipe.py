"""The authors' released-code recipe: each switch against a known answer, and the preset as a whole."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from adu_core.backbones import load_clip
from adu_core.config import RECIPES, make_config
from adu_core.full_image import canvas_size, random_resized_crop_full, to_canvas
from adu_core.losses import ENTROPY_EPS, forget_loss, mmd2, pairwise_mmd2
from adu_core.pipeline import balanced_batches, random_batches, steps_per_epoch
from adu_core.prompting import PromptedViT, ReleasedInstaPG
from adu_core.text_prompting import PromptedTextEncoder


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    loaded = load_clip("adu-tiny")
    loaded.model.requires_grad_(False)  # as every run's environment holds it (train.build_env)
    return loaded


# --- L_forget --------------------------------------------------------------------------------------------------------
LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]])


def _grad(kind: str) -> torch.Tensor:
    z = LOGITS.clone().requires_grad_(True)
    forget_loss(z, kind=kind).backward()
    return z.grad


def test_uniform_ce_gradient_is_p_minus_uniform():
    p = F.softmax(LOGITS, dim=-1)
    torch.testing.assert_close(_grad("uniform_ce"), (p - 1 / 3) / len(LOGITS))


def test_neg_entropy_gradient_by_hand():
    # f = sum_j p_j log(p_j + eps); df/dz_k = sum_j p_j (delta_jk - p_k) g_j with g_j = log(p_j + eps) + p_j/(p_j + eps)
    p = F.softmax(LOGITS, dim=-1)
    g = torch.log(p + ENTROPY_EPS) + p / (p + ENTROPY_EPS)
    expected = p * (g - (p * g).sum(-1, keepdim=True)) / len(LOGITS)
    torch.testing.assert_close(_grad("neg_entropy"), expected)
    assert not torch.allclose(_grad("neg_entropy"), _grad("uniform_ce"), atol=1e-3)  # other gradients ...


@pytest.mark.parametrize("kind", ["uniform_ce", "neg_entropy"])
def test_both_forget_losses_are_minimal_at_a_flat_prediction(kind):
    flat = torch.zeros(2, 3, requires_grad=True)
    forget_loss(flat, kind=kind).backward()
    torch.testing.assert_close(flat.grad, torch.zeros(2, 3), atol=1e-7, rtol=0)  # ... the same optimum
    assert forget_loss(LOGITS, kind=kind) > forget_loss(torch.zeros(2, 3), kind=kind)
    with pytest.raises(ValueError, match="unknown forget loss"):
        forget_loss(LOGITS, kind="kl")


def test_neg_entropy_value():
    p = F.softmax(LOGITS, dim=-1)
    expected = (p * torch.log(p + ENTROPY_EPS)).sum(-1).mean()
    torch.testing.assert_close(forget_loss(LOGITS, kind="neg_entropy"), expected)


# --- the MMD as released -------------------------------------------------------------------------------------------
def test_pairwise_mmd_with_median_bandwidth_by_hand():
    # 1-D "logits": domain 0 at {0, 1}, domain 1 at {3, 5}, domain 2 has one sample (left out: it needs two).
    x = torch.tensor([[0.0], [1.0], [3.0], [5.0], [9.0]])
    d = torch.tensor([0, 0, 1, 1, 2])
    # cross distances 3, 5, 2, 4 -> median (lower middle, as torch.median) 3 -> k(a, b) = exp(-(a-b)^2 / (2 * 3^2))
    def k(a: float, b: float) -> float:
        return math.exp(-((a - b) ** 2) / (2 * 9.0))
    xa, xb = (0.0, 1.0), (3.0, 5.0)
    kaa = sum(k(a, b) for a in xa for b in xa) / 4
    kbb = sum(k(a, b) for a in xb for b in xb) / 4
    kab = sum(k(a, b) for a in xa for b in xb) / 4
    assert pairwise_mmd2(x, d, "gaussian", (2.0,)).item() == pytest.approx(kaa + kbb - 2 * kab, rel=1e-6)
    assert mmd2(x, d, "gaussian", (2.0,), median="pair").item() == pytest.approx(kaa + kbb - 2 * kab, rel=1e-6)


def test_pairwise_mmd_averages_pairs_and_differs_from_the_batch_median():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(12, 5, generator=g)
    d = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    per_pair = [pairwise_mmd2(x[(d == a) | (d == b)], d[(d == a) | (d == b)], "gaussian", (2.0,))
                for a in range(4) for b in range(a + 1, 4)]
    assert pairwise_mmd2(x, d, "gaussian", (2.0,)).item() == pytest.approx(float(torch.stack(per_pair).mean()))
    assert mmd2(x, d, "gaussian", (2.0,), median="batch").item() != pytest.approx(
        mmd2(x, d, "gaussian", (2.0,), median="pair").item(), rel=1e-3)


# --- batches --------------------------------------------------------------------------------------------------------
def test_steps_per_epoch_at_the_released_batch():
    assert steps_per_epoch(2080, 4, 128, "random") == 16  # Office-Home's 65 x 4 x 8 pool
    assert steps_per_epoch(2080, 4, 32, "balanced") == 65
    assert steps_per_epoch(224, 4, 128, "random") == 1  # the testbed's 7 x 4 x 8 pool
    assert steps_per_epoch(224, 4, 32, "balanced") == 7
    gen = torch.Generator().manual_seed(0)
    batches = random_batches(2080, 128, gen)
    assert len(batches) == 16 and all(len(b) == 128 for b in batches)
    assert len(set(torch.cat(batches).tolist())) == 16 * 128  # a permutation: no image twice in an epoch
    assert len(balanced_batches(torch.arange(2080) % 4, 32, gen)) == 65
    assert [len(b) for b in random_batches(100, 128, gen)] == [100]


# --- InstaPG as released ------------------------------------------------------------------------------------------------
def _layer_inputs(vit: PromptedViT, x: torch.Tensor) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    hooks = [b.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
             for b in vit.visual.transformer.resblocks]
    try:
        vit(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def test_released_instapg_at_one_layer_leaves_the_other_layers_prompts_untouched(tiny):
    clip = tiny.model
    depth, n_ctx = 3, 2
    vit = PromptedViT(clip.visual, n_ctx=n_ctx, depth=depth, instapg_layers=(-1,), instapg_form="authors")
    assert list(vit.instapg) == [str(depth - 1)] and isinstance(vit.instapg[str(depth - 1)], ReleasedInstaPG)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    inputs = _layer_inputs(vit, x)
    n_tokens = inputs[0].shape[1] - n_ctx
    static = [clip.visual.ln_pre(vit.prompts[0]), vit.prompts[1]]
    for i in range(depth - 1):  # the layers before InstaPG get their static prompts, the same for every image
        for b in range(2):
            torch.testing.assert_close(inputs[i][b, n_tokens:], static[i].detach(), atol=1e-6, rtol=0)
    last = inputs[depth - 1][:, n_tokens:]
    assert not torch.allclose(last[0], last[1], atol=1e-4)  # instance-wise at the InstaPG layer
    assert not torch.allclose(last[0], vit.prompts[depth - 1].detach(), atol=1e-4)  # it replaces the prompts


def test_released_instapg_block_by_hand():
    torch.manual_seed(0)
    block = ReleasedInstaPG(8, 2)
    prompts, patches = torch.randn(3, 8), torch.randn(2, 5, 8)
    q = block.norm_q(prompts).unsqueeze(0).expand(2, -1, -1)
    kv = block.norm_kv(patches)
    x = block.norm_post(block.attn(q, kv, kv, need_weights=False)[0] + q)
    h = block.ffn[0](x)
    expected = block.ffn[2](h * torch.sigmoid(1.702 * h)) + x
    torch.testing.assert_close(block(prompts, patches), expected)


# --- text prompts -----------------------------------------------------------------------------------------------------
def test_text_prompts_set_to_the_placeholder_word_reproduce_the_frozen_text_encoder(tiny):
    clip, tok = tiny.model, tiny.tokenizer
    names = ("dog", "house")
    enc = PromptedTextEncoder(clip, tok, names, n_ctx=3, depth=1)
    x_id = tok(["X"])[0, 1]
    with torch.no_grad():
        enc.prompts[0] = clip.token_embedding.weight[x_id].expand(3, -1)
    ref = F.normalize(clip.encode_text(tok([f"X X X {c}." for c in names])).float(), dim=-1)
    enc.eval()
    with torch.no_grad():
        torch.testing.assert_close(enc(), ref, atol=1e-5, rtol=0)


def test_deep_text_prompts_train_and_the_tower_stays_frozen(tiny):
    clip, tok = tiny.model, tiny.tokenizer
    n_layers = len(clip.transformer.resblocks)
    enc = PromptedTextEncoder(clip, tok, ("dog", "house", "person"), n_ctx=2, depth=99)
    assert enc.depth == n_layers and enc.prompts.shape[0] == n_layers  # capped at the text encoder's layers
    enc.train()
    feats = enc()
    assert feats.shape == (3, clip.text_projection.shape[1])
    feats.sum().backward()
    assert enc.prompts.grad is not None and bool((enc.prompts.grad[1:].abs().sum((1, 2)) > 0).all())
    assert all(p.grad is None for p in clip.parameters())
    with pytest.raises(ValueError, match="do not fit"):
        PromptedTextEncoder(clip, tok, ("dog",), n_ctx=200, depth=1)


# --- whole images, bicubic ---------------------------------------------------------------------------------------------
def test_full_image_crops_stay_inside_the_picture():
    from PIL import Image

    size = 16
    side = canvas_size(size)
    ramp = torch.linspace(0, 255, 40).round().to(torch.uint8).view(1, 1, 40).expand(3, 30, 40)
    canvas, (h, w) = to_canvas(Image.fromarray(ramp.permute(1, 2, 0).numpy()), size)
    assert (h, w) == (16, 21) and canvas.shape == (3, side, side)  # shorter side 16, longer side within 4/3 of it
    gen = torch.Generator().manual_seed(0)
    batch = canvas[None].float().expand(64, -1, -1, -1) / 255
    valid = torch.tensor([[h, w]]).expand(64, -1)
    crops = random_resized_crop_full(batch, valid, gen, size)
    assert crops.shape == (64, 3, size, size) and crops.min() >= 0 and crops.max() <= 1
    whole = random_resized_crop_full(batch[:1], valid[:1], gen, size, scale=(1.0, 1.0), ratio=(w / h, w / h))
    left, right = float(whole[0, 0, :, 0].mean()), float(whole[0, 0, :, -1].mean())
    assert min(left, right) < 0.1 and max(left, right) > 0.9  # the whole ramp, flipped or not


# --- the preset ---------------------------------------------------------------------------------------------------------
def test_authors_code_preset_resolves_and_explicit_values_win():
    cfg = make_config("pacs", "testbed", recipe="authors_code")
    assert cfg.recipe == "authors_code" and cfg.text_ctx == cfg.n_ctx == 4
    assert (cfg.batch_size, cfg.sampler, cfg.forget_loss, cfg.lam) == (128, "random", "neg_entropy", 0.5)
    assert make_config("synthetic", "paper", recipe="authors_code").text_ctx == 8
    assert make_config("pacs", "testbed", recipe="authors_code", batch_size=64).batch_size == 64
    paper = make_config("pacs", "testbed")
    assert paper.recipe == "paper" and all(getattr(paper, k) != v for k, v in RECIPES["authors_code"].items()
                                           if not str(v).startswith("@"))
    with pytest.raises(ValueError, match="unknown recipe"):
        make_config("pacs", "testbed", recipe="released")


def test_authors_code_runs_end_to_end_and_records_its_switches(tmp_path):
    from adu_core.data import get_dataset
    from adu_core.train import run_experiment

    forget = (get_dataset("synthetic").domains[0],)
    for method in ("baseline", "adu"):
        cfg = make_config("synthetic", "smoke", method=method, forget=forget, recipe="authors_code", epochs=1)
        run = run_experiment(cfg, tmp_path / method, progress=False)
        assert run["config"]["recipe"] == "authors_code" and run["overrides"]["forget_loss"] == "neg_entropy"
        assert run["history"][0]["forget"] < 0  # minus an entropy
        assert 0 <= run["metrics"]["h"] <= 100
    assert run["overrides"]["domain_head"] == "domains_x_classes" and "domain_acc_head" in run["metrics"]
