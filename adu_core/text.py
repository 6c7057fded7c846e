"""The frozen text classifier: class text features from prompt templates, computed once per (model, classes)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

_CACHE: dict[tuple, torch.Tensor] = {}


@torch.no_grad()
def text_features(clip, tokenizer, classnames: Sequence[str], templates: Sequence[str],
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """[C, E] L2-normalised mean over templates of the normalised text embeddings ("a photo of a {}.").

    Cached in memory by (weights sha256, classes, templates): sweeps that share a backbone encode the text once.
    """
    if not templates or any("{}" not in t for t in templates):
        raise ValueError(f"every template needs a '{{}}' placeholder for the class name, got {list(templates)}")
    weights = (getattr(clip, "adu_weights", None) or {}).get("sha256")
    key = (weights, tuple(classnames), tuple(templates), str(device))
    if weights is None or key not in _CACHE:  # random weights have no identity to cache by
        feats = []
        for template in templates:
            tokens = tokenizer([template.format(c) for c in classnames]).to(device)
            feats.append(F.normalize(clip.encode_text(tokens).float(), dim=-1))
        _CACHE[key] = F.normalize(torch.stack(feats).mean(0), dim=-1)
    return _CACHE[key]
