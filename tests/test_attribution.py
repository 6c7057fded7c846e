from __future__ import annotations

import torch
import torch.nn.functional as F

from adu_core.attribution import _attention_probs, attention_rollout, upsample
from adu_core.backbones import load_clip
from adu_core.prompting import PromptedViT


def test_recomputed_attention_matches_the_block_output():
    torch.manual_seed(0)
    block = load_clip("adu-tiny").model.visual.transformer.resblocks[0]
    x = torch.randn(2, 7, 64)
    probs = _attention_probs(block, x)
    assert torch.allclose(probs.sum(-1), torch.ones(2, 7), atol=1e-5)
    # Rebuild the attention output from the recomputed per-head probabilities: it must equal the block's own.
    attn = block.attn
    h = block.ln_1(x)
    q, k, v = F.linear(h, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    heads = attn.num_heads
    v = v.view(2, 7, heads, -1).transpose(1, 2)
    qh = q.view(2, 7, heads, -1).transpose(1, 2)
    kh = k.view(2, 7, heads, -1).transpose(1, 2)
    per_head = torch.softmax(qh @ kh.transpose(-1, -2) / qh.shape[-1] ** 0.5, dim=-1)
    torch.testing.assert_close(per_head.mean(1), probs, atol=1e-5, rtol=1e-5)
    out = (per_head @ v).transpose(1, 2).reshape(2, 7, -1)
    out = attn.out_proj(out)
    ref = attn(h, h, h, need_weights=False)[0]
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_rollout_shapes_and_prompts_change_the_map():
    torch.manual_seed(0)
    visual = load_clip("adu-tiny").model.visual
    images = torch.randn(3, 3, 32, 32)
    plain = attention_rollout(PromptedViT(visual, depth=0), images)
    assert plain.shape == (3, 4, 4) and (plain > 0).all() and (plain.flatten(1).sum(1) <= 1 + 1e-5).all()
    prompted = PromptedViT(visual, n_ctx=4, depth=3, init_std=1.0)
    assert not torch.allclose(attention_rollout(prompted, images), plain)
    up = upsample(plain, 32)
    assert up.shape == (3, 32, 32) and up.min() == 0 and torch.allclose(up.flatten(1).max(1).values, torch.ones(3))
