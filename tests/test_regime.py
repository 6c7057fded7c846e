"""How far the testbed carries (adu_book.regime, book/regime.ipynb): the page's grids, the regime table's rules,
which ledger rows depend on a property that differs, and the links that lead to the page."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from adu_book import book_plan, ledger, plans, regime
from adu_book.runs import BUDGET_ENV, RunStatus

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"


def test_the_page_is_an_analysis_and_book_plan_lists_its_runs():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    analyses = next(p for p in toc["parts"] if p["caption"] == "Analyses")
    assert "book/regime" in {c["file"] for c in analyses["chapters"]}
    assert book_plan.page_title("regime") == "How far the testbed carries"
    plan = book_plan.page_plan("regime", "pacs", "testbed")
    tuned = [p for p in plan if p.labels["part"] == "tuning" and p.cfg.method == "baseline"]
    assert {p.cfg.forget_loss for p in tuned} == {"none"} and {p.cfg.recipe for p in tuned} == {"paper", "authors_code"}
    assert len(tuned) == 24 and {len(p.cfg.forget) for p in tuned} == {1} and {p.cfg.seed for p in tuned} == {1, 2, 3}
    authors = next(p.cfg for p in tuned if p.cfg.recipe == "authors_code")
    assert authors.batch_size == 128 and authors.forget_loss == "none"  # the recipe, with L_forget still off
    degraded = [p for p in plan if p.labels["part"] == "degraded"]
    assert len(degraded) == 4 * 14 and {p.cfg.seed for p in degraded} == {1}
    assert {p.cfg.method_options["detector_accuracy"] for p in degraded} == {0.3, 0.45, 0.6, 0.75}
    probe = [p for p in plan if p.labels["variant"] == plans.PROBE_GATE.label]
    assert len(probe) == 42 and all(p.cfg.method_options == {"detector": "probe"} for p in probe)


def test_table1_has_the_data_matched_gate_beside_the_zero_shot_one():
    rows = plans.table1_variants(["zeroshot", "gate", "adu"])
    assert [v.key for v in rows] == ["zeroshot", "gate", "gate/probe", "adu"]
    assert [v.key for v in plans.table1_variants(["adu"])] == ["adu"]
    main = book_plan.page_plan("main_results", "pacs", "testbed")
    assert sum(p.labels["variant"] == plans.PROBE_GATE.label for p in main) == 42


def test_backbone_in_words():
    from adu_core.config import make_config

    testbed = regime.backbone_text(make_config("pacs", "testbed"))
    assert "6-layer ViT at 64 px" in testbed and "not the paper's CLIP ViT-B/16" in testbed
    assert regime.backbone_text(make_config("office_home", "paper")) == "ViT-B-16 (openai)"


def values(**over):
    """The regime's values as :func:`adu_book.regime.regime_values` returns them, made up."""
    base = {"dataset": "pacs", "n_domains": 4, "backbone": "tiny", "n_classes": 7,
            "paper_classes": {"office_home": 65, "mini_domainnet": 126, "imagenet": 1000},
            "probe": 91.8, "probe_n": 42, "paper_probe": 25.8, "silhouette": 0.33, "silhouette_n": 100,
            "detector": 92.0, "probe_detector": math.nan, "captions": True, "gate_template": "a {s} of a {c}.",
            "n_templates": 5, "zs_mem": 66.6, "tuning": {"paper": {"mem": None, "train_mem": None}},
            "trained_vs_lpp": {"paper": {"baseline": None, "adu": None}},
            "paper_baseline_vs_lpp": {"office_home": -5.2}, "trained_vs_zs": {"baseline": None, "adu": None},
            "logit_scale": 18.76, "pool_gap": -1.4,
            "pool_gap_ci": 4.2, "variance": {"class": 0.24, "domain": 0.4}, "recipes": ["paper"]}
    return {**base, **over}


def effect(mean, lo, hi):
    return {"mean": mean, "lo": lo, "hi": hi, "n": 12, "excludes_zero": lo > 0 or hi < 0, "basis": "stratified",
            "stratified": {"mean": mean, "lo": lo, "hi": hi, "n": 12, "n_strata": 4},
            "over_sets": {"mean": mean, "lo": lo - 5, "hi": hi + 5, "n": 4}}


def test_regime_table_rules():
    table = regime.regime_table(values()).set_index("key")
    assert list(table.index) == [p.key for p in regime.PROPERTIES]
    assert table.loc["separable", "differs"] == "yes" and table.loc["classes", "differs"] == "yes"
    assert table.loc["detector", "known as"] == "unknown" and table.loc["tuning_gain", "differs"] == "not measured yet"
    assert "85.7 %" in table.loc["classes", "testbed (PACS)"] and "Office-Home 65: 98.5 %" in table.loc[
        "classes", "the paper's regime"]
    assert table.loc["separable", "holds under both recipes"].startswith("yes: no training")
    lower = values(tuning={"paper": {"mem": effect(-6.5, -8.0, -5.0), "train_mem": effect(9.0, 6.0, 12.0)}})
    assert regime.regime_table(lower).set_index("key").loc["tuning_gain", "differs"].startswith("yes")
    higher = values(tuning={"paper": {"mem": effect(4.0, 2.0, 6.0), "train_mem": None}})
    assert regime.regime_table(higher).set_index("key").loc["tuning_gain", "differs"].startswith("no")
    near = values(trained_vs_lpp={"paper": {"baseline": effect(-2.8, -4.4, -1.2), "adu": None}},
                  paper_baseline_vs_lpp={"office_home": -5.2, "mini_domainnet": -0.6})
    assert regime.regime_table(near).set_index("key").loc["trained_mem", "differs"].startswith("no")
    assert regime.differs_kind("not measured yet") == "unknown" and regime.differs_kind("no: x") == "no"
    assert regime.differs_kind("yes (inferred)") == "yes"


def test_each_ledger_row_says_whether_it_depends_on_a_property_that_differs():
    reg = regime.regime_table(values())
    rows = [{"key": c.key, "recipe": r, "testbed: verdict": "inconclusive"} for c in ledger.CLAIMS for r in c.recipes]
    claims = regime.claims_table(pd.DataFrame(rows), reg, "testbed").set_index("key")
    assert len(claims) == len(ledger.CLAIMS)
    assert claims.loc["t2_ddl", "depends on a property that differs"].startswith("yes: domains already separable")
    assert claims.loc["shots_adu", "depends on a property that differs"] == "unknown: tuning gain"  # not measured
    assert claims.loc["attention", "depends on a property that differs"] == "no"  # rests on none listed
    facts = regime.regime_facts(values(), claims, pd.DataFrame(rows).assign(**{
        "claim": "c", "testbed: verdict if pairs were independent": "inconclusive"}), "testbed")
    assert facts["regime_tuning_authors_code"] == "not in this execution's grid"
    assert facts["regime_changed"] == "none" and facts["regime_cap"] == "85.7"


def test_the_status_box_of_a_testbed_page_links_the_regime():
    plan = plans.plan_runs("synthetic", "smoke", plans.method_variants(["adu"]), [("sketch",)], (1,))
    status = RunStatus(plan, REPO, pd.DataFrame(), 0, 0, [], {}, 0)
    assert "[How far the testbed carries](regime.html)" in status.message("main_results")
    assert "regime.html" not in status.message("regime")
    paper = plans.plan_runs("office_home", "paper", plans.method_variants(["adu"]), [("art",)], (1,))
    assert "regime.html" not in RunStatus(paper, REPO, pd.DataFrame(), 0, 0, [], {}, 0).message("main_results")


def test_the_ledger_page_links_the_regime_first():
    nb = nbformat.read(BOOK / "ledger.ipynb", as_version=4)
    assert "[How far the testbed carries](regime.ipynb)" in nb.cells[0].source


@pytest.mark.slow
def test_regime_page_trains_its_small_grid_and_glues_its_numbers(tmp_path):
    """The page at the smoke tier on one-domain forget sets: it trains its runs, checks the closed form against
    its gate runs and glues the tuning gain and the break-even accuracies."""
    env = {**os.environ, "ADU_RESULTS_DIR": str(tmp_path / "results")}
    env.pop(BUDGET_ENV, None)
    out = tmp_path / "out.ipynb"
    params = {"dataset": "synthetic", "tier": "smoke", "n_forget": "1", "recipes": "paper",
              "detector_accuracies": "0.5", "max_new_runs": -1}
    args = [a for k, v in params.items() for a in ("-p", k, str(v))]
    proc = subprocess.run([sys.executable, "-m", "papermill", "regime.ipynb", str(out), *args, "--no-progress-bar"],
                          cwd=BOOK, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    glued = {o["metadata"]["scrapbook"]["name"]: next(v for k, v in o["data"].items() if k.endswith("text/plain"))
             for o in outputs if "scrapbook" in o.get("metadata", {})}
    assert "n = 4 runs" in glued["gate_check_zeroshot"] and "n = 4 runs" in glued["gate_check_degraded"]
    assert "zero-shot's" in glued["regime_tuning_paper"] or "no measurable" in glued["regime_tuning_paper"]
    assert "Office-Home |D_forget| = 1" in glued["gate_break_even"]
    assert "not in this execution's grid" in glued["regime_tuning_authors_code"]
