"""The claims ledger: fixed verdict rules fed made-up run sets, one per verdict, and the runs table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adu_book import ledger
from adu_book.effects import paired


def pairs(diffs, a="ADU", b="Baseline"):
    """A run set where ``a`` − ``b`` per (forget set, seed) pair are ``diffs`` (b's level varies a lot)."""
    rng = np.random.default_rng(0)
    rows = []
    for i, d in enumerate(diffs):
        level = rng.normal(50, 15)
        rows += [{"variant": b, "forget": f"f{i}", "seed": 1, "h": level},
                 {"variant": a, "forget": f"f{i}", "seed": 1, "h": level + d}]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("diffs", "direction", "expected"), [
    ([3.1, 2.7, 3.4, 2.9, 3.2], "+", "supported"),  # clearly up, the paper says up
    ([-3.1, -2.7, -3.4, -2.9, -3.2], "+", "contradicted"),  # clearly down
    ([2.0, -1.5, 0.5, -0.8, 1.1], "+", "inconclusive"),  # the interval covers 0
    ([-3.1, -2.7, -3.4, -2.9, -3.2], "-", "supported"),  # the paper says down (the Baseline overfits)
    ([0.3, -0.2, 0.1, -0.4, 0.2], "=", "supported"),  # stable: within ±2 H
    ([6.1, 5.7, 6.4, 5.9, 6.2], "=", "contradicted"),  # wholly outside the band
    ([1.0, 3.5, 0.2, 4.0, 2.2], "=", "inconclusive"),  # straddles the band's edge
    ([3.0], "+", "inconclusive"),  # one pair: no interval
])
def test_verdict_rules(diffs, direction, expected):
    effect = paired(pairs(diffs), "ADU", "Baseline")["all"]
    assert ledger.verdict(effect, direction) == expected


def test_no_runs_is_not_tested_and_figures_are_qualitative():
    assert ledger.verdict(None, "+") == "not tested here"
    assert ledger.verdict(paired(pairs([]), "ADU", "Baseline").get("all"), "+") == "not tested here"
    assert ledger.verdict({"mean": 1, "lo": 0.5, "hi": 2, "n": 5}, "q") == "qualitative"
    assert set(ledger.VERDICTS) == {"supported", "contradicted", "inconclusive", "not tested here", "qualitative"}


def test_ledger_rows_fill_each_tier_from_its_runs():
    from adu_book.paper import load_paper_numbers

    base = pairs([3.1, 2.7, 3.4, 2.9, 3.2])
    lpp = base[base["variant"] == "Baseline"].assign(variant="LP++", h=lambda d: d["h"] + 2.0)  # the strongest rival
    # a training-free gate far above everything: ours, not one of the paper's rows, so it is not the rival of
    # "ADU has the best H of all methods" but has a row of its own
    gate = base[base["variant"] == "Baseline"].assign(variant="Domain gate", h=lambda d: d["h"] + 20.0)
    t1 = pd.concat([base, lpp, gate])
    empty = pd.DataFrame(columns=["variant", "forget", "seed", "h", "domain_acc_probe"])
    evidence = {name: empty for name in ("t1", "t2", "t3", "t4", "gamma", "lam", "shots", "pseudo")}
    evidence["t1"] = t1
    table = ledger.ledger_rows({"testbed": evidence, "paper": None}, load_paper_numbers())
    assert len(table) == len(ledger.CLAIMS) and table["key"].is_unique
    row = table.set_index("key")
    assert row.loc["t1_baseline", "testbed: verdict"] == "supported"
    assert row.loc["t1_best", "testbed: verdict"] == "supported"  # ADU − LP++ (the rival) ≈ +1 in every pair
    assert row.loc["t1_best", "testbed: ours"].startswith("+0.") or row.loc["t1_best", "testbed: ours"].startswith("+1.")
    assert row.loc["t1_gate", "testbed: verdict"] == "contradicted"  # ADU − gate ≈ −17 in every pair
    assert row.loc["t2_ddl", "testbed: verdict"] == "not tested here" and row.loc["t2_ddl", "testbed: ours"] == "no runs"
    assert (table["paper: verdict"].isin(["not tested here", "qualitative"])).all()
    assert row.loc["tsne", "testbed: verdict"] == "qualitative"
    assert row.loc["t1_baseline", "paper's evidence"].startswith("ADU − Baseline, H (mean over |D_forget|): ")
    assert "Mini DomainNet +" in row.loc["t1_baseline", "paper's evidence"]


def test_runs_csv_has_a_row_per_valid_run(tmp_path):
    from adu_core.config import make_config
    from adu_core.train import run_experiment

    store = tmp_path / "results" / "smoke"
    run_experiment(make_config("synthetic", forget=("sketch",), epochs=1), store / "a", progress=False)
    (store / "b").mkdir(parents=True)
    (store / "b" / "run.json").write_text("{not json")
    n, problems = ledger.runs_csv([store], tmp_path / "runs.csv")
    frame = pd.read_csv(tmp_path / "runs.csv")
    assert n == 1 and len(frame) == 1 and len(problems) == 1 and "not valid JSON" in problems[0]
    assert {"config", "h", "mem", "for", "seed", "tier", "commit", "weights_sha256", "data_sha256",
            "train_mem"} <= set(frame.columns)
