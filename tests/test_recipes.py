"""The two recipes on the book's side: the page's plans, the one-switch effects, the weight edit's record."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import adu_book
from adu_book import recipes, weight_edit
from adu_core.config import RECIPES

SETS = ("art_painting", "cartoon", "photo", "sketch")


def _runs(rows):
    return pd.DataFrame(rows)


def _grid(switch_effect: float, precision_gap: float = 0.0) -> pd.DataFrame:
    """A made-up one-switch grid: the reference at bf16 and fp32 (fp32 higher by ``precision_gap`` for ADU), and the
    'batch' switch at fp32 that adds ``switch_effect`` to ADU's H and nothing to the Baseline's."""
    rng = np.random.default_rng(0)
    rows = []
    for f in SETS:
        for seed in (1, 2, 3):
            base = 50 + rng.normal(0, 3)
            adu = base + 2 + rng.normal(0, 0.2)
            for prec, shift in (("bf16", 0.0), ("fp32", precision_gap)):
                rows.append({"switch": "none", "method_key": "baseline", "forget": f, "seed": seed, "h": base,
                             "mem": base, "for": base, "precision": prec})
                rows.append({"switch": "none", "method_key": "adu", "forget": f, "seed": seed, "h": adu + shift,
                             "mem": adu, "for": adu, "precision": prec})
            rows.append({"switch": "batch", "method_key": "baseline", "forget": f, "seed": seed, "h": base,
                         "mem": base, "for": base, "precision": "fp32"})
            rows.append({"switch": "batch", "method_key": "adu", "forget": f, "seed": seed,
                         "h": adu + precision_gap + switch_effect, "mem": adu, "for": adu, "precision": "fp32"})
    return _runs(rows)


def test_a_switch_is_compared_with_the_reference_at_its_own_precision():
    batch = [s for s in recipes.SWITCHES if s.key == "batch"]
    out = recipes.switch_effects(_grid(switch_effect=3.0, precision_gap=5.0), batch).iloc[0]
    assert out["precision"] == "fp32"
    assert out["gap_h"]["mean"] == pytest.approx(3.0) and out["gap_h"]["excludes_zero"]
    assert out["adu_h"]["mean"] == pytest.approx(3.0)  # not 8: the bf16 reference is not used
    none = recipes.switch_effects(_grid(switch_effect=0.0, precision_gap=5.0), batch).iloc[0]
    assert none["gap_h"]["mean"] == pytest.approx(0.0, abs=1e-9) and not none["adu_h"]["excludes_zero"]


def test_the_largest_change_is_named_and_worded_by_its_interval():
    batch = [s for s in recipes.SWITCHES if s.key == "batch"]
    effects = recipes.switch_effects(_grid(switch_effect=3.0), batch)
    text = recipes._top(effects, "gap_h", "ADU − Baseline in H")
    assert text.startswith("the switch that moves ADU − Baseline in H most is batch 128, random sampler, by +3.00")
    assert "1 of 1 switches" in text
    assert recipes._top(effects.iloc[0:0], "gap_h", "x") == "not measured yet"
    none = recipes._top(recipes.switch_effects(_grid(switch_effect=0.0), batch), "gap_h", "the gap")
    assert none.startswith("no switch changes the gap measurably (none of 1)")


def test_a_larger_estimate_without_a_measurable_difference_is_not_called_the_largest_change():
    def effect(mean, excludes_zero):
        return {"mean": mean, "lo": mean - (9 if not excludes_zero else 1), "hi": mean + (9 if not excludes_zero
                else 1), "n": 4, "excludes_zero": excludes_zero}

    effects = pd.DataFrame([{"switch": "a", "label": "wide", "gap_h": effect(-5.0, False)},
                            {"switch": "b", "label": "clear", "gap_h": effect(2.0, True)}])
    text = recipes._top(effects, "gap_h", "the gap")
    assert text.startswith("the switch that moves the gap most is clear, by +2.00")
    assert "wide has a larger point estimate, −5.00" in text and "no measurable difference" in text


def test_page_plan_parts_and_the_preset():
    pg = adu_book.page("authors_code", "pacs", "testbed", max_new_runs=0)
    parts = recipes.page_plan(pg, "paper,authors_code", "all", "1,2,3", "1", "all", "1", "fp32")
    assert len(parts["table1"]) == 2 * 2 * 14 * 3
    # reference twice (as Table 1, and at fp32) for both methods, then 9 switches for ADU and 4 for the Baseline
    assert len(parts["switches"]) == (2 * 2 + 9 + 4) * 4 * 3
    assert {r.cfg.precision for r in parts["switches"] if r.labels["variant"].endswith("(fp32)")} == {"fp32"}
    assert len(parts["table3"]) == 4 * 4 * 3 and all(r.cfg.recipe == "authors_code" for r in parts["table3"])
    authors = [r.cfg for r in parts["table1"] if r.labels["recipe"] == "authors_code"]
    assert all(getattr(c, k) == (c.n_ctx if v == "@n_ctx" else v) for c in authors for k, v in
               RECIPES["authors_code"].items())
    with pytest.raises(ValueError, match="unknown switches"):
        recipes.select_switches("text_prompts,bigger_batch")


def test_split_runs_by_label():
    runs = _runs([{"switch": None, "table": None, "h": 1.0}, {"switch": "batch", "table": None, "h": 2.0},
                  {"switch": None, "table": 3, "h": 3.0}])
    parts = recipes.split_runs(runs)
    assert [len(parts[k]) for k in ("table1", "switches", "table3")] == [1, 1, 1]


def test_weight_edit_reads_the_record_of_each_run(tmp_path):
    rows = []
    for seed, counts in ((1, {"0": 3, "1": 5}), (2, {"0": 1, "1": 7})):
        run = {"config": {"forget": ["photo"], "seed": seed, "method": "kvw"},
               "history": [{"round": 0}, {"kvw_edit": {"count_per_block": counts, "hidden": {"0": 16, "1": 16},
                                                       "n_weakened": sum(counts.values()), "rounds": 2,
                                                       "stop": "max_rounds", "seconds": 1.5}}]}
        path = tmp_path / f"s{seed}.json"
        path.write_text(json.dumps(run))
        rows.append({"method": "kvw", "path": str(path)})
    counts = weight_edit.edit_counts(_runs(rows))
    assert counts.groupby("block")["weakened"].mean().to_dict() == {0: 2.0, 1: 6.0}
    facts = weight_edit.page_facts(_runs(rows).assign(total_s=60.0, precision="fp32", forget="photo", seed=[1, 2],
                                                     variant="KVW (weight edit)", h=1.0, mem=1.0, **{"for": 1.0}),
                                   counts)
    assert facts["kvw_edit_size"].startswith("8 of the encoder's 32 MLP units")
    assert "KVW (weight edit) 1.0 min (fp32, n = 2)" in facts["kvw_cost"]
    assert "not measurable yet" in facts["kvw_h_vs_adu"]
    fig = weight_edit.plot_edit_counts(counts)
    assert fig.axes[0].get_ylabel() == "units weakened (of 16)"


def test_recipes_are_compared_on_the_cells_both_have_run():
    """The paper's recipe on 4 forget sets x 3 seeds, the authors' on 2 x 3 (one of them without its Baseline): the
    comparison uses the 1 x 3 cells where both recipes have both methods, and ADU's Mem change is paired on them."""
    rows = []
    for f in SETS:
        for seed in (1, 2, 3):
            for m, mem in (("baseline", 60.0), ("adu", 55.0 + seed)):
                rows.append({"recipe": "paper", "method_key": m, "forget": f, "seed": seed, "h": mem, "mem": mem,
                             "for": 60.0, "n_forget": 1})
            if f in SETS[:2]:
                rows.append({"recipe": "authors_code", "method_key": "adu", "forget": f, "seed": seed,
                             "h": 30.0, "mem": 30.0 + seed, "for": 70.0, "n_forget": 1})
            if f == SETS[0]:
                rows.append({"recipe": "authors_code", "method_key": "baseline", "forget": f, "seed": seed,
                             "h": 40.0, "mem": 40.0, "for": 70.0, "n_forget": 1})
    t1 = pd.DataFrame(rows)
    both = recipes.matched_cells(t1)
    assert set(both["forget"]) == {SETS[0]} and len(both) == 12
    no_switches = t1.iloc[:0].assign(switch=[], precision=[])
    facts = recipes.page_facts({"table1": t1, "switches": no_switches}, pd.DataFrame(), {"switches": [None] * 6})
    assert facts["ac_switch_grid"].startswith("The one-switch grid is not complete (0 of 6 runs)")
    assert facts["ac_matched"].startswith("1 forget set (|D_forget| = 1)") and "seeds 1, 2, 3" in facts["ac_matched"]
    assert "n = 3 in 1 forget set)" in facts["ac_gap_authors"] and "n = 12 in 4" in facts["ac_gap_paper_all"]
    assert facts["ac_mem_change"].startswith("ADU's Mem under the authors' code is lower than under the paper's text "
                                             "by 25.00 points")
    gaps = recipes.gap_sentences(t1)  # the main results page: the paper's whole grid, then both on shared cells
    assert "n = 12 in 4 forget sets" in gaps["main_gap_paper"]
    assert "n = 3 in 1 forget set)" in gaps["main_gap_paper_matched"]
    assert gaps["main_gap_authors_matched"].startswith("ADU's H (authors' code) is lower than the Baseline's by 10.00")
    assert gaps["main_gap_paper_matched"].startswith("ADU's H (paper's text)")
    assert facts["ac_gap_paper_all"].startswith("on the paper recipe's whole grid: ADU's H")


def test_a_complete_grid_is_not_reported_twice():
    """When both recipes have run every cell of the paper's grid, the paper's whole-grid figure is the matched one:
    the conclusion says so instead of printing the same interval a second time."""
    rows = [{"recipe": r, "method_key": m, "forget": f, "seed": seed, "h": h + seed, "mem": h, "for": 60.0,
             "n_forget": 1}
            for r in ("paper", "authors_code") for f in SETS for seed in (1, 2, 3)
            for m, h in (("baseline", 50.0), ("adu", 45.0 if r == "paper" else 40.0))]
    t1 = pd.DataFrame(rows)
    no_switches = t1.iloc[:0].assign(switch=[], precision=[])
    facts = recipes.page_facts({"table1": t1, "switches": no_switches}, pd.DataFrame(), {"switches": []})
    assert facts["ac_gap_paper_all"] == "these cells are the paper recipe's whole grid"
    assert "n = 12 in 4 forget sets" in facts["ac_gap_paper"] and "by 5.00" in facts["ac_gap_paper"]
    gaps = recipes.gap_sentences(t1)
    assert gaps["main_gap_paper_matched"].startswith("these cells are the paper recipe's whole grid")
    assert "by 10.00" in gaps["main_gap_authors_matched"]


def test_the_switch_grid_is_called_complete_only_when_every_planned_run_exists():
    assert recipes._grid_state(5, 6) == ("The one-switch grid is not complete (5 of 6 runs): each switch's n is "
                                         "stated, and a switch without paired runs is not ranked.")
    assert recipes._grid_state(6, 6) == "The one-switch grid is complete (6 runs)."
