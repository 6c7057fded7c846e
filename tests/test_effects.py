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


def grid_where_intervals_differ(seeds=(1, 2, 3)) -> pd.DataFrame:
    """Four forget sets whose effects differ a lot (+8, +1, +9, −2) while seeds agree within each: the stratified
    interval (over seeds) excludes 0, the one over forget sets does not."""
    rng = np.random.default_rng(1)
    rows = []
    for s, gain in zip("abcd", (8.0, 1.0, 9.0, -2.0), strict=True):
        for seed in seeds:
            base = rng.normal(50, 10)
            rows += [{"variant": "Baseline", "forget": s, "seed": seed, "n_forget": 1, "h": base,
                      "path": f"/r/b/{s}/{seed}"},
                     {"variant": "ADU", "forget": s, "seed": seed, "n_forget": 1, "h": base + gain + rng.normal(0, .4),
                      "path": f"/r/a/{s}/{seed}"}]
    return pd.DataFrame(rows)


def test_two_intervals_say_what_they_estimate():
    e = effects.paired(grid_where_intervals_differ(), "ADU", "Baseline")["all"]
    assert e["basis"] == "stratified" and e["n"] == 12 and e["n_sets"] == 4 and e["n_pairs"] == 12
    assert e["excludes_zero"] and e["stratified"]["df"] == 8  # the primary one: over seeds
    assert not e["over_sets"]["excludes_zero"] and e["over_sets"]["n"] == 4  # another forget set could differ
    assert e["pooled"]["n"] == 12  # the old rule, kept for the record
    assert effects.effect_text(e).endswith("over seeds, n = 12 in 4 forget sets)")
    assert effects.interval_text(e["over_sets"], "forget sets").endswith("over forget sets, n = 4)")
    assert effects.effect_verdict(e).startswith("higher: ")
    # one seed per forget set: no within-set spread, so the effect rests on the interval over forget sets
    one = effects.paired(grid_where_intervals_differ(seeds=(1,)), "ADU", "Baseline")["all"]
    assert one["basis"] == "forget sets" and one["n"] == 4 and not one["excludes_zero"]
    assert effects.effect_text(one).endswith("over forget sets, n = 4)")


def test_two_runs_in_one_cell_are_refused_not_averaged():
    runs = grid_where_intervals_differ()
    again = runs.iloc[[0]].copy()  # the same run listed twice (a run two rows share) counts once
    assert effects.paired(pd.concat([runs, again]), "ADU", "Baseline")["all"]["n"] == 12
    other = runs.iloc[[1]].assign(path="/r/a/a/1-rerun", h=0.0)  # a different ADU run in cell (a, seed 1)
    with pytest.raises(effects.DuplicateRunsError, match="share a cell") as err:
        effects.paired(pd.concat([runs, other]), "ADU", "Baseline")
    assert "/r/a/a/1-rerun" in str(err.value)
    no_paths = runs.drop(columns="path")
    with pytest.raises(effects.DuplicateRunsError):
        effects.paired(pd.concat([no_paths, no_paths.iloc[[1]]]), "ADU", "Baseline")
