"""The label-scarce setting: only a fraction of training images keep their domain label; the rest get pseudo-labels.

The paper's appendix explores pseudo-labels without saying how they are made, so both labellers here are our
documented choices [G]; both work on the *frozen* CLIP before any unlearning:

* ``kmeans`` — semi-supervised k-means on L2-normalised image features: one centre per domain, started at the mean
  of that domain's labelled images, labelled images pinned to their domain, 20 iterations. Needs >= 1 labelled
  image per domain.
* ``zeroshot`` — CLIP's own zero-shot domain prediction: text prompts "a {domain} of a {class}." averaged over
  classes give one embedding per domain; needs no labels at all (``domain_label_fraction=0`` works).

Pseudo-labels replace the missing domain labels everywhere training uses them (the split into L_memorize/L_forget
samples and DDL). Evaluation always uses the true domains.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .pipeline import normalize
from .text import text_features

LABELLERS = ("kmeans", "zeroshot")


def labelled_mask(domains: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Which training images keep their domain label: ``round(fraction·n_d)`` per domain, chosen by seed.

    A positive fraction keeps at least one image per domain, so every domain stays known.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"domain_label_fraction must be within [0, 1], got {fraction}")
    gen = torch.Generator().manual_seed(seed * 7919 + 17)
    mask = torch.zeros(len(domains), dtype=torch.bool)
    cpu = domains.cpu()
    for d in torch.unique(cpu):
        idx = torch.nonzero(cpu == d).flatten()
        k = 0 if fraction == 0 else max(1, round(fraction * len(idx)))
        mask[idx[torch.randperm(len(idx), generator=gen)[:k]]] = True
    return mask


@torch.inference_mode()
def frozen_features(clip, images: torch.Tensor, mean, std, device: torch.device, batch_size: int = 256) -> torch.Tensor:
    out = []
    for start in range(0, len(images), batch_size):
        x = normalize(images[start:start + batch_size].to(device), mean, std)
        out.append(F.normalize(clip.encode_image(x).float(), dim=-1).cpu())
    return torch.cat(out)


def kmeans_labels(features: torch.Tensor, domains: torch.Tensor, known: torch.Tensor, n_domains: int,
                  iters: int = 20) -> torch.Tensor:
    """Semi-supervised k-means (cosine): labelled points pinned, centres start at the labelled means."""
    missing = [d for d in range(n_domains) if not bool((domains[known] == d).any())]
    if missing:
        raise ValueError(f"kmeans pseudo-labels need at least one labelled image of every domain; none for {missing}")
    labels = domains.clone()
    for _ in range(iters + 1):
        centres = torch.stack([F.normalize(features[labels == d].mean(0), dim=0) for d in range(n_domains)])
        new = (features @ centres.T).argmax(-1)
        new[known] = domains[known]
        if torch.equal(new, labels):
            break
        labels = new
    return labels


def zeroshot_labels(clip, tokenizer, features: torch.Tensor, domain_names: Sequence[str],
                    classnames: Sequence[str], device: torch.device) -> torch.Tensor:
    """argmax over domains of cos(image, mean_c text("a {domain} of a {class}."))."""
    per_domain = []
    for name in domain_names:
        t = text_features(clip, tokenizer, classnames, (f"a {name} of a {{}}.",), device)
        per_domain.append(F.normalize(t.mean(0), dim=0))
    return (features @ torch.stack(per_domain).cpu().T).argmax(-1)


def assign_domains(cfg, clip, tokenizer, images: torch.Tensor, domains: torch.Tensor, mean, std,
                   domain_names: Sequence[str], classnames: Sequence[str], device: torch.device
                   ) -> tuple[torch.Tensor, dict]:
    """Training domain labels for the label-scarce setting, plus a report (pseudo-label accuracy, counts)."""
    if cfg.domain_label_fraction >= 1.0:
        return domains, {}
    if cfg.pseudo_labeler not in LABELLERS:
        raise ValueError(f"unknown pseudo_labeler {cfg.pseudo_labeler!r}; choose one of {', '.join(LABELLERS)}")
    known = labelled_mask(domains, cfg.domain_label_fraction, cfg.seed)
    truth = domains.cpu()
    feats = frozen_features(clip, images, mean, std, device)
    if cfg.pseudo_labeler == "kmeans":
        labels = kmeans_labels(feats, truth, known, len(domain_names))
    else:
        labels = zeroshot_labels(clip, tokenizer, feats, domain_names, classnames, device)
        labels[known] = truth[known]
    unknown = ~known
    acc = float((labels[unknown] == truth[unknown]).float().mean() * 100) if unknown.any() else float("nan")
    report = {"labelled": int(known.sum()), "pseudo_labelled": int(unknown.sum()),
              "pseudo_label_acc": acc, "labeller": cfg.pseudo_labeler,
              "confusion": _confusion(truth[unknown].numpy(), labels[unknown].numpy(), len(domain_names))}
    return labels.to(domains.device), report


def _confusion(truth: np.ndarray, pred: np.ndarray, n: int) -> list[list[int]]:
    m = np.zeros((n, n), dtype=int)
    np.add.at(m, (truth, pred), 1)
    return m.tolist()
