"""Losses: values against direct references and the sign of every term."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from adu_core.losses import domain_disentangling_loss, forget_loss, kernel_matrix, memorize_loss, mmd2


def test_forget_loss_is_ce_to_uniform_and_minimal_when_flat():
    logits = torch.randn(5, 7)
    ref = torch.stack([F.cross_entropy(logits, torch.full((5,), j)) for j in range(7)]).mean()
    torch.testing.assert_close(forget_loss(logits), ref)
    flat = torch.zeros(5, 7)
    assert forget_loss(flat).item() == pytest.approx(math.log(7))
    assert forget_loss(logits) > forget_loss(flat)


def test_memorize_loss_is_cross_entropy_and_empty_is_zero():
    logits, y = torch.randn(4, 3), torch.tensor([0, 2, 1, 2])
    torch.testing.assert_close(memorize_loss(logits, y), F.cross_entropy(logits, y))
    assert memorize_loss(logits[:0], y[:0]).item() == 0.0


def reference_mmd2(x, d, kernel):
    """Direct O(n²) double loops over pairs of samples, averaged over domain pairs."""
    doms = sorted(set(d.tolist()))
    d2 = torch.cdist(x, x).pow(2)
    off = d2[~torch.eye(len(x), dtype=torch.bool)]
    s = off.median()
    def k(a, b):
        if kernel == "linear":
            return float(a @ b)
        dist2 = float(((a - b) ** 2).sum())
        bws = (0.25, 0.5, 1.0, 2.0, 4.0)
        if kernel == "gaussian":
            return sum(math.exp(-dist2 / (bw * float(s))) for bw in bws) / len(bws)
        return sum(math.exp(-math.sqrt(dist2) / (bw * math.sqrt(float(s)))) for bw in bws) / len(bws)
    vals = []
    for a, b in itertools.combinations(doms, 2):
        xa, xb = x[d == a], x[d == b]
        kaa = sum(k(p, q) for p in xa for q in xa) / len(xa) ** 2
        kbb = sum(k(p, q) for p in xb for q in xb) / len(xb) ** 2
        kab = sum(k(p, q) for p in xa for q in xb) / (len(xa) * len(xb))
        vals.append(kaa + kbb - 2 * kab)
    return sum(vals) / len(vals)


@pytest.mark.parametrize("kernel", ["gaussian", "linear", "laplacian"])
def test_mmd2_matches_direct_reference(kernel):
    g = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(14, 6, generator=g), dim=-1)
    d = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3])
    assert mmd2(x, d, kernel).item() == pytest.approx(reference_mmd2(x, d, kernel), rel=1e-4, abs=1e-6)


def test_mmd2_grows_with_domain_separation_and_vanishes_for_one_domain():
    g = torch.Generator().manual_seed(1)
    base = torch.randn(20, 4, generator=g)
    d = torch.arange(20) % 2
    shift = torch.zeros(20, 4)
    shift[d == 1, 0] = 3.0
    assert mmd2(base + shift, d).item() > mmd2(base, d).item()
    assert mmd2(base, torch.zeros(20, dtype=torch.long)).item() == 0.0
    with pytest.raises(ValueError, match="unknown MMD kernel"):
        kernel_matrix(base, base, "cosine")


def test_ddl_signs_minimising_separates_domains():
    g = torch.Generator().manual_seed(2)
    feats = torch.randn(16, 4, generator=g)
    d = torch.arange(16) % 4
    logits = torch.randn(16, 4, generator=g)
    parts = domain_disentangling_loss(logits, feats, d, gamma=30, lam=10)
    expected = 30 * F.cross_entropy(logits, d) - 10 * mmd2(feats, d)
    torch.testing.assert_close(parts["ddl"], expected)
    # One gradient step on the features against DDL (MMD only) must increase the MMD.
    x = feats.clone().requires_grad_(True)
    domain_disentangling_loss(logits, x, d, use_ce=False)["ddl"].backward()
    with torch.no_grad():
        stepped = x - 0.5 * x.grad
    assert mmd2(stepped, d) > mmd2(feats, d)
    only_ce = domain_disentangling_loss(logits, feats, d, gamma=2.0, use_mmd=False)
    torch.testing.assert_close(only_ce["ddl"], 2.0 * F.cross_entropy(logits, d))
