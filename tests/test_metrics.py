from __future__ import annotations

import math

import numpy as np
import pytest

from adu_core.metrics import aggregate, h_score, unlearning_metrics


def test_h_score():
    assert h_score(80.0, 40.0) == pytest.approx(2 * 80 * 40 / 120)
    assert h_score(0.0, 0.0) == 0.0
    assert h_score(50.0, 50.0) == 50.0
    with pytest.raises(ValueError):
        h_score(-1.0, 10.0)


def test_unlearning_metrics_pool_domains():
    # kept: photo 3/4 right, cartoon 1/2 right -> pooled Mem = 4/6; forgotten: sketch 1/4 right -> For = 75
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    pred = np.array([0, 1, 2, 1, 1, 0, 0, 0, 0, 0])
    domains = np.array(["photo"] * 4 + ["cartoon"] * 2 + ["sketch"] * 4)
    m = unlearning_metrics(pred, labels, domains, forget=["sketch"])
    assert m["mem"] == pytest.approx(100 * 4 / 6)
    assert m["for"] == pytest.approx(100 - 100 * 2 / 4)
    assert m["h"] == pytest.approx(h_score(m["mem"], m["for"]))
    assert m["per_domain_acc"] == pytest.approx({"cartoon": 50.0, "photo": 75.0, "sketch": 50.0})
    with pytest.raises(ValueError):
        unlearning_metrics(pred, labels, domains, forget=["photo", "cartoon", "sketch"])


def test_aggregate_averages_per_run_h():
    runs = [{"mem": 90.0, "for": 10.0, "h": h_score(90, 10)}, {"mem": 50.0, "for": 50.0, "h": 50.0}]
    agg = aggregate(runs)
    assert agg["n"] == 2
    assert agg["h"] == pytest.approx((18.0 + 50.0) / 2)  # not h_score(70, 30) = 42
    assert agg["mem_std"] == pytest.approx(np.std([90, 50], ddof=1))
    assert math.isnan(aggregate(runs[:1])["h_std"])


def test_paired_difference_matches_a_one_sample_t_interval():
    import math

    from scipy import stats

    from adu_core.metrics import paired_difference

    a = [52.0, 60.5, 48.0, 55.0, 61.0]
    b = [50.0, 57.5, 49.0, 51.0, 58.0]
    r = paired_difference(a, b)
    d = [x - y for x, y in zip(a, b, strict=True)]
    lo, hi = stats.t.interval(0.95, len(d) - 1, loc=sum(d) / len(d), scale=stats.sem(d))
    assert r["n"] == 5 and math.isclose(r["mean"], 2.2) and math.isclose(r["lo"], lo) and math.isclose(r["hi"], hi)
    assert r["excludes_zero"] == bool(lo > 0 or hi < 0)
    # a shift common to both members of every pair cancels; a difference inside the noise does not exclude 0
    assert paired_difference([x + 30 for x in a], [x + 30 for x in b])["mean"] == r["mean"]
    noisy = paired_difference([1.0, -2.0, 3.0, -1.5], [0.0, 0.0, 0.0, 0.0])
    assert noisy["lo"] < 0 < noisy["hi"] and not noisy["excludes_zero"]
    single = paired_difference([3.0], [1.0])
    assert single["mean"] == 2.0 and math.isnan(single["lo"]) and not single["excludes_zero"]


def _grid(set_means, seed_noise, seeds=3, seed=0):
    """Paired differences: per forget set its true mean, plus seed noise; returns (d, strata)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    d, strata = [], []
    for s, m in enumerate(set_means):
        for _ in range(seeds):
            d.append(m + rng.normal(0, seed_noise))
            strata.append(f"f{s}")
    return d, strata


def test_stratified_interval_uses_the_spread_within_forget_sets_only():
    import math

    import numpy as np
    from scipy import stats

    from adu_core.metrics import over_strata_difference, stratified_difference

    d, strata = _grid([8.0, 1.0, 9.0, -2.0], seed_noise=0.5)
    zeros = [0.0] * len(d)
    s = stratified_difference(d, zeros, strata)
    groups = [np.array(d[i:i + 3]) for i in range(0, 12, 3)]
    pooled = sum(((g - g.mean()) ** 2).sum() for g in groups) / 8  # 4 sets x (3 - 1) degrees of freedom
    se = math.sqrt(pooled * 4 / 3) / 4
    half = stats.t.ppf(0.975, 8) * se
    assert s["df"] == 8 and s["n"] == 12 and s["n_strata"] == 4
    assert math.isclose(s["mean"], np.mean([g.mean() for g in groups]))
    assert math.isclose(s["lo"], s["mean"] - half) and math.isclose(s["hi"], s["mean"] + half)
    assert s["excludes_zero"]  # the seeds agree within every set
    o = over_strata_difference(d, zeros, strata)
    assert o["n"] == 4 and o["df"] == 3 and o["n_pairs"] == 12 and math.isclose(o["mean"], s["mean"])
    assert not o["excludes_zero"]  # but the sets disagree: another forget set could go either way


def test_stratified_interval_needs_a_replicate_and_weighs_forget_sets_equally():
    import math

    from adu_core.metrics import stratified_difference

    one_seed = stratified_difference([1.0, 2.0, 3.0], [0.0] * 3, ["a", "b", "c"])
    assert one_seed["df"] == 0 and math.isnan(one_seed["lo"]) and not one_seed["excludes_zero"]
    uneven = stratified_difference([1.0, 1.0, 1.0, 5.0], [0.0] * 4, ["a", "a", "a", "b"])
    assert uneven["mean"] == 3.0  # (1 + 5) / 2, not the pooled 2.0
    with pytest.raises(ValueError, match="equal length"):
        stratified_difference([1.0], [0.0], ["a", "b"])
