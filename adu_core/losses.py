"""Losses of ADU: L_memorize, L_forget and the Domain Disentangling Loss (DDL).

Sign conventions (all are minimised): L_memorize and L_forget are cross-entropies (>= 0); DDL = γ·CE_domain − λ·MMD²,
so minimising it trains the domain classifier and *maximises* the MMD between every pair of domains.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

KERNELS = ("gaussian", "linear", "laplacian")


def memorize_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on kept-domain samples (mean over them; 0 for an empty selection)."""
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), labels)


def forget_loss(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy to the uniform distribution over classes on forgotten-domain samples.

    −(1/|B|) Σ_i (1/|C|) Σ_j log p_ij; its minimum, log|C|, is reached by a flat prediction.
    """
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    return -F.log_softmax(logits.float(), dim=-1).mean(dim=-1).mean()


def kernel_matrix(x: torch.Tensor, y: torch.Tensor, kernel: str = "gaussian",
                  bandwidths: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
                  scale: torch.Tensor | float | None = None) -> torch.Tensor:
    """k(x_i, y_j) for the selected kernel.

    gaussian: mean over bandwidths b of exp(−‖x−y‖² / (b·s)); laplacian: mean over b of exp(−‖x−y‖ / (b·sqrt s)).
    ``s`` (``scale``) is a squared distance, by default the median heuristic supplied by :func:`mmd2`.
    """
    if kernel == "linear":
        return x @ y.T
    d2 = torch.cdist(x, y).pow(2)
    s = 1.0 if scale is None else scale
    if kernel == "gaussian":
        return torch.stack([torch.exp(-d2 / (b * s)) for b in bandwidths]).mean(0)
    if kernel == "laplacian":
        d = d2.clamp_min(1e-12).sqrt()
        root = s ** 0.5 if isinstance(s, float) else s.sqrt()
        return torch.stack([torch.exp(-d / (b * root)) for b in bandwidths]).mean(0)
    raise ValueError(f"unknown MMD kernel {kernel!r}; choose one of {', '.join(KERNELS)}")


def mmd2(features: torch.Tensor, domains: torch.Tensor, kernel: str = "gaussian",
         bandwidths: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0)) -> torch.Tensor:
    """MMD² averaged over all pairs of domains present in the batch (biased V-statistic).

    ‖μ_d − μ_d'‖²_H = mean k(X_d, X_d) + mean k(X_d', X_d') − 2·mean k(X_d, X_d'). The Gaussian/Laplacian scale is
    the median pairwise squared distance of the batch, detached, so the bandwidth follows the features without
    becoming something the loss can game.
    """
    features = features.float()
    present = torch.unique(domains)
    if present.numel() < 2:
        return features.sum() * 0.0
    scale = None
    if kernel != "linear":
        with torch.no_grad():
            d2 = torch.cdist(features, features).pow(2)
            off = d2[~torch.eye(len(features), dtype=torch.bool, device=features.device)]
            scale = off.median().clamp_min(1e-6)
    k = kernel_matrix(features, features, kernel, bandwidths, scale)
    masks = [domains == d for d in present]
    # Block means of the kernel matrix: M[a, b] = mean over (i in domain a, j in domain b) of k(i, j).
    onehot = torch.stack(masks, dim=1).to(k.dtype)
    counts = onehot.sum(0)
    block = (onehot.T @ k @ onehot) / (counts[:, None] * counts[None, :])
    pairs = list(itertools.combinations(range(len(masks)), 2))
    values = [block[a, a] + block[b, b] - 2 * block[a, b] for a, b in pairs]
    return torch.stack(values).mean()


def domain_disentangling_loss(domain_logits: torch.Tensor, features: torch.Tensor, domains: torch.Tensor, *,
                              gamma: float = 30.0, lam: float = 10.0, use_ce: bool = True, use_mmd: bool = True,
                              kernel: str = "gaussian",
                              bandwidths: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0)) -> dict[str, torch.Tensor]:
    """DDL = γ·CE(domain classifier) − λ·MMD²; returns the total and its parts (for logging)."""
    zero = features.sum() * 0.0
    ce = F.cross_entropy(domain_logits.float(), domains) if use_ce else zero
    mmd = mmd2(features, domains, kernel, bandwidths) if use_mmd else zero
    return {"ddl": gamma * ce - lam * mmd, "domain_ce": ce.detach(), "mmd2": mmd.detach()}
