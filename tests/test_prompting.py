"""The prompted ViT and InstaPG on a random-initialised open_clip model."""

from __future__ import annotations

import pytest
import torch

from adu_core.backbones import load_clip
from adu_core.prompting import InstaPG, PromptedViT, instapg_memory_per_image


@pytest.fixture(scope="module")
def clip():
    torch.manual_seed(0)
    return load_clip("adu-tiny").model


def images(n=3, size=32, seed=1):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_depth_zero_equals_encode_image(clip):
    x = images()
    vit = PromptedViT(clip.visual, n_ctx=4, depth=0)
    torch.testing.assert_close(vit(x), clip.encode_image(x), atol=1e-5, rtol=0)


def test_depth_zero_equals_encode_image_vit_b16_layout():
    # The real paper architecture (random weights): 12 layers, 768 wide, 224 px.
    model = load_clip("ViT-B-16").model
    x = torch.randn(1, 3, 224, 224)
    vit = PromptedViT(model.visual, depth=0)
    with torch.no_grad():
        torch.testing.assert_close(vit(x), model.encode_image(x), atol=1e-5, rtol=0)


def test_prompts_change_features_and_only_prompts_train(clip):
    x = images()
    vit = PromptedViT(clip.visual, n_ctx=4, depth=3, instapg_layers=(1, 2))
    trainable = {n for n, p in vit.named_parameters() if p.requires_grad}
    assert "prompts" in trainable and all(n.startswith(("prompts", "instapg.")) for n in trainable)
    assert not any(p.requires_grad for p in clip.visual.parameters())
    out = vit(x)
    assert not torch.allclose(out, clip.encode_image(x), atol=1e-4)
    out.sum().backward()
    assert vit.prompts.grad is not None and vit.prompts.grad.abs().sum() > 0
    assert all(p.grad is None for p in clip.visual.parameters())


def test_later_layer_prompts_replace_previous_outputs(clip):
    # Changing the prompts of layer 2 must change the output; the number of tokens entering each block stays
    # 1 + patches + n_ctx (prompts are replaced, not stacked).
    vit = PromptedViT(clip.visual, n_ctx=4, depth=3)
    seen = []
    hooks = [b.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[1])) for b in clip.visual.transformer.resblocks]
    x = images()
    base = vit(x).detach()
    with torch.no_grad():
        vit.prompts[2].add_(1.0)
    assert not torch.allclose(vit(x), base)
    for h in hooks:
        h.remove()
    n_patches = (32 // 8) ** 2
    assert set(seen) == {1 + n_patches + 4}


def test_encoder_stays_in_eval_mode(clip):
    vit = PromptedViT(clip.visual, n_ctx=2, depth=2)
    vit.train()
    assert vit.training and not clip.visual.training
    assert all(not m.training for m in clip.visual.modules())


def test_instapg_is_instance_wise_and_starts_as_static_prompts():
    torch.manual_seed(0)
    gen = InstaPG(width=16, heads=2, residual=True)
    prompts = torch.randn(4, 16)
    patches = torch.randn(3, 9, 16)
    out = gen(prompts, patches)
    assert out.shape == (3, 4, 16)
    # zero-initialised output projection: starts exactly at the learnable prompts
    torch.testing.assert_close(out, prompts.expand(3, -1, -1))
    torch.nn.init.normal_(gen.attn.out_proj.weight)
    out = gen(prompts, patches)
    assert not torch.allclose(out[0], out[1])  # different images -> different prompts


def test_instapg_without_residual_attends_to_patches():
    torch.manual_seed(0)
    gen = InstaPG(width=8, heads=1, norm=False, residual=False)
    prompts = torch.randn(2, 8)
    patches = torch.randn(1, 5, 8)
    # Reference: plain scaled dot-product cross-attention with the module's own projections.
    w_q, w_k, w_v = gen.attn.in_proj_weight.chunk(3)
    b_q, b_k, b_v = gen.attn.in_proj_bias.chunk(3)
    q, k, v = prompts @ w_q.T + b_q, patches[0] @ w_k.T + b_k, patches[0] @ w_v.T + b_v
    attn = torch.softmax(q @ k.T / 8 ** 0.5, dim=-1)
    ref = (attn @ v) @ gen.attn.out_proj.weight.T + gen.attn.out_proj.bias
    torch.testing.assert_close(gen(prompts, patches)[0], ref, atol=1e-5, rtol=1e-5)


def test_bad_layer_choices_are_clear_errors(clip):
    with pytest.raises(ValueError, match="within 0..4"):
        PromptedViT(clip.visual, depth=9)
    with pytest.raises(ValueError, match="not prompted layers"):
        PromptedViT(clip.visual, depth=2, instapg_layers=(3,))


def test_instapg_memory_is_measured_and_scales_with_layers_not_batch(clip):
    one = PromptedViT(clip.visual, n_ctx=4, depth=3, instapg_layers=(1,))
    two = PromptedViT(clip.visual, n_ctx=4, depth=3, instapg_layers=(1, 2))
    m1 = instapg_memory_per_image(one, images(4))["bytes_per_image"]
    m2 = instapg_memory_per_image(two, images(4))["bytes_per_image"]
    m2_big_batch = instapg_memory_per_image(two, images(8))["bytes_per_image"]
    n_patches, width = 16, 64
    # at least the normed patch tokens (keys/values input) of each layer, fp32
    assert m1 >= n_patches * width * 4
    assert m2 == pytest.approx(2 * m1, rel=0.05)
    assert m2_big_batch == pytest.approx(m2, rel=0.05)
    assert instapg_memory_per_image(PromptedViT(clip.visual, depth=3, n_ctx=4), images(2))["bytes_per_image"] == 0
