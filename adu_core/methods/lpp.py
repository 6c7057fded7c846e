"""LP++ (Huang et al., CVPR 2024) with its cross-entropy replaced by the unlearning losses (ADU's Table 1 row).

Logits of an L2-normalised frozen image feature f:  z = W f + b + α ⊙ (T f),  T = the class text features.

Faithful to LP++: W starts as the per-class *sum* of training features (their centroid code omits the division), b
at 0 [G: theirs is PyTorch's default init], α as one value for every class, 250 × the mean text similarity of the
training features; full-batch gradient descent on cached features, W by SGD with momentum 0.9 and the data-driven
step 4/λ_max(Gram), α by a plain step of 1/(4 max_c mean_i (f_i·t_c)²) every 10 W-steps (block coordinate descent);
300 steps; one augmented view of each training image (random-resized-crop scale (0.5, 1) + flip).

Adapted for ADU [G]: the loss is L_memorize (mean over kept-domain samples) + L_forget (mean over forgotten-domain
samples). The step sizes come from the same bounds applied to this loss: the Gram matrix and the mean squared text
similarities become the sum of their per-part means, which reduces to LP++'s formulas when nothing is forgotten.
LP++ picks the step with the best validation accuracy; ADU's protocol has no validation split, so the last step is
used [G]. α takes the gradient of the current step (LP++'s code never zeroes α's gradient, so it steps along the
running sum of all past gradients, which reads as an oversight) [G].

Training is ~300 small matrix products on cached features (well under a second), so it is not checkpointed: an
interrupted run simply redoes it. Features are cached on disk (see :mod:`adu_core.features_cache`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..features_cache import cached_features
from ..losses import forget_loss, memorize_loss
from . import register
from .base import Method, Outputs, RunEnv, normalized


@dataclass
class LPPOptions:
    steps: int = field(default=300, metadata={"min": 1, "doc": "full-batch gradient steps (LP++: 300 epochs)"})
    alpha_every: int = field(default=10, metadata={"min": 1, "doc": "one α step per this many W steps (LP++: 10)"})
    momentum: float = field(default=0.9, metadata={"min": 0, "below": 1, "doc": "SGD momentum of W (LP++: 0.9)"})
    lr_scale: float = field(default=1.0, metadata={"above": 0,
        "doc": "multiplier of both data-driven step sizes (1 = LP++'s 4/λ_max and 1/(4·max mean s²))"})
    alpha_init_scale: float = field(default=250.0, metadata={"min": 0,
        "doc": "α starts at this × the mean text similarity of the training features (LP++: 250)"})
    views: int = field(default=1, metadata={"min": 0,
        "doc": "augmented views per training image, each a training sample (LP++: 1); 0 = centre crop only"})
    crop_scale: tuple[float, float] = field(default=(0.5, 1.0), metadata={
        "doc": "random-resized-crop area range of the views (LP++: (0.5, 1))"})
    init_kept_only: bool = field(default=False, metadata={
        "doc": "W starts from kept-domain samples only (False: all training samples, as LP++ would) [G]"})
    feature_cache: bool = field(default=True, metadata={"doc": "keep the frozen training features on disk"})


@register
class LinearProbePP(Method):
    """LP++: centroid-initialised linear probe + class-wise multipliers of the text logits, L_memorize + L_forget."""

    name = "lp++"
    options_cls = LPPOptions

    def __init__(self, env: RunEnv) -> None:
        super().__init__(env)
        n_cls, dim = env.text_features.shape
        self.head = nn.Linear(dim, n_cls)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.alpha = nn.Parameter(torch.ones(n_cls))

    # ---------------------------------------------------------------------------------------------------------
    def head_logits(self, feats: torch.Tensor) -> torch.Tensor:
        text = feats @ self.env.text_features.to(feats.dtype).T
        return self.head(feats) + self.alpha * text

    def forward(self, images: torch.Tensor) -> Outputs:
        with torch.no_grad():
            feats = normalized(self.env.clip.encode_image(images))
        return Outputs(self.head_logits(feats), feats)

    def loss(self, out: Outputs, labels: torch.Tensor, domains: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.unlearning_loss(out.logits, labels, domains)

    # ---------------------------------------------------------------------------------------------------------
    def fit(self, trainer) -> None:
        opt, env, data = self.options, self.env, trainer.data
        dev = env.device
        views = cached_features(
            env.clip, data.images, data.mean, data.std, views=opt.views, crop_scale=tuple(opt.crop_scale),
            seed=self.cfg.seed, device=dev, autocast_dtype=env.autocast_dtype,
            batch_size=self.cfg.eval_batch_size, use_cache=opt.feature_cache)
        n_views = views.shape[0]
        feats = views.reshape(-1, views.shape[-1]).to(dev)  # every view is a sample
        labels = data.labels.to(dev).repeat(n_views)
        domains = data.domains.to(dev).repeat(n_views)
        forget = torch.isin(domains, torch.tensor(env.forget_idx, device=dev))
        text = env.text_features.to(dev).float()

        with torch.no_grad():
            init_mask = ~forget if opt.init_kept_only else torch.ones_like(forget)
            onehot = nn.functional.one_hot(labels[init_mask], text.shape[0]).float()
            self.head.weight.copy_(onehot.T @ feats[init_mask])  # per-class sums, as LP++'s centroid code
            self.head.bias.zero_()
            sims = feats @ text.T  # [N, C]
            class_mean = (onehot.T @ sims[init_mask]) / onehot.sum(0).clamp_min(1)[:, None]
            self.alpha.fill_(opt.alpha_init_scale * float(class_mean.mean()))
            lr_w, lr_alpha = self.step_sizes(feats, sims, forget)
        lr_w, lr_alpha = lr_w * opt.lr_scale, lr_alpha * opt.lr_scale

        sgd = torch.optim.SGD(self.head.parameters(), lr=lr_w, momentum=opt.momentum)
        self.train()
        for step in range(opt.steps):
            logits = self.head_logits(feats)
            mem = memorize_loss(logits[~forget], labels[~forget])
            fgt = forget_loss(logits[forget])
            total = mem + fgt
            sgd.zero_grad(set_to_none=True)
            self.alpha.grad = None
            total.backward()
            total, mem, fgt = total.detach(), mem.detach(), fgt.detach()
            sgd.step()
            if (step + 1) % opt.alpha_every == 0:
                with torch.no_grad():
                    self.alpha -= lr_alpha * self.alpha.grad
            if (step + 1) % 10 == 0 or step + 1 == opt.steps:
                trainer.history.append({
                    "epoch": step + 1, "loss": total.item(), "memorize": mem.item(), "forget": fgt.item(),
                    "lr": lr_w, "lr_alpha": lr_alpha, "alpha_mean": self.alpha.detach().mean().item()})
        self.head.weight.grad = self.head.bias.grad = self.alpha.grad = None

    def relearn_optimizer(self, history: list[dict[str, Any]]) -> torch.optim.Optimizer:
        """LP++'s own data-driven steps, as the run recorded them (W: ``lr``; α: ``lr_alpha`` spread over the
        ``alpha_every`` W-steps it stands for), not the prompt methods' 0.0025, thousands of times smaller."""
        steps = [h for h in history if "lr" in h and "lr_alpha" in h]
        if not steps:
            raise ValueError("this LP++ run's history records no step sizes; retrain it to measure relearning")
        opt = self.options
        return torch.optim.SGD([{"params": self.head.parameters(), "lr": float(steps[-1]["lr"])},
                                {"params": [self.alpha], "lr": float(steps[-1]["lr_alpha"]) / opt.alpha_every}],
                               lr=float(steps[-1]["lr"]), momentum=opt.momentum)

    @staticmethod
    def step_sizes(feats: torch.Tensor, sims: torch.Tensor, forget: torch.Tensor) -> tuple[float, float]:
        """LP++'s data-driven steps for a loss that is a sum of per-part means (kept part, forgotten part).

        W: 4 / λ_max(Σ_parts FᵀF / n_part)  (LP++: 4N / λ_max(FᵀF));
        α: 1 / (4 · max_c Σ_parts mean_i s_ic²)  (LP++: N / (4 · max_c Σ_i s_ic²)), s = text similarities.
        """
        gram = torch.zeros(feats.shape[1], feats.shape[1], dtype=torch.float64, device=feats.device)
        sq = torch.zeros(sims.shape[1], dtype=torch.float64, device=feats.device)
        for part in (~forget, forget):
            if part.any():
                f = feats[part].double()
                gram += f.T @ f / len(f)
                sq += sims[part].double().pow(2).mean(0)
        lam_max = float(torch.linalg.eigvalsh(gram.cpu())[-1])
        return 4.0 / lam_max, 1.0 / (4.0 * float(sq.max()))
