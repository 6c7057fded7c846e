"""The whole book's plan (adu_book.book_plan): the same runs the pages plan, and the cost estimate behind the intro."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from adu_book import book_plan, plans

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
RUNS_LINE = re.compile(r"\*\*(\d+) of (\d+) runs\*\* needed by this page")


def test_an_unknown_page_is_one_line_naming_the_pages():
    proc = subprocess.run([sys.executable, "-m", "adu_book.book_plan", "--pages", "tables"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no plan for page 'tables'" in proc.stderr and "main_results" in proc.stderr


def test_notebook_parameters_are_the_pages_own():
    p = book_plan.notebook_parameters("shots")
    assert p["shots_grid"] == "1,2,4,8,16" and p["tier"] == "testbed" and "seeds" in p
    with pytest.raises(ValueError, match="no plan for page 'intro'"):
        book_plan.page_plan("intro", "synthetic", "smoke")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(book_plan.PAGE_PLANS))
def test_page_plan_is_what_the_page_plans(name, tmp_path):
    """Each page at its default grid (smoke tier, no runs): the number of runs it says it needs is the number of
    run folders book_plan plans for it, so the intro's cost and `--run` cover exactly the book's runs."""
    env = {**os.environ, "ADU_RESULTS_DIR": str(tmp_path / "results")}
    env.pop("ADU_MAX_NEW_RUNS", None)
    out = tmp_path / "out.ipynb"
    args = ["-p", "dataset", "synthetic", "-p", "tier", "smoke", "-p", "max_new_runs", "0"]
    proc = subprocess.run([sys.executable, "-m", "papermill", f"{name}.ipynb", str(out), *args, "--no-progress-bar"],
                          cwd=BOOK, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = json.dumps(json.loads(out.read_text()))
    said = RUNS_LINE.search(text.replace("\\n", " "))
    assert said, "the page states how many runs it needs"
    plan = book_plan.page_plan(name, "synthetic", "smoke", tmp_path / "results" / "smoke")
    assert int(said.group(2)) == len({str(p.labels["_path"]) for p in plan})


def test_tier_grid_takes_the_tiers_value_unless_given():
    assert plans.tier_grid("ablation", "n_forget", None, "testbed") == "1"
    assert plans.tier_grid("ablation", "n_forget", None, "paper") == "1,2,3"
    assert plans.tier_grid("ablation", "n_forget", "2", "testbed") == "2"
    with pytest.raises(ValueError, match="give -p n_forget"):
        plans.tier_grid("ablation", "n_forget", None, "nosuchtier")


def test_the_testbed_runs_table_2_on_the_one_domain_sets_and_the_paper_on_all():
    test = {len(p.cfg.forget) for p in book_plan.page_plan("ablation", "pacs", "testbed") if p.labels["table"] == 2}
    paper = {len(p.cfg.forget) for p in book_plan.page_plan("ablation", "office_home", "paper")
             if p.labels["table"] == 2}
    assert test == {1} and paper == {1, 2, 3}


def _frame(rows):
    return pd.DataFrame(rows, columns=["page", "path", "method", "epochs", "shots", "seed", "forget", "exists",
                                       "seconds"])


def test_missing_runs_are_estimated_from_timed_runs_of_the_same_kind():
    runs = _frame([
        ("p", "a1", "adu", 50, 8, 1, "x", True, 100.0),
        ("p", "a2", "adu", 50, 8, 2, "y", True, 140.0),
        ("p", "a3", "adu", 50, 8, 3, "x", False, None),   # same kind: their mean, 120
        ("p", "a4", "adu", 50, 16, 1, "x", False, None),  # twice the steps: 240
        ("p", "z1", "zeroshot", 50, 8, 1, "x", False, None),  # no timed run of its method: the overall mean, 120
        ("depth", "a1", "adu", 50, 8, 1, "x", True, 100.0),  # the depth page shows two of them
        ("depth", "a2", "adu", 50, 8, 2, "y", True, 140.0),
    ])
    meas = _frame([("depth", "a1", "adu", 50, 8, 1, "x", True, 30.0), ("depth", "a2", "adu", 50, 8, 2, "y", False,
                                                                        None)])
    cost = book_plan.estimate_cost(book_plan.BookPlan(runs, meas), workers=2)
    assert cost["runs_planned"] == 5 and cost["runs_exist"] == 2
    assert cost["measurements_planned"] == 2 and cost["measurements_exist"] == 1
    assert cost["hours_done"] == pytest.approx((100 + 140 + 30) / 3600)
    assert cost["hours_missing"] == pytest.approx((120 + 240 + 120 + 30) / 3600)
    assert cost["wall_hours"] == pytest.approx((270 + 510) / 3600 / 2)
    per = cost["per_page"].set_index("page")
    assert per.loc["p", "planned"] == 5 and per.loc["depth", "hours"] == pytest.approx((240 + 60) / 3600)


def test_a_run_two_pages_share_is_counted_once():
    row = ("p", "a1", "adu", 50, 8, 1, "x", True, 100.0)
    runs = _frame([row, ("q", *row[1:])])
    cost = book_plan.estimate_cost(book_plan.BookPlan(runs, _frame([])), workers=1)
    assert cost["runs_planned"] == 1 and cost["hours_done"] == pytest.approx(100 / 3600)
    assert set(cost["per_page"]["page"]) == {"p", "q"}


def test_lighter_grids_keep_one_seed_and_the_sweeps_figure_sets():
    runs = _frame([
        ("main_results", "t1", "adu", 50, 8, 1, "photo", True, 100.0),
        ("main_results", "t2", "adu", 50, 8, 2, "photo", True, 100.0),
        ("main_results", "t3", "adu", 50, 8, 1, "sketch", True, 100.0),
        ("depth", "d2", "adu", 50, 8, 2, "photo", True, 100.0),  # not a table: only the book's grid keeps seed 2
        ("sensitivity", "t1", "adu", 50, 8, 1, "photo", True, 100.0),  # the default point, shared with Table 1
        ("sensitivity", "s1", "adu", 50, 8, 1, "photo", False, None),
        ("sensitivity", "s2", "adu", 50, 8, 1, "sketch", False, None),  # not a figure set: the light grids drop it
    ])
    grids = book_plan.grid_costs(book_plan.BookPlan(runs, _frame([])), ["photo"], workers=1, extra_hours=1.0)
    assert list(grids.index) == ["book", "tables_3_seeds", "seed1", "light"]
    assert list(grids["runs"]) == [6, 4, 4, 3]  # tables_3_seeds: t1 t2 t3 s1; seed1: t1 t3 s1 s2
    assert list(grids["hours"]) == pytest.approx([1 + 600 / 3600, 1 + 400 / 3600, 1 + 400 / 3600, 1 + 300 / 3600])
    assert "1 forget sets (photo)" in grids.at["light", "grid"] and "sensitivity" in book_plan.SWEEP_PAGES


@pytest.mark.slow
def test_run_completes_the_missing_runs_and_says_what_is_left(tmp_path):
    env = {**os.environ, "ADU_RESULTS_DIR": str(tmp_path / "results")}
    cmd = [sys.executable, "-m", "adu_book.book_plan", "--dataset", "synthetic", "--tier", "smoke", "--pages", "tsne"]
    before = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert before.returncode == 0, before.stderr[-2000:]
    assert "runs: 0 of 1 exist" in before.stdout
    ran = subprocess.run([*cmd, "--run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert len(list((tmp_path / "results").rglob("run.json"))) == 1
    after = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert "runs: 1 of 1 exist" in after.stdout


def test_a_page_states_its_grid():
    from adu_book.runs import RunStatus

    plan = book_plan.page_plan("ablation", "pacs", "testbed")
    status = RunStatus(plan, REPO / "results" / "testbed", pd.DataFrame(), 0, 0, [], {}, 0)
    assert status.grid() == "Its grid: 6 configurations × 4 forget sets (|D_forget| = 1) × seeds 1, 2, 3."
