"""Black-Box Forgetting (Kuwana et al., NeurIPS 2024) for domain forgetting (ADU's Table 1 row).

The model is a black box: a candidate text context goes in, class logits come out (:meth:`BBF.query`); no gradient is
taken and no CLIP parameter changes. CMA-ES searches a low-dimensional latent instead of the context itself.

Faithful to BBF (paper and code): ``n_ctx`` = 4 context vectors take the place of "X X X X" in "X X X X {class}.";
Latent Context Sharing: token i's latent is [shared (20), unique_i (5)], mapped to the text width by one random
projection A ~ N(0, std(vocabulary embeddings)), plus the mean vocabulary embedding p0 (context_i = A·z_i + p0);
one CMA-ES per unique latent and one for the shared latent, all told the same fitness (σ0 = 1, mean 0, popsize 20,
400 iterations); fitness = CE on memorized samples + CE to the uniform distribution on forgotten samples, i.e.
L_memorize + L_forget, over every training image; the returned context is the evaluated candidate with the best
harmonic mean of (Mem, For) on a held-out split.

Adapted for ADU [G]: the forget set is the images of the forgotten domains (BBF forgets classes). The held-out split
is ``val_shots`` images per (class, domain) taken out of the few-shot training set by the run's seed (BBF draws k
more shots per class from the training pool; ADU's protocol gives only the few-shot set). Ties in held-out H (small
held-out sets give many) go to the lower held-out loss (BBF keeps the first). fp32 instead of BBF's fp16. The image
side is frozen, so image features are computed once (centre crop, cached on disk) and every candidate costs one
text-encoder pass; the whole population is encoded in one batch.

A run takes seconds on the testbed and about a minute for ImageNet on a GPU, so it is not checkpointed: an
interrupted run starts the search again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..features_cache import cached_features
from ..text_encoding import encode_text_embeddings, eot_positions, is_causal, text_tower
from . import register
from .base import Method, Outputs, RunEnv, normalized


@dataclass
class BBFOptions:
    iterations: int = field(default=400, metadata={"min": 1, "doc": "CMA-ES iterations (BBF: 400)"})
    popsize: int = field(default=20, metadata={"min": 2, "doc": "CMA-ES population size (BBF: 20)"})
    sigma: float = field(default=1.0, metadata={"above": 0, "doc": "initial CMA-ES step size in latent space (BBF: 1)"})
    n_ctx: int = field(default=4, metadata={"min": 1, "doc": "learnt context tokens before the class name (BBF: 4)"})
    shared_dim: int = field(default=20, metadata={"min": 0, "doc": "shared latent dimension of Latent Context Sharing (BBF: 20)"})
    unique_dim: int = field(default=5, metadata={"min": 0, "doc": "per-token unique latent dimension (BBF: 5)"})
    val_shots: int = field(default=1, metadata={"min": 0,
        "doc": "images per (class, domain) held out of the few-shot set to pick the best candidate by H; "
               "0 = pick by H on the training images [G]"})
    batch_size: int | None = field(default=None, metadata={"min": 1, "none_ok": True,
        "doc": "images per fitness evaluation, redrawn each iteration; None = every training image (BBF's code)"})
    text_chunk: int = field(default=4096, metadata={"min": 1, "doc": "prompts per text-encoder pass (memory bound)"})


@register
class BBF(Method):
    """Black-Box Forgetting: CMA-ES over a shared/unique latent text context, no gradients."""

    name = "bbf"
    gradient_free = True
    options_cls = BBFOptions

    def __init__(self, env: RunEnv) -> None:
        super().__init__(env)
        opt = self.options
        tower = text_tower(env.clip)
        prompts = [" ".join(["X"] * opt.n_ctx) + f" {c}." for c in env.classnames]
        tokens = env.tokenizer(prompts).to(env.device)
        x_id = int(tokens[0, 1])
        if not bool((tokens[:, 1:1 + opt.n_ctx] == x_id).all()):
            raise ValueError("the context placeholder 'X' does not tokenize to one token per context slot")
        self.register_buffer("tokens", tokens, persistent=False)
        self.register_buffer("eot", eot_positions(env.clip, tokens), persistent=False)
        with torch.no_grad():
            vocab = tower.token_embedding.weight.float()
            gen = torch.Generator().manual_seed(self.cfg.seed)
            latent = opt.shared_dim + opt.unique_dim
            proj = torch.randn(vocab.shape[1], latent, generator=gen) * float(vocab.std())
            base = tower.token_embedding(tokens).float()
            if is_causal(getattr(tower, "attn_mask", None)):  # later tokens cannot reach the end-of-text output
                base = base[:, :int(self.eot.max()) + 1]
            self.register_buffer("base_embeddings", base, persistent=False)
        self.register_buffer("projection", proj.to(env.device), persistent=False)
        self.register_buffer("p0", vocab.mean(0), persistent=False)
        self.register_buffer("latent", torch.zeros(self.latent_size, device=env.device), persistent=False)
        self._text: torch.Tensor | None = None

    @property
    def latent_size(self) -> int:
        o = self.options
        return o.shared_dim + o.n_ctx * o.unique_dim

    # --- the black box ------------------------------------------------------------------------------------------
    def context_from_latent(self, z: torch.Tensor) -> torch.Tensor:
        """[P, S + n_ctx*U] latents -> [P, n_ctx, D] context embeddings (context_i = A·[shared, unique_i] + p0)."""
        o = self.options
        shared = z[:, :o.shared_dim].unsqueeze(1).expand(-1, o.n_ctx, -1)
        unique = z[:, o.shared_dim:].reshape(len(z), o.n_ctx, o.unique_dim)
        return torch.cat([shared, unique], dim=-1) @ self.projection.T + self.p0

    @torch.no_grad()
    def text_features(self, contexts: torch.Tensor) -> torch.Tensor:
        """[P, n_ctx, D] contexts -> [P, C, E] L2-normalised class text features.

        Candidates are encoded together, ``text_chunk`` prompts per pass, so a population costs a few passes.
        """
        n_cls, n_ctx = len(self.tokens), self.options.n_ctx
        per_pass = max(1, self.options.text_chunk // n_cls)
        out = []
        for start in range(0, len(contexts), per_pass):
            ctx = contexts[start:start + per_pass]
            emb = self.base_embeddings.unsqueeze(0).repeat(len(ctx), 1, 1, 1)
            emb[:, :, 1:1 + n_ctx] = ctx.unsqueeze(1)
            with self.env.autocast():
                feats = encode_text_embeddings(self.env.clip, emb.flatten(0, 1), self.eot.repeat(len(ctx)))
            out.append(F.normalize(feats.float(), dim=-1).view(len(ctx), n_cls, -1))
        return torch.cat(out)

    @torch.no_grad()
    def query(self, images: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """The black-box API: class logits [B, C] of normalised images under one context [n_ctx, D]."""
        feats = normalized(self.env.clip.encode_image(images))
        return self.env.logit_scale * feats @ self.text_features(context.unsqueeze(0))[0].T

    # --- Method interface ---------------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> Outputs:
        with torch.no_grad():
            feats = normalized(self.env.clip.encode_image(images))
            if self._text is None:
                self._text = self.text_features(self.context_from_latent(self.latent[None]))[0]
        return Outputs(self.env.logit_scale * feats @ self._text.T, feats)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        context = self.context_from_latent(self.latent[None])[0]
        return {"latent": self.latent.detach().clone(), "context": context.detach().clone()}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        if set(state) != {"latent", "context"} or state["latent"].shape != self.latent.shape:
            raise ValueError("checkpoint does not match this method's latent (different method or options)")
        self.latent.copy_(state["latent"].to(self.latent.device))
        self._text = None

    def fit(self, trainer) -> None:
        import cma  # imported here: it takes seconds, and every run loads the method registry

        opt, env, data, cfg = self.options, self.env, trainer.data, self.cfg
        dev = env.device
        feats = cached_features(env.clip, data.images, data.mean, data.std, views=0, device=dev,
                                autocast_dtype=env.autocast_dtype, batch_size=cfg.eval_batch_size)[0].to(dev)
        labels, domains = data.labels.to(dev), data.domains.to(dev)
        forget = torch.isin(domains, torch.tensor(env.forget_idx, device=dev))
        val = holdout_mask(labels, domains, opt.val_shots, cfg.seed)
        fit_idx = torch.nonzero(~val).flatten()
        sel_idx = torch.nonzero(val).flatten() if bool(val.any()) else fit_idx
        scale = env.logit_scale

        def losses(text: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            """[P] L_memorize + L_forget of every candidate (losses.memorize_loss/forget_loss, batched)."""
            logp = F.log_softmax(scale * feats[idx] @ text.transpose(1, 2), dim=-1)  # [P, n, C]
            f = forget[idx]
            total = torch.zeros(len(text), device=dev)
            if bool((~f).any()):
                kept_labels = labels[idx][~f]
                total -= logp[:, ~f].gather(2, kept_labels.expand(len(text), -1)[..., None]).mean((1, 2))
            if bool(f.any()):
                total -= logp[:, f].mean((1, 2))
            return total

        def harmonic(text: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:  # [P] H of (Mem, For) in %
            correct = ((feats[idx] @ text.transpose(1, 2)).argmax(-1) == labels[idx]).float()
            f = forget[idx]
            mem = 100 * correct[:, ~f].mean(1) if bool((~f).any()) else torch.full_like(correct[:, 0], 100.0)
            fgt = 100 * (1 - correct[:, f].mean(1)) if bool(f.any()) else torch.full_like(correct[:, 0], 100.0)
            return 2 * mem * fgt / (mem + fgt).clamp_min(1e-9)

        cma_opts = {"popsize": opt.popsize, "maxiter": opt.iterations, "verbose": -9, "verb_log": 0,
                    "verb_disp": 0}
        # Latent Context Sharing as in BBF's code: one CMA-ES per unique latent, one for the shared latent.
        blocks = [opt.shared_dim] + [opt.unique_dim] * opt.n_ctx
        strategies = [cma.CMAEvolutionStrategy(np.zeros(d), opt.sigma, {**cma_opts, "seed": cfg.seed * 1000 + i + 1})
                      for i, d in enumerate(blocks)]
        gen = torch.Generator().manual_seed(cfg.seed)
        best = (-1.0, float("inf"))
        best_z = torch.zeros(self.latent_size)
        iteration = 0
        while not strategies[0].stop():
            asked = [np.asarray(es.ask()) for es in strategies]
            z = torch.from_numpy(np.concatenate(asked, axis=1)).float().to(dev)  # [P, S + n_ctx*U]
            text = self.text_features(self.context_from_latent(z))
            idx = fit_idx
            if opt.batch_size is not None and opt.batch_size < len(fit_idx):
                idx = fit_idx[torch.randperm(len(fit_idx), generator=gen)[:opt.batch_size].to(dev)]
            fitness = losses(text, idx)
            h_sel = harmonic(text, sel_idx)
            l_sel = fitness if idx is sel_idx else losses(text, sel_idx)
            top = h_sel == h_sel.max()  # the population's best H, ties to the lower held-out loss
            p = int(torch.where(top, l_sel, torch.full_like(l_sel, float("inf"))).argmin())
            score = (float(h_sel[p]), float(l_sel[p]))
            if score[0] > best[0] or (score[0] == best[0] and score[1] < best[1]):
                best, best_z = score, z[p].cpu()
            fit_list = fitness.cpu().tolist()
            for es, solutions in zip(strategies, asked, strict=True):
                es.tell(list(solutions), fit_list)
            iteration += 1
            if iteration % 10 == 0 or strategies[0].stop():
                trainer.history.append({"epoch": iteration, "loss": float(fitness.mean()),
                                        "loss_best": float(fitness.min()), "select_h": best[0],
                                        "select_loss": best[1]})
        self.latent.copy_(best_z.to(dev))
        self._text = None


def holdout_mask(labels: torch.Tensor, domains: torch.Tensor, per_group: int, seed: int) -> torch.Tensor:
    """True for ``per_group`` images of every (class, domain) group, drawn by ``seed``; groups that would be left
    with no training image keep all of theirs."""
    mask = torch.zeros(len(labels), dtype=torch.bool)
    if per_group <= 0:
        return mask.to(labels.device)
    gen = torch.Generator().manual_seed(seed)
    lab, dom = labels.cpu(), domains.cpu()
    for c in torch.unique(lab):
        for d in torch.unique(dom):
            idx = torch.nonzero((lab == c) & (dom == d)).flatten()
            if len(idx) > per_group:
                mask[idx[torch.randperm(len(idx), generator=gen)[:per_group]]] = True
    return mask.to(labels.device)
