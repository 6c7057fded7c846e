"""Zero-shot CLIP: "a photo of a {class}." against the frozen image encoder; nothing is trained."""

from __future__ import annotations

import torch

from . import register
from .base import Method, Outputs, normalized


@register
class ZeroShot(Method):
    """Zero-shot CLIP, untouched: "a photo of a {class}." against the frozen image encoder (nothing is trained)."""

    name = "zeroshot"
    trains = False

    def forward(self, images: torch.Tensor) -> Outputs:
        feats = normalized(self.env.clip.encode_image(images))
        return Outputs(self.class_logits(feats), feats)

    def fit(self, trainer) -> None:
        return None
