"""Losses of ADU: L_memorize, L_forget and the Domain Disentangling Loss (DDL).

Sign conventions (all are minimised): L_memorize and L_forget are cross-entropies (>= 0); DDL = γ·CE_domain − λ·MMD²,
so minimising it trains the domain classifier and *maximises* the MMD between every pair of domains.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

KERNELS = ("gaussian", "linear", "laplacian")


def memorize_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy on kept-domain samples (mean over them; 0 for an empty selection).

    ``mask`` (bool [B]) selects the samples arithmetically instead of by indexing, so the GPU never has to report
    how many were selected: no host synchronisation inside a training step.
    """
    if mask is not None:
        return _masked_mean(F.cross_entropy(logits.float(), labels, reduction="none"), mask)
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), labels)


FORGET_KINDS = ("uniform_ce", "neg_entropy")
ENTROPY_EPS = 1e-5  # inside the log of the authors' entropy, as released


def forget_loss(logits: torch.Tensor, mask: torch.Tensor | None = None, kind: str = "uniform_ce") -> torch.Tensor:
    """L_forget on forgotten-domain samples; both kinds are minimised by a flat prediction.

    ``uniform_ce`` (the paper's text): cross-entropy to the uniform distribution, −(1/|B|) Σ_i (1/|C|) Σ_j log p_ij,
    minimum log|C|; its gradient in the logits is p − 1/|C|. ``neg_entropy`` (the authors' code): minus the softmax
    entropy, (1/|B|) Σ_i Σ_j p_ij log(p_ij + 1e-5), minimum ≈ −log|C|; its gradient is p ⊙ (log p − Σ p log p), which
    vanishes on confident predictions where the cross-entropy's does not. ``mask``: as in :func:`memorize_loss`.
    """
    logits = logits.float()
    if kind == "uniform_ce":
        per_sample = -F.log_softmax(logits, dim=-1).mean(dim=-1)
    elif kind == "neg_entropy":
        p = F.softmax(logits, dim=-1)
        per_sample = (p * torch.log(p + ENTROPY_EPS)).sum(dim=-1)
    else:
        raise ValueError(f"unknown forget loss {kind!r}; choose one of {', '.join(FORGET_KINDS)}")
    if mask is not None:
        return _masked_mean(per_sample, mask)
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    return per_sample.mean()


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask``; 0 where nothing is selected (without a host sync)."""
    weights = mask.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


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
         bandwidths: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0), n_domains: int | None = None,
         median: str = "batch") -> torch.Tensor:
    """MMD² averaged over all pairs of domains present in the batch (biased V-statistic).

    ``median="pair"`` computes the scale per pair of domains from their cross distances, and averages over the
    pairs whose domains both hold two or more samples (:func:`pairwise_mmd2`, the authors' code).

    ‖μ_d − μ_d'‖²_H = mean k(X_d, X_d) + mean k(X_d', X_d') − 2·mean k(X_d, X_d'). The Gaussian/Laplacian scale is
    the median pairwise squared distance of the batch, detached, so the bandwidth follows the features without
    becoming something the loss can game.

    Domain indices lie in ``0..n_domains-1`` (default: the largest index present + 1, which costs one host sync).
    Everything else is computed with fixed shapes (domains absent from the batch get zero weight), so with
    ``n_domains`` given the GPU never waits for the host.
    """
    features = features.float()
    if median == "pair":
        return pairwise_mmd2(features, domains, kernel, bandwidths)
    if median != "batch":
        raise ValueError(f"unknown median heuristic {median!r}; choose batch or pair")
    n = len(features)
    if n_domains is None:
        n_domains = int(domains.max()) + 1 if n else 1
    if n < 2 or n_domains < 2:
        return features.sum() * 0.0
    scale = None
    if kernel != "linear":
        with torch.no_grad():
            d2 = torch.cdist(features, features).pow(2)
            off = d2.flatten()[1:].view(n - 1, n + 1)[:, :-1]  # the off-diagonal entries, as a view
            scale = off.median().clamp_min(1e-6)
    k = kernel_matrix(features, features, kernel, bandwidths, scale)
    # Block means of the kernel matrix: M[a, b] = mean over (i in domain a, j in domain b) of k(i, j).
    onehot = (domains[:, None] == torch.arange(n_domains, device=domains.device)).to(k.dtype)
    counts = onehot.sum(0)
    block = (onehot.T @ k @ onehot) / (counts[:, None] * counts[None, :]).clamp_min(1.0)
    a, b = torch.triu_indices(n_domains, n_domains, offset=1, device=k.device)
    values = block[a, a] + block[b, b] - 2 * block[a, b]
    present = (counts > 0).to(k.dtype)
    weights = present[a] * present[b]  # pairs of domains that are both in the batch
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def pairwise_mmd2(features: torch.Tensor, domains: torch.Tensor, kernel: str = "gaussian",
                  bandwidths: Sequence[float] = (2.0,)) -> torch.Tensor:
    """MMD² per pair of domains with the scale s = median squared cross distance of that pair (detached), averaged
    over the pairs whose domains each hold at least two samples of the batch.

    With the Gaussian kernel and ``bandwidths=(2,)`` each pair's kernel is exp(−d² / (2σ²)), σ = the median cross
    distance: the released code's MMD. It selects samples by domain (a host synchronisation per pair), which its
    handful of domain pairs makes cheap.
    """
    features = features.float()
    present = [d for d in torch.unique(domains).tolist() if int((domains == d).sum()) > 1]
    values = []
    for i, a in enumerate(present):
        for b in present[i + 1:]:
            xa, xb = features[domains == a], features[domains == b]
            scale = None
            if kernel != "linear":
                with torch.no_grad():
                    scale = torch.cdist(xa, xb).pow(2).median().clamp_min(1e-12)
            values.append(kernel_matrix(xa, xa, kernel, bandwidths, scale).mean()
                          + kernel_matrix(xb, xb, kernel, bandwidths, scale).mean()
                          - 2 * kernel_matrix(xa, xb, kernel, bandwidths, scale).mean())
    if not values:
        return features.sum() * 0.0
    return torch.stack(values).mean()


def domain_disentangling_loss(domain_logits: torch.Tensor, features: torch.Tensor, domains: torch.Tensor, *,
                              gamma: float = 30.0, lam: float = 10.0, use_ce: bool = True, use_mmd: bool = True,
                              kernel: str = "gaussian",
                              bandwidths: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0), n_domains: int | None = None,
                              median: str = "batch") -> dict[str, torch.Tensor]:
    """DDL = γ·CE(domain classifier) − λ·MMD²; returns the total and its parts (for logging).

    ``features`` is what the MMD compares (the latent feature, or the domain logits); ``n_domains`` the number of
    domains (default: the domain classifier's outputs, which is |D| for a classifier over domains).
    """
    zero = features.sum() * 0.0
    ce = F.cross_entropy(domain_logits.float(), domains) if use_ce else zero
    if n_domains is None:
        n_domains = domain_logits.shape[-1] if domain_logits is not None else None
    mmd = mmd2(features, domains, kernel, bandwidths, n_domains, median) if use_mmd else zero
    return {"ddl": gamma * ce - lam * mmd, "domain_ce": ce.detach(), "mmd2": mmd.detach()}
