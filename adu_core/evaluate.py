"""Evaluation: class predictions on the test set in large inference-mode batches, Mem/For/H, domain accuracy.

``metrics["train"]`` holds Mem/For/H on the few-shot training images themselves, so memorisation stays visible.

Domain-classification accuracy (Table 4) is measured two ways, because the paper's protocol is not stated:
``domain_acc_probe`` — a logistic-regression probe fit on the method's features of the few-shot training images and
scored on the test images (defined for every method, so "before unlearning" = the zero-shot model's probe);
``domain_acc_head`` — ADU's own domain classifier on the test images (methods that have one).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from .data.base import Sample
from .metrics import accuracy, unlearning_metrics
from .pipeline import normalize

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def test_subset(samples: Sequence[Sample], max_per_domain: int | None, seed: int = 0) -> list[Sample]:
    """All test samples, or ``max_per_domain`` per domain drawn by a fixed seed (same subset for every run)."""
    if max_per_domain is None:
        return list(samples)
    by_domain: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        by_domain[s.domain].append(i)
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for idx in by_domain.values():
        keep += idx if len(idx) <= max_per_domain else rng.choice(idx, max_per_domain, replace=False).tolist()
    return [samples[i] for i in sorted(keep)]


@torch.inference_mode()
def predict(method, env, images: torch.Tensor, mean, std, batch_size: int) -> dict[str, torch.Tensor]:
    method.eval()
    logits, feats, doms = [], [], []
    for start in range(0, len(images), batch_size):
        x = normalize(images[start:start + batch_size].to(env.device, non_blocking=True), mean, std)
        with env.autocast():
            out = method(x)
        # Kept on the device until the end: one transfer instead of a host sync per batch.
        logits.append(out.logits.float())
        feats.append(out.features.float())
        if out.domain_logits is not None:
            doms.append(out.domain_logits.float())
    return {"logits": torch.cat(logits).cpu(), "features": torch.cat(feats).cpu(),
            "domain_logits": torch.cat(doms).cpu() if doms else None}


def domain_probe_accuracy(train_feats: np.ndarray, train_domains: np.ndarray, test_feats: np.ndarray,
                          test_domains: np.ndarray, seed: int = 0) -> float:
    from sklearn.linear_model import LogisticRegression

    probe = LogisticRegression(max_iter=2000, random_state=seed)
    probe.fit(train_feats, train_domains)
    return accuracy(probe.predict(test_feats), test_domains)


def evaluate(method, env, data, test_images: torch.Tensor, test_samples: Sequence[Sample], cfg) -> dict:
    test = predict(method, env, test_images, data.mean, data.std, cfg.eval_batch_size)
    pred = test["logits"].argmax(-1).numpy()
    labels = np.array([s.label for s in test_samples])
    domains = np.array([s.domain for s in test_samples])
    metrics = unlearning_metrics(pred, labels, domains, cfg.forget)
    dom_idx = np.array([env.domains.index(d) for d in domains])
    train = predict(method, env, data.images, data.mean, data.std, cfg.eval_batch_size)
    # The same metrics on the few-shot training images: a gap to the test metrics shows memorisation.
    train_domains = np.array([env.domains[i] for i in data.true_domains.cpu().tolist()])
    fit = unlearning_metrics(train["logits"].argmax(-1).numpy(), data.labels.cpu().numpy(), train_domains, cfg.forget)
    metrics["train"] = {k: fit[k] for k in ("mem", "for", "h", "per_domain_acc")}
    metrics["domain_acc_probe"] = domain_probe_accuracy(
        train["features"].numpy(), data.true_domains.cpu().numpy(), test["features"].numpy(), dom_idx)
    if test["domain_logits"] is not None:
        # A |D|·|C|-way classifier (the released code's) predicts a domain from its first |D| outputs.
        head = test["domain_logits"][:, :len(env.domains)]
        metrics["domain_acc_head"] = accuracy(head.argmax(-1).numpy(), dom_idx)
    return metrics
