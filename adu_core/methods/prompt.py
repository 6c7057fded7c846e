"""ADU (Kawamura et al., 2025) and its Baseline: deep vision prompts (+ InstaPG) trained with the unlearning losses.

``adu`` = prompts + InstaPG + L_memorize + L_forget + DDL. ``baseline`` = prompts + L_memorize + L_forget (Table 1).
The ablations of Tables 2 and 3 are the config switches ``instapg``, ``ddl``, ``ddl_ce`` and ``ddl_mmd`` on ``adu``.
The switches of the authors' released code (``recipe="authors_code"``: learnable text prompts, the released InstaPG
block, −entropy as L_forget, the MMD on the domain classifier's logits, a |D|·|C|-way domain classifier) apply to
both, wherever the Baseline has the part they change.
"""

from __future__ import annotations

import torch
from torch import nn

from ..losses import domain_disentangling_loss
from ..prompting import PromptedViT
from ..text_prompting import PromptedTextEncoder
from . import register
from .base import Method, Outputs, RunEnv, normalized


@register
class ADU(Method):
    """ADU: deep vision prompts + InstaPG trained with L_memorize + L_forget + DDL (switches: instapg, ddl, ...)."""

    name = "adu"

    def __init__(self, env: RunEnv) -> None:
        super().__init__(env)
        cfg = self.cfg
        layers: tuple[int, ...] = ()
        if cfg.instapg:
            layers = tuple(range(1, cfg.prompt_depth)) if cfg.instapg_layers is None else tuple(cfg.instapg_layers)
        self.encoder = PromptedViT(
            env.clip.visual, n_ctx=cfg.n_ctx, depth=cfg.prompt_depth, init_std=cfg.prompt_init_std,
            instapg_layers=layers, instapg_heads=cfg.instapg_heads, instapg_norm=cfg.instapg_norm,
            instapg_residual=cfg.instapg_residual, grad_checkpointing=cfg.grad_checkpointing,
            instapg_form=cfg.instapg_form,
        )
        self.text = None
        if cfg.text_ctx:
            self.text = PromptedTextEncoder(
                env.clip, env.tokenizer, env.classnames, cfg.text_ctx,
                cfg.prompt_depth if cfg.text_prompt_depth is None else cfg.text_prompt_depth, cfg.prompt_init_std)
        # The domain classifier ("a fully connected layer") and the MMD read the "latent feature" [G]: the
        # L2-normalised image embedding the class logits use, or (ddl_feature=pre_projection) the class token
        # before the projection, so that DDL can shape the features without pulling on the class logits directly.
        self.pre_projection = cfg.ddl_feature == "pre_projection"
        dim = self.encoder.width if self.pre_projection else self.encoder.output_dim
        # The released code's classifier has |D|·|C| outputs, trained with the domain index as target (so its
        # extra outputs are only pushed down); its domain prediction is read from the first |D|.
        outputs = len(env.domains) * (len(env.classnames) if cfg.domain_head == "domains_x_classes" else 1)
        self.domain_head = nn.Linear(dim, outputs) if cfg.ddl else None

    def forward(self, images: torch.Tensor) -> Outputs:
        return self.heads(*self.encoder.encode(images))

    def class_text(self) -> torch.Tensor:
        return self.text() if self.text is not None else self.env.text_features

    def heads(self, embeddings: torch.Tensor, pooled: torch.Tensor | None = None) -> Outputs:
        """Image embeddings (and the pooled class token) -> outputs; the multi-run trainer calls it per run."""
        feats = normalized(embeddings)
        latent = normalized(pooled) if self.pre_projection and pooled is not None else feats
        dom = self.domain_head(latent) if self.domain_head is not None else None
        return Outputs(self.class_logits(feats), feats, dom, latent if self.pre_projection else None)

    def loss(self, out: Outputs, labels: torch.Tensor, domains: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = self.unlearning_loss(out.logits, labels, domains)
        cfg = self.cfg
        if cfg.ddl and (cfg.ddl_ce or cfg.ddl_mmd):
            if cfg.mmd_on == "domain_logits":
                compared = out.domain_logits
            else:
                compared = out.features if out.ddl_features is None else out.ddl_features
            ddl = domain_disentangling_loss(
                out.domain_logits, compared, domains, gamma=cfg.gamma, lam=cfg.lam, use_ce=cfg.ddl_ce,
                use_mmd=cfg.ddl_mmd, kernel=cfg.mmd_kernel, bandwidths=cfg.mmd_bandwidths,
                n_domains=len(self.env.domains), median=cfg.mmd_median)
            terms["loss"] = terms["loss"] + ddl.pop("ddl")
            terms.update(ddl)
        return terms


@register
class Baseline(ADU):
    """Vision prompts trained with L_memorize + L_forget only (the paper's "Baseline")."""

    name = "baseline"
    config_overrides = {"instapg": False, "ddl": False}
