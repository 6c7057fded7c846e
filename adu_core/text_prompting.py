"""Learnable deep text prompts on open_clip's frozen text tower (independent vision–language prompting).

The paper's text side is frozen ("a photo of a {class}."); the authors' released code also trains text prompts, and
this module is that switch (``RunConfig.text_ctx``). Each class prompt reads ``<sot> X X … X {class}. <eot>``: the
``n_ctx`` placeholder tokens are replaced by learnable vectors, shared by every class, starting N(0, 0.02²) (the
released code starts them at random when there are more than 4, as at its 8). In the first ``depth`` layers the
outputs at those positions are replaced by fresh learnable vectors before each layer (deep prompting, like the
vision side in :mod:`adu_core.prompting`). Everything else is open_clip's text forward, as in
:func:`adu_core.text_encoding.encode_text_embeddings`, run block by block.

The features are recomputed in every training step (the prompts change); in eval mode they are computed once and
kept until the module trains again.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .text_encoding import eot_positions, is_causal, text_tower

PLACEHOLDER = "X"


class PromptedTextEncoder(nn.Module):
    """Class text features [C, E] (L2-normalised) from learnable deep text prompts and the frozen text tower.

    Args:
        clip: the open_clip model (frozen; its text tower is used, never changed).
        tokenizer: the model's tokenizer.
        classnames: the class names, in label order.
        n_ctx: learnable tokens per layer (>= 1).
        depth: layers (from the first) that receive fresh prompts; capped at the text encoder's layers.
        init_std: the prompts start as N(0, init_std²).
    """

    def __init__(self, clip: nn.Module, tokenizer, classnames: Sequence[str], n_ctx: int, depth: int,
                 init_std: float = 0.02) -> None:
        super().__init__()
        if n_ctx < 1:
            raise ValueError(f"text prompts need at least one token, got n_ctx={n_ctx}")
        tower = text_tower(clip)
        blocks = tower.transformer.resblocks
        self.depth = max(1, min(int(depth), len(blocks)))
        self.n_ctx = int(n_ctx)
        width = tower.token_embedding.weight.shape[1]
        device = tower.token_embedding.weight.device
        placeholder = " ".join([PLACEHOLDER] * n_ctx)
        tokens = tokenizer([f"{placeholder} {c.replace('_', ' ')}." for c in classnames]).to(device)
        eot = eot_positions(clip, tokens)
        if int(eot.max()) >= tokens.shape[1] - 1:  # the tokenizer cut the prompt (it ends it with end-of-text)
            raise ValueError(f"class prompts with {n_ctx} text prompt tokens do not fit the text encoder's "
                             f"{tokens.shape[1]}-token context; use fewer tokens (text_ctx)")
        ph_id = tokenizer([PLACEHOLDER]).to(device)[0, 1]
        if not bool((tokens[:, 1:1 + n_ctx] == ph_id).all()):
            raise ValueError("the tokenizer did not put the text prompt's placeholders right after the start token")
        with torch.no_grad():
            embedded = tower.token_embedding(tokens)
        self.clip = [clip]  # a list: the frozen model is not a submodule (its weights are not this module's state)
        self.register_buffer("prefix", embedded[:, :1].clone(), persistent=False)
        self.register_buffer("suffix", embedded[:, 1 + n_ctx:].clone(), persistent=False)
        self.register_buffer("eot", eot.clone(), persistent=False)
        self.prompts = nn.Parameter(torch.randn(self.depth, n_ctx, width, device=device) * init_std)
        self._cached: torch.Tensor | None = None

    def train(self, mode: bool = True) -> PromptedTextEncoder:
        self._cached = None
        return super().train(mode)

    def forward(self) -> torch.Tensor:
        if self.training or torch.is_grad_enabled():
            self._cached = None
            return self._encode()
        if self._cached is None:
            self._cached = self._encode()
        return self._cached

    def _encode(self) -> torch.Tensor:
        tower = text_tower(self.clip[0])
        n_cls = self.prefix.shape[0]
        mask = getattr(tower, "attn_mask", None)
        length = self.prefix.shape[1] + self.n_ctx + self.suffix.shape[1]
        if is_causal(mask):  # outputs at the end-of-text tokens do not depend on what follows them
            length = int(self.eot.max()) + 1
        cast = tower.transformer.get_cast_dtype()
        ctx = self.prompts[0].unsqueeze(0).expand(n_cls, -1, -1)
        x = torch.cat([self.prefix, ctx.to(self.prefix.dtype), self.suffix], dim=1)[:, :length]
        x = x.to(cast) + tower.positional_embedding[:length].to(cast)
        if mask is not None:
            mask = mask[:length, :length]
        batch_first = getattr(tower.transformer, "batch_first", True)
        for i, block in enumerate(tower.transformer.resblocks):
            if 0 < i < self.depth:  # fresh prompts replace the previous layer's outputs at their positions
                fresh = self.prompts[i].unsqueeze(0).expand(n_cls, -1, -1).to(x.dtype)
                x = torch.cat([x[:, :1], fresh, x[:, 1 + self.n_ctx:]], dim=1)
            x = block(x if batch_first else x.transpose(0, 1), attn_mask=mask)
            x = x if batch_first else x.transpose(0, 1)
        x = tower.ln_final(x)
        x = x[torch.arange(n_cls, device=x.device), self.eot]
        proj = tower.text_projection
        if proj is not None:
            x = proj(x) if isinstance(proj, nn.Linear) else x @ proj
        return F.normalize(x.float(), dim=-1)
