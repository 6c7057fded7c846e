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
