"""adu_book, the engine behind the book (plans, runs, the paper's numbers, tables, plots, facts), and the table pages'
notebooks.

Run tests use the synthetic dataset and the smoke tier (a tiny random model: seconds per run); the runs are made
once per module in a shared temporary results folder and reused.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

import adu_book
from adu_book import facts, names, plans, plots, protocol, provenance, tables
from adu_book.paper import (
    _installed_repo_file,
    analogous_domain,
    load_paper_numbers,
    paper_for_variants,
    paper_reference,
)
from adu_book.runs import BUDGET_ENV, RUN_COLUMNS, ensure_data, ensure_runs, resolve_budget
from adu_core.config import field_names, make_config
from adu_core.train import resolve_config, run_folder

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
NOTEBOOKS = ("main_results", "ablation", "domain_accuracy", "protocol")
SETS = [("sketch",), ("photo", "sketch")]


# --- pure helpers ----------------------------------------------------------------------------------------------------------
def test_forget_sets_enumerates_all_combinations_never_all_domains():
    doms = ("a", "b", "c", "d")
    sets = plans.forget_sets(doms)
    assert len(sets) == 4 + 6 + 4
    assert len(set(sets)) == len(sets)
    assert all(0 < len(s) < len(doms) for s in sets)
    assert sets[:4] == [("a",), ("b",), ("c",), ("d",)]
    assert ("a", "b", "c") in sets and ("b", "d") in sets
    assert plans.forget_sets(doms, sizes=(4,)) == []  # forgetting every domain is never planned
    assert plans.forget_sets(("real", "sketch")) == [("real",), ("sketch",)]  # ImageNet: |D_forget| = 1 only
    assert plans.forget_sets(doms, sizes=(2,)) == [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"),
                                                    ("c", "d")]
    with pytest.raises(ValueError):
        plans.forget_sets(("a", "a", "b"))


def test_parse_forget_sets():
    doms = ("photo", "sketch", "cartoon", "painting")
    assert plans.parse_forget_sets("all", doms, (1,)) == [("photo",), ("sketch",), ("cartoon",), ("painting",)]
    assert plans.parse_forget_sets("sketch;sketch+photo", doms) == [("sketch",), ("photo", "sketch")]
    assert plans.parse_forget_sets([["cartoon"], ["painting", "photo"]], doms) == [("cartoon",),
                                                                                     ("photo", "painting")]
    with pytest.raises(ValueError, match="unknown"):
        plans.parse_forget_sets("dog", doms)
    with pytest.raises(ValueError, match="1 to 3"):
        plans.parse_forget_sets("photo+sketch+cartoon+painting", doms)


def test_seeds_and_ints():
    assert plans.resolve_seeds(None, "paper") == (1, 2, 3)
    assert plans.resolve_seeds(2, "paper") == (1, 2)
    assert plans.resolve_seeds("1,3", "testbed") == (1, 3)
    assert plans.resolve_seeds([4], "smoke") == (4,)
    assert plans.parse_ints("1,2,3") == (1, 2, 3) and plans.parse_ints(2) == (2,)
    assert plans.parse_list("a, b,,c") == ["a", "b", "c"]


def test_budget(monkeypatch):
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    assert resolve_budget(None, "paper") == -1
    assert resolve_budget(None, "testbed") == 0
    assert resolve_budget(None, "smoke") == -1
    assert resolve_budget(None, "testbed", force=True) == -1
    assert resolve_budget(5, "testbed") == 5
    monkeypatch.setenv(BUDGET_ENV, "3")
    assert resolve_budget(None, "paper") == 3
    assert resolve_budget(-1, "paper") == -1  # the parameter wins over the environment
    monkeypatch.setenv(BUDGET_ENV, "many")
    with pytest.raises(ValueError, match=BUDGET_ENV):
        resolve_budget(None, "paper")


def test_analogous_domain():
    assert analogous_domain(("art_painting", "cartoon", "photo", "sketch")) == "art_painting"
    assert analogous_domain(("art", "clipart", "product", "real_world")) == "art"
    assert analogous_domain(("photo", "sketch", "cartoon", "painting")) == "painting"
    assert analogous_domain(("x", "y")) == "x"


def test_paper_reference_and_variants():
    paper = load_paper_numbers()
    assert paper_reference("office_home", paper, 1) == "office_home"
    assert paper_reference("pacs", paper, 1) == "mini_domainnet"
    assert paper_reference("pacs", paper, 3) == "office_home"
    assert paper_reference("mini_domainnet", paper, 4) == "office_home"
    t2 = paper_for_variants(paper, 2, "office_home", plans.TABLE2_VARIANTS)
    assert t2.groupby("variant").size().to_dict() == {v.label: 9 for v in plans.TABLE2_VARIANTS}
    base = t2[(t2["variant"] == plans.TABLE2_VARIANTS[0].label) & (t2["n_forget"] == 1) & (t2["metric"] == "h")]
    assert base["value"].tolist() == [52.59]
    t3 = paper_for_variants(paper, 3, "office_home", plans.TABLE3_VARIANTS)
    mmd = t3[(t3["variant"] == "MMD only") & (t3["metric"] == "h")]
    assert mmd["value"].tolist() == [68.62]
    assert [v.key for v in plans.select_variants(plans.TABLE2_VARIANTS, "adu,baseline")] == ["baseline", "adu"]
    with pytest.raises(ValueError):
        plans.select_variants(plans.TABLE2_VARIANTS, "nope")


def test_summary_table_averages_per_run_h():
    runs = pd.DataFrame({
        "n_forget": [1, 1, 1, 2],
        "variant": ["ADU", "ADU", "Baseline", "ADU"],
        "h": [60.0, 70.0, 50.0, 80.0],
        "mem": [80.0, 60.0, 90.0, 80.0],
        "for": [48.0, 84.0, 34.6, 80.0],
    })
    paper = pd.DataFrame({
        "n_forget": [1, 1, 1, 3],
        "variant": ["ADU", "ADU", "LP++", "ADU"],
        "metric": ["h", "mem", "h", "h"],
        "value": [69.96, 77.93, 30.46, 75.89],
    })
    s = tables.summary_table(runs, paper, keys=["n_forget", "variant"])
    row = s[(s["n_forget"] == 1) & (s["variant"] == "ADU") & (s["metric"] == "h")].iloc[0]
    assert row["mean"] == pytest.approx(65.0)  # the mean of per-run H, not H(mean Mem, mean For)
    assert row["std"] == pytest.approx(math.sqrt(50.0))
    assert row["n"] == 2 and row["paper"] == pytest.approx(69.96)
    assert row["diff"] == pytest.approx(65.0 - 69.96)
    assert row["ours"] == "65.00 ± 7.07"
    only_paper = s[(s["variant"] == "LP++") & (s["metric"] == "h")].iloc[0]
    assert only_paper["n"] == 0 and pd.isna(only_paper["mean"]) and only_paper["ours"] == "–"
    single = s[(s["n_forget"] == 2) & (s["metric"] == "h")].iloc[0]
    assert single["n"] == 1 and pd.isna(single["std"]) and single["ours"] == "80.00" and pd.isna(single["paper"])
    # rows keep the paper's order, then ours-only rows, and metrics in the asked order
    assert list(s["metric"][:3]) == ["h", "mem", "for"]
    assert list(dict.fromkeys(s["n_forget"])) == [1, 3, 2]
    wide = tables.display_table(s, ["n_forget", "variant"])
    assert ("H", "paper") in wide.columns and ("H", "Δ") in wide.columns and ("", "n") in wide.columns
    assert wide.loc[(1, "ADU"), ("H", "ours")] == "65.00 ± 7.07"
    assert wide.loc[(1, "ADU"), ("H", "Δ")] == "\u22124.96"  # a true minus
    assert wide.loc[(1, "LP++"), ("", "n")] == 0


def test_summary_table_without_runs():
    paper = load_paper_numbers()
    p1 = paper[(paper["table"] == 1) & (paper["dataset"] == "office_home")].assign(
        variant=lambda d: d["method"].map(names.METHOD_NAMES))
    empty = pd.DataFrame(columns=RUN_COLUMNS)
    s = tables.summary_table(empty, p1, keys=["n_forget", "variant"])
    assert len(s) == len(p1) and (s["n"] == 0).all() and s["mean"].isna().all()


def test_verdict_and_gap():
    s = pd.DataFrame({"n_forget": [1, 1, 2, 2], "variant": ["A", "B", "A", "B"], "metric": "h",
                      "mean": [70.0, 60.0, 50.0, 55.0], "paper": [1.0, 0.0, 1.0, 0.0]})
    g = facts.gap(s, "h", "A", "B")
    assert g == {1: pytest.approx(10.0), 2: pytest.approx(-5.0)}
    assert facts.verdict(g, [1, 2]) == "higher at |D_forget| = 1 but lower at 2"
    assert facts.verdict({1: 1.0}, [1, 2]).endswith("(only |D_forget| = 1 have runs)")
    assert facts.verdict({}, [1]) == "not measurable yet (no runs)"
    assert facts.verdict(facts.gap(s, "h", "A", "B", column="paper"), [1, 2]) == "higher at every |D_forget| (1, 2)"
    assert facts.fmt(float("nan")) == "n/a" and facts.fmt(1.234) == "1.23" and facts.signed(2.0) == "+2.00"


def test_protocol_table_lists_every_field():
    table = protocol.protocol_table()
    assert table["field"].tolist() == field_names()
    g = table.set_index("field")
    assert g.loc["gamma", "paper"].startswith("30")
    assert g.loc["prompt_depth", "testbed differs"] == "yes"
    assert g.loc["epochs", "testbed differs"] == ""  # testbed v2 trains the paper's 50 epochs
    assert g.loc["batch_size", "our choice [G]"] == "yes"
    assert g.loc["gamma", "our choice [G]"] == ""
    assert not g["testbed tier"].str.contains(str(REPO) + os.sep, regex=False).any()
    opts = protocol.method_options_table()
    assert {"adu", "zeroshot"} <= set(opts["method"])


# --- runs ------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """4 smoke runs (baseline, adu) x (sketch, photo+sketch), made in two budgeted calls; returns (root, statuses)."""
    os.environ.pop(BUDGET_ENV, None)
    root = tmp_path_factory.mktemp("results") / "smoke"
    plan = plans.plan_runs("synthetic", "smoke", plans.method_variants(["baseline", "adu"]), SETS, (1,),
                            labels={"table": 1})
    first = ensure_runs(plan, root, progress=False, max_new_runs=1)
    plan = plans.plan_runs("synthetic", "smoke", plans.method_variants(["baseline", "adu"]), SETS, (1,),
                            labels={"table": 1})
    second = ensure_runs(plan, root, progress=False, max_new_runs=-1)
    return root, first, second


def test_budget_limits_new_runs(results):
    _, first, second = results
    assert (first.trained, first.existed, len(first.missing)) == (1, 0, 3)
    assert len(first.runs) == 1
    msg = first.message("main_results", {"dataset": "synthetic", "tier": "smoke"})
    assert "**1 of 4 runs**" in msg and "3 runs are missing" in msg
    assert "papermill book/main_results.ipynb out.ipynb -p dataset synthetic -p tier smoke -p max_new_runs -1" in msg
    assert (second.trained, second.existed, len(second.missing)) == (3, 1, 0)
    assert "Nothing is missing" in second.message("main_results")


def test_runs_use_the_cli_layout_and_are_not_redone(results):
    root, _, second = results
    runs = second.runs
    assert len(runs) == 4 and set(runs["variant"]) == {"Baseline", "ADU"}
    assert set(runs["table"]) == {1} and sorted(runs["n_forget"]) == [1, 1, 2, 2]
    cfg = resolve_config(make_config("synthetic", "smoke", method="adu", forget=("sketch",), seed=1))
    path = run_folder(root, cfg) / "run.json"
    assert str(path) in set(runs["path"])
    run = json.loads(path.read_text())
    row = runs[runs["path"] == str(path)].iloc[0]
    assert row["h"] == pytest.approx(run["metrics"]["h"]) and row["device"] == "cpu"
    mtime = path.stat().st_mtime_ns
    plan = plans.plan_runs("synthetic", "smoke", plans.method_variants(["adu"]), [("sketch",)], (1,))
    again = ensure_runs(plan, root, progress=False)
    assert (again.trained, again.existed) == (0, 1) and path.stat().st_mtime_ns == mtime


def test_force_reruns(results):
    root, _, _ = results
    plan = plans.plan_runs("synthetic", "smoke", plans.method_variants(["baseline"]), [("sketch",)], (1,))
    path = Path(ensure_runs(plan, root, progress=False).runs["path"].iloc[0])
    before = json.loads(path.read_text())["provenance"]["finished_at"]
    mtime = path.stat().st_mtime_ns
    forced = ensure_runs(plan, root, force=True, progress=False, max_new_runs=-1)
    assert forced.trained == 1 and path.stat().st_mtime_ns != mtime
    assert json.loads(path.read_text())["provenance"]["finished_at"] >= before


def test_shared_runs_are_trained_once_and_shown_in_each_table(results):
    root, _, _ = results
    # Table 2's baseline row and a method row of Table 1 are the same run (and so are ADU's rows)
    plan = (plans.plan_runs("synthetic", "smoke", [plans.TABLE2_VARIANTS[0], plans.TABLE2_VARIANTS[3]],
                             [("sketch",)], (1,), labels={"table": 2})
            + plans.plan_runs("synthetic", "smoke", plans.method_variants(["baseline", "adu"]), [("sketch",)],
                               (1,), labels={"table": 1}))
    status = ensure_runs(plan, root, progress=False, max_new_runs=0)
    assert status.trained == 0 and status.existed == 2 and not status.missing
    assert len(status.runs) == 4 and status.runs["path"].nunique() == 2
    assert "**2 of 2 runs**" in status.message()


def test_overrides_get_their_own_runs(results, tmp_path):
    root, _, _ = results
    cfg_a = plans.plan_runs("synthetic", "smoke", [plans.TABLE2_VARIANTS[1]], [("sketch",)], (1,))[0].cfg
    cfg_b = plans.plan_runs("synthetic", "smoke", plans.method_variants(["adu"]), [("sketch",)], (1,))[0].cfg
    assert cfg_a.ddl is False and cfg_b.ddl is True
    assert run_folder(root, cfg_a) != run_folder(root, cfg_b)
    cfg_c = plans.plan_runs("synthetic", "smoke", plans.method_variants(["adu"]), [("sketch",)], (1,),
                             epochs=1)[0].cfg
    assert cfg_c.epochs == 1 and run_folder(root, cfg_c) != run_folder(root, cfg_b)


def test_missing_weights_are_reported_not_run(tmp_path):
    plan = plans.plan_runs("synthetic", "smoke", plans.method_variants(["adu"]), [("sketch",)], (1,),
                            pretrained=str(tmp_path / "absent.pt"))
    status = ensure_runs(plan, tmp_path / "res", progress=False, max_new_runs=-1)
    assert status.trained == 0 and len(status.missing) == 1 and len(status.runs) == 0
    assert list(status.runs.columns) == RUN_COLUMNS
    (reason,) = status.blocked
    assert "absent.pt" in reason and "does not exist" in reason
    assert "cannot run on this machine" in status.message("x")
    assert "none yet" in provenance.provenance_banner(status)
    assert "MISSING" in provenance.session_banner(plan[0].cfg)


def test_provenance_banners(results):
    _, _, second = results
    text = provenance.provenance_banner(second)
    assert "Runs shown: 4 run.json files" in text
    assert "cpu (4 runs)" in text and "adu-tiny (4 runs)" in text
    data_sha = json.loads(Path(second.runs["path"].iloc[0]).read_text())["provenance"]["data_sha256"]
    assert data_sha[:12] in text
    session = provenance.session_banner(make_config("synthetic", "smoke"))
    assert "Device: cpu" in session and "Code: adu-core" in session and data_sha in session


def test_page_resolves_parameters(tmp_path, monkeypatch):
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    pg = adu_book.page("main_results", "synthetic", "smoke", seeds=2, epochs=1, results_root=tmp_path)
    assert pg.seeds == (1, 2) and pg.overrides == {"epochs": 1} and pg.budget == -1
    assert pg.results_root == tmp_path.resolve()
    assert pg.command_params["epochs"] == 1 and pg.reference(1) == "mini_domainnet"
    assert pg.paper_label(1) == "paper (Mini DomainNet)"
    assert len(pg.forget("all", "1,2,3")) == 14 and pg.forget("Sketch", 1) == [("sketch",)]
    run, missing = pg.methods("all", ["adu", "no-such-method"])
    assert run == ["adu"] and missing == ["no-such-method"]
    tb = adu_book.page("main_results", "pacs", "testbed")
    assert tb.budget == 0 and tb.results_root.name == "testbed"


def test_levels_draw_the_paper_only_when_it_measures_the_same_thing(results):
    """Ours as dots (mean ± sd) per method and |D_forget|; the paper's printed value only where the setting is the
    same (same dataset and backbone): otherwise it is context, kept in the table, never a bar beside ours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, _, second = results
    paper = load_paper_numbers()
    p1 = paper[(paper["table"] == 1) & (paper["dataset"] == "mini_domainnet") & (paper["n_forget"] <= 2)]
    p1 = p1.assign(variant=p1["method"].map(names.METHOD_NAMES))
    context = plots.levels(second.runs, p1, y="variant", hue="n_forget", order=["ADU", "Baseline"])
    assert len(context.axes) == 3 and [ax.get_title() for ax in context.axes] == ["H", "Mem", "For"]
    assert not [ln for ax in context.axes for ln in ax.lines if ln.get_marker() == "D"]  # no paper marker
    same = plots.levels(second.runs, p1, y="variant", hue="n_forget", order=["ADU", "Baseline"], comparable=True)
    assert [ln for ax in same.axes for ln in ax.lines if ln.get_marker() == "D"]
    assert [t.get_text() for t in context.axes[0].get_yticklabels()] == ["ADU", "Baseline"]
    empty = plots.levels(second.runs.iloc[0:0], p1, y="variant")
    assert empty.axes[0].texts[0].get_text() == "no runs yet"
    plt.close("all")


# --- the notebooks ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_structure(name):
    nb = nbformat.read(BOOK / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "hide-cell" in code[0].metadata.get("tags", [])
    setup = (BOOK / "_setup_cell.py").read_text()
    assert code[0].source in setup and "pip" in code[0].source
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    ns: dict = {}
    exec(params[0].source, ns)
    assert ns["dataset"] == "pacs" and ns["tier"] == "testbed"
    if name != "protocol":
        for p in ("methods", "seeds", "forget_sets", "epochs", "backbone", "pretrained", "device", "results_root",
                  "force", "max_new_runs"):
            assert p in ns, p
        assert ns["max_new_runs"] is None and ns["force"] is False
    assert all(not c.get("outputs") for c in code), "notebooks are committed without outputs"
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "{glue:text}" in text
    # the pages never locate files through the working directory
    src = "\n".join(c.source for c in code)
    assert "os.getcwd" not in src and "Path.cwd" not in src and "../" not in src


@pytest.mark.slow
def test_papermill_from_book_folder(results, tmp_path):
    """`cd book && papermill main_results.ipynb ...` with the smoke tier finds the project and reuses the runs."""
    root, _, _ = results
    out = tmp_path / "out.ipynb"
    env = {**os.environ, "ADU_RESULTS_DIR": str(root.parent)}
    cmd = [sys.executable, "-m", "papermill", "main_results.ipynb", str(out), "-p", "dataset", "synthetic", "-p",
           "tier", "smoke", "-p", "forget_sets", "sketch;photo+sketch", "-p", "methods", "baseline,adu",
           "-p", "max_new_runs", "0", "--no-progress-bar"]
    proc = subprocess.run(cmd, cwd=BOOK, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = json.dumps(outputs)
    assert "4 of 4 runs" in text and "Nothing is missing" in text
    glued = {o["metadata"]["scrapbook"]["name"]: v for o in outputs if "scrapbook" in o.get("metadata", {})
             for k, v in o["data"].items() if k.endswith("text/plain")}
    assert glued["main_n_runs"] == "'4'"
    # the smoke grid pairs 2 forget sets x 1 seed: ADU against the Baseline has an interval (n = 2)
    effect = glued["main_h_effect"].strip("'\"")
    assert re.match(r"ADU's H (is higher than|is lower than|shows no measurable difference from) the Baseline's",
                    effect), effect  # both sides named, and the words the interval allows
    assert "n = 2" in effect and "H points" in effect


def test_ensure_data_downloads_only_missing_folders(tmp_path, monkeypatch):
    import adu_core.data.download as download

    calls = []
    monkeypatch.setattr(download, "download_dataset", lambda ds, progress=True: calls.append(ds.name))
    ensure_data({("synthetic", None), ("pacs", str(tmp_path))}, progress=False)
    assert calls == ["pacs"]  # the synthetic set lives in process; PACS has no folder under tmp_path
    (tmp_path / "pacs").mkdir()
    ensure_data({("pacs", str(tmp_path))}, progress=False)
    assert calls == ["pacs"]


def test_paper_numbers_url_for_a_git_install(monkeypatch):
    from importlib import metadata

    class Dist:
        def __init__(self, text):
            self.text = text

        def read_text(self, name):
            return self.text if name == "direct_url.json" else None

    info = {"url": "https://github.com/someone/adu-fork.git", "vcs_info": {"vcs": "git", "commit_id": "abc123"}}
    monkeypatch.setattr(metadata, "distribution", lambda name: Dist(json.dumps(info)))
    assert _installed_repo_file("book/paper_numbers.csv") == \
        "https://raw.githubusercontent.com/someone/adu-fork/abc123/book/paper_numbers.csv"
    monkeypatch.setattr(metadata, "distribution", lambda name: Dist(json.dumps({"url": "file:///src"})))
    assert _installed_repo_file("x") is None


def test_grouped_runs_land_where_single_runs_do(results, tmp_path):
    """group_size > 1 trains compatible runs in one pass (adu_core.multirun) into the same run folders."""
    root, _, second = results
    plan = plans.plan_runs("synthetic", "smoke", plans.method_variants(["baseline", "adu"]), SETS, (1,),
                            labels={"table": 1})
    grouped = ensure_runs(plan, tmp_path / "smoke", progress=False, group_size=4)
    assert grouped.trained == 4 and not grouped.missing
    single = second.runs.set_index(["variant", "forget"])
    for _, row in grouped.runs.iterrows():
        assert Path(row["path"]).relative_to(tmp_path / "smoke") == \
            Path(single.loc[(row["variant"], row["forget"]), "path"]).relative_to(root)
        assert row["h"] == pytest.approx(single.loc[(row["variant"], row["forget"]), "h"], abs=1.0)


def test_protocol_page_shows_the_code_docs_as_markdown_not_sphinx():
    """The docstrings the protocol page quotes are written for Sphinx; the page must not show raw roles."""
    import re

    from adu_book import protocol

    docs = dict(protocol.choice_docs())
    assert {"adu_core.data.pacs", "adu_core.methods.gate", "adu_core.recovery"} <= set(docs)
    for name, doc in docs.items():
        assert not re.search(r":[a-z]+:`", doc), name
        assert not re.search(r"(?<!`)``(?!`)", doc), name
        assert not re.search(r"::\s*$", doc, re.M), name
    md = protocol.rst_to_markdown("Layout::\n\n    pacs/<domain>\n    x\n\nSee :func:`~adu_core.a.b` and ``c``.")
    assert md == "Layout:\n\n```text\npacs/<domain>\nx\n```\n\nSee `adu_core.a.b` and `c`."  # a layout is text


@pytest.mark.slow
def test_a_page_that_stops_on_a_bad_parameter_says_why_first(tmp_path):
    """Under papermill, the cause is written to the terminal before papermill's report, and the notebook's error
    is that one line, not a traceback."""
    out = tmp_path / "out.ipynb"
    cmd = [sys.executable, "-m", "papermill", "ablation.ipynb", str(out), "-p", "dataset", "synthetic", "-p",
           "tier", "smoke", "-p", "methods", "bogus_row", "-p", "max_new_runs", "0", "--no-progress-bar"]
    env = {**os.environ, "ADU_RESULTS_DIR": str(tmp_path / "results")}
    proc = subprocess.run(cmd, cwd=BOOK, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    cause = "ValueError: unknown rows ['bogus_row']"
    stderr = proc.stderr
    assert f"The page stopped: {cause}" in stderr
    assert stderr.index("The page stopped") < stderr.index("Traceback")  # the cause comes first
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert len(errors) == 1 and len(errors[0]["traceback"]) == 1 and errors[0]["traceback"][0].startswith(cause)


def test_other_errors_keep_their_traceback():
    from adu_book.errors import is_user_error
    from adu_core.data.base import DataError

    def ours():
        from adu_book import plans

        plans.select_variants([], "x")

    for fn, expected in ((ours, True), (lambda: int("x"), False)):
        try:
            fn()
        except ValueError as err:
            assert is_user_error(err) is expected
    assert is_user_error(DataError("pacs: folder missing"))


def test_a_broken_run_json_is_left_out_with_one_line_and_the_page_goes_on(tmp_path):
    from adu_book import plans
    from adu_book.runs import ensure_runs

    plan = plans.plan_runs("synthetic", "smoke", plans.method_variants(["baseline", "adu"]), [("sketch",)], (1,),
                           epochs=1)
    status = ensure_runs(plan, tmp_path, progress=False, max_new_runs=-1)
    assert len(status.runs) == 2
    broken = Path(status.runs["path"].iloc[1])
    broken.write_text(broken.read_text()[:50])  # truncated
    again = ensure_runs(plan, tmp_path, progress=False, max_new_runs=-1)
    assert len(again.runs) == 1 and len(again.missing) == 1 and again.trained == 0  # never overwritten
    assert len(again.problems) == 1 and "not valid JSON" in again.problems[0] and "run.json" in again.problems[0]
    assert "**Left out, not a valid run:**" in again.message("main_results")


def test_run_shards_split_a_grid_between_processes(tmp_path, monkeypatch):
    from adu_book import plans
    from adu_book.runs import ensure_runs, shard_slice

    plan = plans.plan_runs("synthetic", "smoke", plans.method_variants(["baseline"]),
                           [("sketch",), ("photo",), ("cartoon",)], (1,), epochs=1)
    monkeypatch.setenv("ADU_RUN_SHARD", "1/2")
    first = ensure_runs(plan, tmp_path, progress=False, max_new_runs=-1)
    assert first.trained == 1 and len(first.missing) == 2  # the second of three
    monkeypatch.setenv("ADU_RUN_SHARD", "0/2")
    second = ensure_runs(plan, tmp_path, progress=False, max_new_runs=-1)
    assert second.trained == 2 and not second.missing  # positions 0 and 2: every run once
    monkeypatch.setenv("ADU_RUN_SHARD", "2/2")
    with pytest.raises(ValueError, match="ADU_RUN_SHARD must be 'k/n'"):
        shard_slice()


def test_a_row_without_a_metric_shows_a_dash_not_nan():
    """Table 4: the head's accuracy exists for ADU only; the other rows show "–" in every column of that metric."""
    from adu_book import tables

    runs = pd.DataFrame({"variant": ["Zero-shot CLIP", "Baseline", "ADU"], "domain_acc": [60.0, 62.0, 70.0],
                         "domain_acc_head": [None, None, 90.0]})
    paper = pd.DataFrame({"variant": ["Zero-shot CLIP", "Baseline", "ADU"], "metric": "domain_acc",
                          "value": [25.8, 31.06, 79.43]})
    summary = tables.summary_table(runs, paper, keys=["variant"], metrics=("domain_acc", "domain_acc_head"))
    shown = tables.display_table(summary, ["variant"])
    text = shown.to_string()
    assert "nan" not in text.lower() and "NaN" not in text
    head = [c for c in shown.columns if c[0] == "Domain acc. (ADU head)"]
    assert shown.loc["Baseline", head].tolist() == ["–", "–", "–"] and shown.loc["ADU", head[1]] == "90.00"


def test_the_chance_label_sits_inside_its_panel_and_is_not_cut():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from adu_book import legibility, plots

    runs = pd.DataFrame({"variant": ["Zero-shot CLIP", "Baseline", "ADU"], "domain_acc": [92.0, 87.0, 89.0],
                         "domain_acc_head": [float("nan"), float("nan"), 89.0], "n_forget": 1})
    fig = plots.levels(runs, None, y="variant", metrics=("domain_acc", "domain_acc_head"), chance=25.0)
    label = next(t for ax in fig.axes for t in ax.texts if t.get_text().startswith("chance"))
    assert label.get_text() == "chance 25"
    png, _ = legibility.figure_png(fig)
    record = legibility.read_record(png)
    chance = [t for t in record["texts"] if t["s"].startswith("chance")]
    assert len(chance) == 2 and not legibility.problems(record)  # whole, legible, over no other panel
    plt.close("all")


def test_conclusions_name_the_seeds_the_runs_have():
    """A page planned for seeds 1-3 whose runs so far have seed 1 says so, rather than listing the plan."""
    from adu_book.conclusions import seeds_shown

    runs = pd.DataFrame({"seed": [1, 1, 1]})
    assert seeds_shown([1, 2, 3], runs) == "1 (2, 3 not run yet)"
    assert seeds_shown([1, 2], pd.DataFrame({"seed": [2, 1]})) == "1, 2"
    assert seeds_shown([1], pd.DataFrame(columns=["seed"])) == "none (1 not run yet)"
