"""Attention maps for the attention figure: attention rollout (Abnar & Zuidema, 2020) of the class token.

The paper does not name its attribution method; rollout is our documented choice [G] because it needs no gradients
and no class choice, and it reads the encoder the way the prompts change it. Each block's attention probabilities
are recomputed exactly from the block's input (open_clip runs attention with ``need_weights=False``), averaged over
heads, mixed with the identity for the residual path (0.5·A + 0.5·I, rows renormalised) and multiplied through the
layers. With deep prompts the token set is [CLS, patches, prompts]; prompt tokens take part in the rollout like any
token (their replacement between layers is ignored), and the map shows the CLS row over the patches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .prompting import PromptedViT


def encoder_of(method) -> PromptedViT:
    """The method's prompted image encoder, or the plain frozen encoder (depth 0) for zero-shot CLIP."""
    encoder = getattr(method, "encoder", None)
    if isinstance(encoder, PromptedViT):
        return encoder
    return PromptedViT(method.env.clip.visual, n_ctx=0, depth=0)


def _attention_probs(block, x: torch.Tensor) -> torch.Tensor:
    attn = block.attn
    h = block.ln_1(x)
    q, k, _ = F.linear(h, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    b, n, d = q.shape
    heads = attn.num_heads
    q = q.view(b, n, heads, d // heads).transpose(1, 2)
    k = k.view(b, n, heads, d // heads).transpose(1, 2)
    probs = torch.softmax(q.float() @ k.float().transpose(-1, -2) / (d // heads) ** 0.5, dim=-1)
    return probs.mean(1)  # [B, N, N]


@torch.no_grad()
def attention_rollout(encoder: PromptedViT, images: torch.Tensor) -> torch.Tensor:
    """[B, gh, gw] attention of the class token on each patch after rolling out every layer (rows sum to <= 1)."""
    blocks = encoder.visual.transformer.resblocks
    inputs: list[torch.Tensor] = []
    hooks = [b.register_forward_pre_hook(lambda _m, args: inputs.append(args[0])) for b in blocks]
    try:
        encoder(images)
    finally:
        for h in hooks:
            h.remove()
    rollout = None
    for block, x in zip(blocks, inputs, strict=True):
        a = _attention_probs(block, x)
        a = 0.5 * a + 0.5 * torch.eye(a.shape[-1], device=a.device)
        a = a / a.sum(-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    gh, gw = encoder.visual.grid_size
    cls_to_patches = rollout[:, 0, 1:1 + gh * gw]
    return cls_to_patches.reshape(-1, gh, gw)


def upsample(maps: torch.Tensor, size: int) -> torch.Tensor:
    """Patch-grid maps -> [B, size, size], each scaled to [0, 1] for overlaying on the image."""
    up = F.interpolate(maps[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    lo = up.flatten(1).min(1).values[:, None, None]
    hi = up.flatten(1).max(1).values[:, None, None]
    return (up - lo) / (hi - lo).clamp_min(1e-12)
