"""Deep visual prompt tuning and InstaPG on open_clip's VisionTransformer, without forking it.

The wrapper reuses the frozen encoder's own pieces (``_embeds``, ``transformer.resblocks``, ``_pool``, ``proj``) and
only changes what enters each block:

* layer ``i < depth`` receives ``n_ctx`` learnable prompt tokens appended after the class and patch tokens; they
  replace the prompt outputs of layer ``i - 1`` (deep VPT / IVLP). Layer 0's prompts pass ``ln_pre`` like the image
  tokens. After the last prompted layer the prompt outputs ride along and are dropped before pooling.
* at the layers listed in ``instapg_layers`` the prompts are first turned into instance-wise prompts by InstaPG:
  cross-attention with the learnable prompts as queries and the current patch tokens as keys and values.

With ``depth=0`` the forward pass is exactly open_clip's ``encode_image``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


class InstaPG(nn.Module):
    """Instance-wise Prompt Generator: prompts (queries) attend to patch tokens (keys, values).

    ``norm`` applies LayerNorm to queries and keys/values (pre-LN, like the encoder's own blocks); ``residual`` adds
    the attention output to the learnable prompts. With a residual, the output projection starts at zero so that
    training begins from the static prompts (the Baseline) and learns the instance-wise part.
    """

    def __init__(self, width: int, heads: int, norm: bool = True, residual: bool = True) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"InstaPG: width {width} is not divisible by heads {heads}")
        self.residual = residual
        self.norm_q = nn.LayerNorm(width) if norm else nn.Identity()
        self.norm_kv = nn.LayerNorm(width) if norm else nn.Identity()
        # nn.MultiheadAttention dispatches to fused scaled-dot-product attention.
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        if residual:
            nn.init.zeros_(self.attn.out_proj.weight)
            nn.init.zeros_(self.attn.out_proj.bias)

    def forward(self, prompts: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        """prompts [n_ctx, D] or [B, n_ctx, D]; patches [B, P, D] -> instance-wise prompts [B, n_ctx, D]."""
        batch = patches.shape[0]
        if prompts.dim() == 2:
            prompts = prompts.unsqueeze(0).expand(batch, -1, -1)
        q = self.norm_q(prompts).to(patches.dtype)
        kv = self.norm_kv(patches)
        out = self.attn(q, kv, kv, need_weights=False)[0]
        return prompts + out if self.residual else out


class ReleasedInstaPG(nn.Module):
    """InstaPG as the authors' code builds it (``instapg_form="authors"``): LayerNorm on the prompts (queries) and on
    the patch tokens (keys, values), multi-head attention with a residual onto the *normalised* queries, a
    LayerNorm, then a feed-forward block (width x4, QuickGELU) with a residual. Its output replaces the layer's
    prompts; nothing is zero-initialised, so it changes the prompts from the first step.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"InstaPG: width {width} is not divisible by heads {heads}")
        self.norm_q = nn.LayerNorm(width)
        self.norm_kv = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm_post = nn.LayerNorm(width)
        self.ffn = nn.Sequential(nn.Linear(width, 4 * width), QuickGELU(), nn.Linear(4 * width, width))

    def forward(self, prompts: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        """prompts [n_ctx, D] or [B, n_ctx, D]; patches [B, P, D] -> instance-wise prompts [B, n_ctx, D]."""
        if prompts.dim() == 2:
            prompts = prompts.unsqueeze(0).expand(patches.shape[0], -1, -1)
        q = self.norm_q(prompts).to(patches.dtype)
        kv = self.norm_kv(patches)
        x = self.attn(q, kv, kv, need_weights=False)[0] + q
        x = self.norm_post(x)
        return self.ffn(x) + x


class QuickGELU(nn.Module):
    """x·sigmoid(1.702·x), the activation of OpenAI's CLIP (and of the released InstaPG's feed-forward block)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class PromptedViT(nn.Module):
    """open_clip VisionTransformer + deep vision prompts (+ optional InstaPG). Only the prompts/InstaPG train.

    Args:
        visual: open_clip ``VisionTransformer`` (frozen here: requires_grad off, always in eval mode).
        n_ctx: prompt tokens per layer (paper: 8).
        depth: number of first layers that receive fresh prompts (paper: 9; 0 = plain encoder).
        init_std: prompts start as N(0, init_std^2) (IVLP/PromptSRC use 0.02).
        instapg_layers: prompted layers whose prompts go through InstaPG (negative: counted from the last
            prompted layer, -1 = depth - 1); empty = static prompts only.
        instapg_heads: attention heads of InstaPG (0 = as many as the encoder's blocks).
        instapg_norm / instapg_residual: see :class:`InstaPG` (``instapg_form="paper"``).
        instapg_form: ``"paper"`` (:class:`InstaPG`) or ``"authors"`` (:class:`ReleasedInstaPG`).
        grad_checkpointing: recompute block activations in backward (memory for speed).
    """

    def __init__(
        self,
        visual: nn.Module,
        n_ctx: int = 8,
        depth: int = 9,
        init_std: float = 0.02,
        instapg_layers: Sequence[int] = (),
        instapg_heads: int = 0,
        instapg_norm: bool = True,
        instapg_residual: bool = True,
        grad_checkpointing: bool = False,
        instapg_form: str = "paper",
    ) -> None:
        super().__init__()
        blocks = visual.transformer.resblocks
        if not 0 <= depth <= len(blocks):
            raise ValueError(f"prompt depth {depth} must be within 0..{len(blocks)} (the encoder's layers)")
        if depth and n_ctx < 1:
            raise ValueError("n_ctx must be >= 1 when prompt depth > 0")
        bad = [i for i in instapg_layers if not -depth <= i < depth]
        if bad:
            raise ValueError(f"InstaPG layers {bad} are not prompted layers (0..{depth - 1}, or -{depth}..-1 from "
                             "the last); change them or raise depth")
        if instapg_form not in ("paper", "authors"):
            raise ValueError(f"instapg_form must be paper or authors, not {instapg_form!r}")
        instapg_layers = sorted({i % depth for i in instapg_layers}) if depth else []
        self.visual = visual
        for p in self.visual.parameters():
            p.requires_grad_(False)
        width = visual.conv1.out_channels
        self.n_ctx, self.depth, self.grad_checkpointing = n_ctx, depth, grad_checkpointing
        self.prompts = nn.Parameter(torch.randn(depth, n_ctx, width) * init_std)
        heads = instapg_heads or _encoder_heads(blocks[0])
        self.instapg = nn.ModuleDict({
            str(i): (ReleasedInstaPG(width, heads) if instapg_form == "authors"
                     else InstaPG(width, heads, norm=instapg_norm, residual=instapg_residual))
            for i in instapg_layers
        })
        self.visual.eval()

    def train(self, mode: bool = True) -> PromptedViT:
        super().train(mode)
        self.visual.eval()  # frozen encoder: dropout/patch-dropout stay off
        return self

    @property
    def output_dim(self) -> int:
        return int(self.visual.output_dim)

    @property
    def width(self) -> int:
        return int(self.visual.conv1.out_channels)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images [B, 3, H, W] -> unnormalised image embeddings [B, output_dim]."""
        return self.encode(images)[0]

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images -> (embeddings [B, output_dim], pooled class token before the projection [B, width])."""
        v = self.visual
        x = v._embeds(images)
        n_tokens = x.shape[1]
        for i, block in enumerate(v.transformer.resblocks):
            if i < self.depth:
                x = torch.cat([x[:, :n_tokens], self._layer_prompts(i, x[:, 1:n_tokens])], dim=1)
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        pooled, _ = v._pool(x[:, :n_tokens])
        return (pooled @ v.proj if v.proj is not None else pooled), pooled

    def _layer_prompts(self, i: int, patches: torch.Tensor) -> torch.Tensor:
        prompts = self.prompts[i]
        if i == 0:
            prompts = self.visual.ln_pre(prompts)
        key = str(i)
        if key in self.instapg:
            return self.instapg[key](prompts, patches).to(patches.dtype)
        return prompts.to(patches.dtype).unsqueeze(0).expand(patches.shape[0], -1, -1)


def _encoder_heads(block: nn.Module) -> int:
    attn = block.attn
    return int(getattr(attn, "num_heads", 1))


def instapg_memory_per_image(model: PromptedViT, images: torch.Tensor) -> dict[str, float]:
    """Activation memory InstaPG keeps for backward, per image, measured on ``images`` (bytes).

    Counts the tensors autograd saves inside the InstaPG modules (patch-token norms, K/V projections, attention
    probabilities), deduplicated by storage. Per layer this is a few patch-sized tensors per image: unlike
    CoCoOp's per-instance *text* prompts, which need a text-encoder pass per image and class, InstaPG's cost does
    not grow with the number of classes.
    """
    active = [False]
    seen: dict[int, int] = {}
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}  # not activations

    def pack(t: torch.Tensor) -> torch.Tensor:
        if active[0] and t.untyped_storage().data_ptr() not in weights:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    def enter(*_):
        active[0] = True

    def leave(*_):
        active[0] = False

    hooks = [h for m in model.instapg.values()
             for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.enable_grad():
            model(images)
    finally:
        for h in hooks:
            h.remove()
    return {"bytes_per_image": sum(seen.values()) / len(images), "layers": float(len(model.instapg))}
