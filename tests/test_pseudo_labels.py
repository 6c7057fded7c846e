from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adu_core.config import make_config
from adu_core.pseudo_labels import kmeans_labels, labelled_mask
from adu_core.train import run_experiment


def test_labelled_mask_is_per_domain_seeded_and_keeps_every_domain():
    domains = torch.tensor([0] * 10 + [1] * 20 + [2] * 3)
    m = labelled_mask(domains, 0.2, seed=1)
    assert [int(m[domains == d].sum()) for d in range(3)] == [2, 4, 1]
    assert torch.equal(m, labelled_mask(domains, 0.2, seed=1))
    assert not torch.equal(m, labelled_mask(domains, 0.2, seed=2))
    assert not labelled_mask(domains, 0.0, seed=1).any()
    assert labelled_mask(domains, 1.0, seed=1).all()
    with pytest.raises(ValueError):
        labelled_mask(domains, 1.5, seed=1)


def test_kmeans_recovers_separated_domains_from_few_labels():
    g = torch.Generator().manual_seed(0)
    centres = F.normalize(torch.randn(3, 16, generator=g), dim=-1) * 4
    truth = torch.arange(3).repeat_interleave(30)
    feats = F.normalize(centres[truth] + torch.randn(90, 16, generator=g), dim=-1)
    known = labelled_mask(truth, 0.1, seed=0)
    start = truth.clone()
    start[~known] = 0  # unlabelled entries carry garbage: only the labelled ones may be read
    pred = kmeans_labels(feats, start, known, 3)
    assert (pred == truth).float().mean() > 0.95
    assert torch.equal(pred[known], truth[known])
    with pytest.raises(ValueError, match="every domain"):
        kmeans_labels(feats, start, known & (truth != 2), 3)


@pytest.mark.parametrize("labeller", ["kmeans", "zeroshot"])
def test_label_scarce_run_reports_pseudo_labels(tmp_path, labeller):
    cfg = make_config("synthetic", forget=("sketch",), epochs=1, domain_label_fraction=0.25, pseudo_labeler=labeller)
    run = run_experiment(cfg, tmp_path, progress=False)
    report = run["metrics"]["pseudo_labels"]
    assert report["labeller"] == labeller
    assert report["labelled"] + report["pseudo_labelled"] == run["n_train"]
    assert report["labelled"] == 4 * round(0.25 * run["n_train"] / 4)
    assert 0.0 <= report["pseudo_label_acc"] <= 100.0
    assert sum(map(sum, report["confusion"])) == report["pseudo_labelled"]


def test_unknown_labeller_is_a_clear_error(tmp_path):
    cfg = make_config("synthetic", forget=("sketch",), epochs=1, domain_label_fraction=0.5, pseudo_labeler="magic")
    with pytest.raises(ValueError, match="pseudo_labeler='magic' is out of range: kmeans or zeroshot"):
        run_experiment(cfg, tmp_path, progress=False)
