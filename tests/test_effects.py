"""Paired comparisons of the book (adu_book.effects): pairing, intervals and the words they allow."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from adu_book import effects


def runs_table(gain: float, noise: float, seeds=(1, 2, 3), rng_seed: int = 0) -> pd.DataFrame:
    """Baseline and ADU on 4 + 6 forget sets x seeds; ADU = Baseline + gain + noise; forget sets differ a lot."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    sets = [("a",), ("b",), ("c",), ("d",), ("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")]
    for s in sets:
        level = rng.normal(50, 15)  # the spread between forget sets, shared by both methods
        for seed in seeds:
            base = level + rng.normal(0, 2)
            rows.append({"variant": "Baseline", "forget": "+".join(s), "seed": seed, "n_forget": len(s), "h": base})
            rows.append({"variant": "ADU", "forget": "+".join(s), "seed": seed, "n_forget": len(s),
                         "h": base + gain + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def test_pairing_removes_the_spread_between_forget_sets():
    runs = runs_table(gain=3.0, noise=1.0)
    e = effects.paired(runs, "ADU", "Baseline", by="n_forget")
    assert e["all"]["n"] == 30 and e[1]["n"] == 12 and e[2]["n"] == 18
    assert e["all"]["excludes_zero"] and 2.0 < e["all"]["mean"] < 4.0
    assert e["all"]["hi"] - e["all"]["lo"] < 2.0  # unpaired, the 15-point spread would swamp a 3-point gain
    assert effects.effect_verdict(e["all"]).startswith("higher: +")


def test_a_difference_inside_the_noise_is_called_no_measurable_difference():
    runs = runs_table(gain=0.2, noise=4.0, rng_seed=3)
    e = effects.paired(runs, "ADU", "Baseline")["all"]
    assert e["lo"] < 0 < e["hi"] and not e["excludes_zero"]
    text = effects.effect_verdict(e)
    assert text.startswith("no measurable difference: ") and "95 % CI" in text and "n = 30" in text


def test_only_shared_pairs_count_and_one_pair_has_no_interval():
    runs = runs_table(gain=3.0, noise=1.0)
    partial = runs[~((runs["variant"] == "ADU") & (runs["seed"] > 1))]  # ADU has seed 1 only
    assert effects.paired(partial, "ADU", "Baseline")["all"]["n"] == 10
    one = runs[(runs["forget"] == "a") & (runs["seed"] == 1)]
    e = effects.paired(one, "ADU", "Baseline")["all"]
    assert e["n"] == 1 and math.isnan(e["lo"])
    assert effects.effect_verdict(e).startswith("not measurable with one pair")
    assert effects.paired(runs, "ADU", "LP++") == {}
    assert effects.effect_verdict(None) == "not measurable yet (no paired runs)"


def test_effects_table_and_best_method():
    runs = runs_table(gain=3.0, noise=1.0)
    table = effects.effects_table(runs, "Baseline", ["Baseline", "ADU"], metrics=("h",))
    assert list(table["n_forget"]) == ["all", 1, 2] and table["outside noise"].all()
    assert table["Δ H"].str.contains("95 % CI").all()
    best = effects.best_by(runs)
    assert best["all"]["best"] == "ADU" and best["all"]["runner_up"] == "Baseline"
    assert best["all"]["lead"]["excludes_zero"]
    shown = effects.effects_for_display(table)
    assert list(shown.index) == [("all", "ADU"), (1, "ADU"), (2, "ADU")]  # labelled rows, no running number
    assert list(shown["outside noise"]) == ["yes"] * 3
    single = effects.effects_table(runs[runs["n_forget"] == 1], "Baseline", ["ADU"], metrics=("h",))
    assert list(effects.effects_for_display(single).index) == [("all", "ADU")]  # "1" would repeat "all"


def test_best_method_compares_rows_on_the_pairs_they_share():
    """While a grid is incomplete, a row with extra (easy) forget sets must not lead by averaging other pairs."""
    runs = runs_table(gain=3.0, noise=1.0, seeds=(1,))
    extra = pd.DataFrame([{"variant": "ADU", "forget": f"x{i}", "seed": 1, "n_forget": 1, "h": 99.0} for i in range(5)])
    lpp = runs[runs["variant"] == "Baseline"].assign(variant="LP++", h=lambda d: d["h"] + 6.0)
    best = effects.best_by(pd.concat([runs, extra, lpp]))
    assert best["all"]["best"] == "LP++" and best["all"]["n"] == 10  # ADU's 99s are on pairs the others lack
    assert best["all"]["runner_up"] == "ADU" and best["all"]["lead"]["excludes_zero"]


@pytest.mark.parametrize(("mean", "lo", "hi", "text"), [
    (1.234, 0.5, 2.0, "+1.23 (95 % CI +0.50 to +2.00, n = 9)"),
    (-0.6, -2.1, 0.9, "−0.60 (95 % CI −2.10 to +0.90, n = 9)"),
])
def test_effect_text(mean, lo, hi, text):
    assert effects.effect_text({"mean": mean, "lo": lo, "hi": hi, "n": 9}) == text
