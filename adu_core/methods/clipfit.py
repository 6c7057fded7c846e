"""CLIPFit (Li et al., EMNLP 2024) with its cross-entropy replaced by the unlearning losses (ADU's Table 1 row).

Faithful to CLIPFit: the only trained parameters are the bias of the FFN output projection (``mlp.c_proj.bias``) in
every text-encoder block and every LayerNorm of the image encoder; the loss adds λ_kd·(1 − mean cos) between the
current and the original text feature of every prompt (knowledge distillation, λ_kd = 8 as in their trainer);
SGD with the run's warm-up + cosine schedule, batch 32, random-resized-crop + flip.

Adapted for ADU [G]: CE → L_memorize on kept-domain images + L_forget on forgotten-domain images; the KD term kept.
The class text features change with the biases, so every training step encodes all |C|·|templates| prompts once
(one batched pass, sequences cut after the end-of-text token, see :mod:`adu_core.text_encoding`); in evaluation
they are encoded once and reused.

The frozen CLIP in ``env.clip`` is shared with other code, so this method trains a deep copy of it; the original
text features for the KD term come from the untouched ``env.clip``.

``lr`` and ``epochs``: None (the default) uses the run's ``lr``/``epochs`` (one protocol for every method of a
table); a value here wins over the run's. CLIPFit's own schedule is lr 0.002 for 100 epochs (``--set
method.lr=0.002 --set method.epochs=100``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..text_encoding import encode_tokens, prompt_tokens
from . import register
from .base import Method, Outputs, RunEnv, normalized


@dataclass
class CLIPFitOptions:
    kd_weight: float = field(default=8.0, metadata={"min": 0,
        "doc": "λ_kd of the text knowledge-distillation term 1 − mean cos (CLIPFit's trainer: 8)"})
    lr: float | None = field(default=None, metadata={"above": 0, "none_ok": True,
        "doc": "SGD learning rate; None = the run's lr (CLIPFit: 0.002)"})
    epochs: int | None = field(default=None, metadata={"min": 1, "none_ok": True,
        "doc": "training epochs; None = the run's epochs (CLIPFit: 100)"})
    text_chunk: int = field(default=4096, metadata={"min": 1, "doc": "prompts per text-encoder pass (memory bound)"})


def trainable_names(clip: nn.Module) -> list[str]:
    """CLIPFit's parameters: text FFN output biases and image-encoder LayerNorm weights/biases."""
    names = [f"transformer.resblocks.{i}.mlp.c_proj.bias" for i in range(len(clip.transformer.resblocks))]
    for mod_name, module in clip.visual.named_modules():
        if isinstance(module, nn.LayerNorm) and module.elementwise_affine:
            names += [f"visual.{mod_name}.{p}" for p, _ in module.named_parameters(recurse=False)]
    return names


@register
class CLIPFit(Method):
    """CLIPFit: text FFN biases + image LayerNorms (+ text KD) trained with L_memorize + L_forget."""

    name = "clipfit"
    options_cls = CLIPFitOptions

    def __init__(self, env: RunEnv) -> None:
        super().__init__(env)
        if not hasattr(env.clip, "transformer"):
            raise ValueError("clipfit needs an open_clip CLIP with its text tower at .transformer")
        self.clip = copy.deepcopy(env.clip)
        self.clip.requires_grad_(False)
        params = dict(self.clip.named_parameters())
        for n in trainable_names(self.clip):
            params[n].requires_grad_(True)
        templates = tuple(self.cfg.templates)
        self.register_buffer("tokens", prompt_tokens(env.tokenizer, env.classnames, templates), persistent=False)
        self.n_templates = len(templates)
        with torch.no_grad():
            original = encode_tokens(env.clip, self.tokens.to(env.device), self.options.text_chunk)
        self.register_buffer("original_text", F.normalize(original.float(), dim=-1), persistent=False)
        self._prompt_feats: torch.Tensor | None = None  # this step's per-prompt features, for the KD term
        self._eval_text: torch.Tensor | None = None

    def train(self, mode: bool = True) -> CLIPFit:
        self._eval_text = None  # parameters may change again
        return super().train(mode)

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        super().load_trainable_state(state)
        self._eval_text = None

    def prompt_features(self) -> torch.Tensor:
        """[T*C, E] L2-normalised features of every prompt under the current biases."""
        return F.normalize(encode_tokens(self.clip, self.tokens, self.options.text_chunk).float(), dim=-1)

    def class_text(self, prompt_feats: torch.Tensor) -> torch.Tensor:
        n_cls = len(self.env.classnames)
        return F.normalize(prompt_feats.view(self.n_templates, n_cls, -1).mean(0), dim=-1)

    def forward(self, images: torch.Tensor) -> Outputs:
        feats = normalized(self.clip.encode_image(images))
        if self.training or torch.is_grad_enabled():
            self._prompt_feats = self.prompt_features()
            text = self.class_text(self._prompt_feats)
        else:
            if self._eval_text is None:
                self._eval_text = self.class_text(self.prompt_features())
            text = self._eval_text
        return Outputs(self.env.logit_scale * feats @ text.to(feats.dtype).T, feats)

    def loss(self, out: Outputs, labels: torch.Tensor, domains: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = self.unlearning_loss(out.logits, labels, domains)
        kd = 1.0 - (self._prompt_feats * self.original_text).sum(-1).mean()
        terms["loss"] = terms["loss"] + self.options.kd_weight * kd
        terms["kd"] = kd.detach()
        return terms

    def fit(self, trainer) -> None:
        changes = {k: v for k, v in (("lr", self.options.lr), ("epochs", self.options.epochs)) if v is not None}
        if not changes:
            trainer.fit_gradient(self)
            return
        # The shared loop reads lr/epochs from trainer.cfg; the method's values stand in for the run's meanwhile
        # (the checkpoint key follows, so a resumed run finds its own checkpoint).
        run_cfg = trainer.cfg
        trainer.cfg = replace(run_cfg, **changes)
        try:
            trainer.fit_gradient(self)
        finally:
            trainer.cfg = run_cfg
