"""Run open_clip's text tower from token *embeddings*, so methods can put learnt vectors in place of word tokens.

``encode_text_embeddings`` repeats the steps of ``open_clip.CLIP.encode_text`` after the token look-up (positional
embedding, transformer, final LayerNorm, pooling at the end-of-text token, projection). With a causal attention mask
the output at the end-of-text position depends only on the tokens before it, so the sequences are cut after the last
end-of-text token of the batch: the result is the same as the full-length pass, and short prompts in a 77-token
context cost a fraction of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def text_tower(clip: nn.Module) -> nn.Module:
    """The module that holds the text tower's parts: ``CLIP`` itself, or ``CustomTextCLIP.text``."""
    tower = getattr(clip, "text", None)
    return tower if tower is not None and hasattr(tower, "token_embedding") else clip


def _pool_type(tower: nn.Module) -> str:
    return getattr(tower, "text_pool_type", None) or getattr(tower, "pool_type", "argmax")


def eot_positions(clip: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Index of the token whose output is the text feature (open_clip's ``text_global_pool``), per sequence."""
    tower = text_tower(clip)
    pool = _pool_type(tower)
    if pool == "argmax":  # the end-of-text token has the largest id in CLIP's vocabulary
        return tokens.argmax(dim=-1)
    if pool == "eos":
        eos = getattr(tower, "text_eos_id", None) or getattr(tower, "eos_id", None)
        return (tokens == eos).int().argmax(dim=-1)
    raise ValueError(f"text pooling {pool!r} is not supported: only argmax/eos pooling reads one token's output")


_CAUSAL: dict[int, tuple[torch.Tensor, int, bool]] = {}


def is_causal(mask: torch.Tensor | None) -> bool:
    """True for an additive causal mask (−inf above the diagonal, 0 elsewhere); remembered per mask tensor.

    The cache holds the mask itself (so its id cannot be reused) and its version counter (so an in-place change
    is seen).
    """
    if mask is None or mask.dim() != 2 or mask.shape[0] != mask.shape[1]:
        return False
    hit = _CAUSAL.get(id(mask))
    if hit is not None and hit[0] is mask and hit[1] == mask._version:
        return hit[2]
    upper = torch.triu(torch.ones_like(mask, dtype=torch.bool), diagonal=1)
    causal = bool(torch.isinf(mask[upper]).all() and (mask[upper] < 0).all() and (mask[~upper] == 0).all())
    _CAUSAL[id(mask)] = (mask, mask._version, causal)
    return causal


def encode_text_embeddings(clip: nn.Module, embeddings: torch.Tensor, eot: torch.Tensor,
                           truncate: bool = True) -> torch.Tensor:
    """Text features [N, E] (not normalised) from token embeddings [N, L, D] and end-of-text positions [N].

    ``embeddings`` replaces ``token_embedding(tokens)``; everything after it is open_clip's text forward.
    """
    tower = text_tower(clip)
    if getattr(tower, "cls_emb", None) is not None:
        raise ValueError("text towers with a CLS embedding are not supported")
    mask = getattr(tower, "attn_mask", None)
    length = embeddings.shape[1]
    if truncate and is_causal(mask):
        length = int(eot.max()) + 1
    cast = tower.transformer.get_cast_dtype()
    x = embeddings[:, :length].to(cast) + tower.positional_embedding[:length].to(cast)
    if mask is not None:
        mask = mask[:length, :length]
    x = tower.transformer(x, attn_mask=mask)
    x = tower.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), eot]
    proj = tower.text_projection
    if proj is None:
        return x
    return proj(x) if isinstance(proj, nn.Linear) else x @ proj


def encode_tokens(clip: nn.Module, tokens: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """``clip.encode_text(tokens)`` through :func:`encode_text_embeddings` (same numbers, shorter sequences)."""
    tower = text_tower(clip)
    eot = eot_positions(clip, tokens)
    if chunk is None or len(tokens) <= chunk:
        return encode_text_embeddings(clip, tower.token_embedding(tokens), eot)
    return torch.cat([encode_text_embeddings(clip, tower.token_embedding(tokens[i:i + chunk]), eot[i:i + chunk])
                      for i in range(0, len(tokens), chunk)])


def prompt_tokens(tokenizer, classnames: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """Token ids [T*C, L] of every (template, class) prompt, template-major (row t*C + c)."""
    return torch.cat([tokenizer([t.format(c) for c in classnames]) for t in templates])
