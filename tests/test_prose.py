"""What the book says, as a reader reads it: comparison sentences name both sides and the unit; the paper's evidence
is one function's for every page and the ledger; a Δ only where the settings match; named points, not the point
that happens to lie farthest; the depth page's reference; no internals (exception names, home folders) on a page;
and the small errors of issue 28 (CLIPFit's venue, a private file cited, folder layouts highlighted as Python,
README friction).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest

from adu_book import paper, tables
from adu_book.facts import compare, comparison_problems

REPO = Path(__file__).resolve().parents[1]


def effect(mean, lo, hi, n=12, basis="stratified"):
    part = {"mean": mean, "lo": lo, "hi": hi, "n": n, "n_strata": 4}
    return {"mean": mean, "lo": lo, "hi": hi, "n": n, "excludes_zero": lo > 0 or hi < 0, "basis": basis,
            "stratified": part, "over_sets": {**part, "n": 4}, "n_sets": 4}


# --- the comparator rule -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "no measurable difference: +1.73 (95 % CI −0.86 to +4.32 over seeds, n = 3 in 1 forget sets)",  # Table 4
    "higher than with DDL alone at every |D_forget| (1)",  # the ablation page: whose H?
    "lower than the Baseline's: −1.13 (95 % CI −2.18 to −0.09)",  # no unit, no subject
    "ADU is ahead by +3.93 (95 % CI +0.80 to +7.05)",  # ahead of whom?
])
def test_the_rule_flags_comparisons_without_comparator_subject_or_unit(text):
    assert comparison_problems(text)


@pytest.mark.parametrize("text", [
    "ADU's H is lower than the Baseline's by 1.13 H points (95 % CI −2.18 to −0.09 over seeds, n = 42)",
    "ADU − Baseline in H: +12.91 points",
    "56.94",  # not a comparison
    "stays within 2 points from γ = 10 on",
])
def test_the_rule_passes_sentences_that_say_against_what(text):
    assert not comparison_problems(text)


def test_compare_names_both_sides_the_unit_and_follows_the_interval():
    up = compare(effect(1.63, 0.40, 2.86), "ADU's H", "the Baseline's")
    assert up == ("ADU's H is higher than the Baseline's by 1.63 H points (95 % CI +0.40 to +2.86 over seeds, "
                  "n = 12 in 4 forget sets)")
    flat = compare(effect(1.73, -0.86, 4.32), "the probe's accuracy on ADU's features", "on the Baseline's",
                   unit="percentage points")
    assert flat.startswith("the probe's accuracy on ADU's features shows no measurable difference from on the "
                           "Baseline's (+1.73 percentage points; 95 % CI")
    assert "higher" not in flat and "lower" not in flat  # an interval that covers 0 is never an effect
    for text in (up, flat, compare(None, "A", "B"), compare(effect(2.0, math.nan, math.nan, n=1), "A's H", "B's")):
        assert not comparison_problems(text), text


def test_every_conclusion_phrase_names_its_comparator():
    """The glued phrases of the table pages, from synthetic runs: every comparison passes the rule."""
    from adu_book import conclusions

    rows = []
    for variant, shift in (("ADU", 1.0), ("Baseline", 0.0), ("Domain gate", 15.0), ("LP++", 2.0)):
        for f in ("a", "b", "c", "d"):
            for seed in (1, 2, 3):
                h = 50 + shift + (seed - 2) * 0.5 + ord(f) % 3
                rows.append({"variant": variant, "n_forget": 1, "forget": f, "seed": seed, "h": h, "mem": h,
                             "for": h, "domain_acc_head": 90.0, "path": f"{variant}/{f}/{seed}/run.json"})
    runs = pd.DataFrame(rows)

    class Pg:
        dataset, tier, seeds = "pacs", "testbed", (1, 2, 3)
        paper = paper.load_paper_numbers()

        def session_cfg(self):
            from adu_core.config import make_config

            return make_config("pacs", "testbed")

    glued = conclusions.main_results(Pg(), pd.DataFrame(columns=["metric", "variant", "n_forget"]), runs,
                                     "mini_domainnet", [1])
    for name, text in glued.items():
        assert not comparison_problems(text), (name, text)


# --- the paper's evidence: one function for the pages and the ledger ---------------------------------------------
def test_the_papers_difference_names_the_sizes_it_rests_on():
    numbers = paper.load_paper_numbers()
    one = paper.paper_difference_text(numbers, "t2_instapg", [1])
    every = paper.paper_difference_text(numbers, "t2_instapg")
    assert one == "InstaPG only − Baseline, H (|D_forget| = 1): Mini DomainNet +1.99; Office-Home +3.82"
    assert every == ("InstaPG only − Baseline, H (|D_forget| = 1, 2, 3, mean): Mini DomainNet +3.76; "
                     "Office-Home +7.26")
    assert paper.paper_differences(numbers, "t2_ddl", [1]) == pytest.approx({"mini_domainnet": 12.16,
                                                                             "office_home": 8.23})
    assert paper.paper_differences(numbers, "t2_ddl")["mini_domainnet"] == pytest.approx(11.42, abs=0.005)


def test_the_ablation_page_and_the_ledger_quote_the_same_paper_figure():
    """For every ledger claim the paper's differences cover, the ledger's text (on the sizes our runs cover) holds
    the same numbers as :func:`adu_book.paper.paper_difference_text`, which the ablation page uses."""
    from adu_book import ledger

    numbers = paper.load_paper_numbers()
    checked = 0
    for claim in ledger.CLAIMS:
        if claim.key not in paper.COMPARISONS:
            continue
        for sizes in ([1], [1, 2, 3]):
            said = claim.paper(numbers, tuple(sizes))
            ours = paper.paper_difference_text(numbers, claim.key, sizes, lead=False)
            assert re.findall(r"[+−]\d+\.\d+", said) == re.findall(r"[+−]\d+\.\d+", ours), (claim.key, sizes)
            checked += 1
    assert checked >= 10


def test_a_difference_is_shown_only_in_the_same_setting():
    assert paper.same_setting("office_home", "office_home", "ViT-B-16")
    assert not paper.same_setting("pacs", "mini_domainnet", "adu-testbed")
    assert not paper.same_setting("office_home", "office_home", "adu-testbed")  # same data, another backbone
    summary = pd.DataFrame({"variant": ["ADU"], "metric": ["h"], "paper": [75.0], "mean": [57.0], "std": [1.0],
                            "n": [3], "diff": [-18.0], "ours": ["57.00 ± 1.00"]})
    context = tables.display_table(summary, ["variant"], "paper (Mini DomainNet, ViT-B/16): context", delta=False)
    assert [c[1] for c in context.columns] == ["paper (Mini DomainNet, ViT-B/16): context", "ours", "n"]
    assert "Δ" in [c[1] for c in tables.display_table(summary, ["variant"]).columns]
    note = paper.context_note("pacs", "mini_domainnet", "adu-testbed", 1, "testbed")
    assert "context" in note and "no difference is taken" in note and "Δ" not in note


# --- named points, not picks -------------------------------------------------------------------------------------
def test_sweeps_test_their_grid_ends_not_the_farthest_point():
    from adu_book.conclusions import against_default, named_points

    assert named_points(["0", "10", "30", "100"], "30", "gamma") == ["0", "100"]
    assert named_points(["1", "4", "8"], "1", "n_ctx") == ["8"]
    assert named_points(["gaussian", "linear", "laplacian"], "gaussian", "mmd_kernel") == ["linear", "laplacian"]
    rows = [{"sweep": "gamma", "setting": v, "default": v == "30", "forget": f, "seed": 1, "h": h + i}
            for i, f in enumerate("abcd") for v, h in (("0", 50.0), ("10", 30.0), ("30", 51.0), ("100", 51.5))]
    text = against_default(pd.DataFrame(rows), "gamma", "γ = ", order=["0", "10", "30", "100"])
    assert "γ = 0" in text and "γ = 100" in text and "γ = 10 " not in text  # 10 lies farthest, but is not named


def test_pseudo_labels_name_fraction_zero_and_explain_a_zero_spread():
    from adu_book.conclusions import _against_full, pseudo_label_spread

    rows = []
    for f in "abcd":
        rows.append({"method": "adu", "labeller": "zeroshot", "fraction": 0.0, "forget": f, "seed": 1,
                     "h": 55.0 + ord(f) % 2, "pseudo_label_acc": 86.61})
        rows.append({"method": "adu", "labeller": None, "fraction": 1.0, "forget": f, "seed": 1, "h": 56.0,
                     "pseudo_label_acc": math.nan})
    runs = pd.DataFrame(rows)
    text = _against_full(runs, "zeroshot", 0.0)
    assert text.startswith("H with zero-shot pseudo-labels and no domain label") and "with every label" in text
    assert not comparison_problems(text)
    assert "depends on the seed only" in pseudo_label_spread(runs)


# --- the depth page's reference ----------------------------------------------------------------------------------
def test_the_depth_reference_does_not_degrade_and_each_method_gets_a_verdict():
    from adu_book.depth import DepthStatus, method_verdict, reference_curve

    curves, frame = [], []
    for f in "abcd":
        for seed in (1, 2, 3):
            j = seed * 0.3 + ord(f) % 3
            for model, accs in (("original", (65.8, 54.9, 55.3, 54.1)), ("unlearned", (24.8, 45.5, 52.9, 54.0))):
                curves += [{"variant": "LP++", "forget": f, "seed": seed, "model": model, "step": s, "acc": a + j}
                           for s, a in zip((0, 5, 20, 50), accs, strict=True)]
                frame.append({"variant": "LP++", "forget": f, "seed": seed, "model": model, "path": f"{f}{seed}",
                              "probe_acc": 62.0 + j, "n_test": 100})
    depth = DepthStatus(pd.DataFrame(frame), pd.DataFrame(curves), 0, 0, [])
    ref = reference_curve(depth, (0, 5, 20, 50))
    assert (ref["which"] == "before relearning").all()  # relearning lowered the original model: 65.8 -> 54.1
    assert ref["acc"].min() > 65.0
    verdict = method_verdict(depth, "LP++", (0, 5, 20, 50))
    assert verdict.startswith("LP++:") and "hidden, not gone" in verdict and "original model itself" in verdict
    assert not comparison_problems(verdict)


# --- no internals on a page --------------------------------------------------------------------------------------
def test_a_missing_dataset_is_said_without_exception_names_or_home_folders(tmp_path, monkeypatch):
    from adu_book.provenance import _data_text
    from adu_core.config import make_config

    monkeypatch.setenv("ADU_DATA_ROOT", str(tmp_path / "nowhere"))
    text = _data_text(make_config("pacs", "testbed"))
    assert "not on this machine" in text and "adu data download pacs" in text
    assert "Error" not in text and str(tmp_path) not in text and str(Path.home()) not in text


def test_protocol_docs_show_folder_layouts_as_text_and_cite_no_private_file():
    from adu_book import protocol

    docs = dict(protocol.choice_docs())
    assert all("PAPER.md" not in d for d in docs.values())
    fences = [f for d in docs.values() for f in re.findall(r"^```(\w*)", d, re.M)]
    assert fences and all(f in ("text", "") for f in fences[::2]) and "text" in fences
    assert "EMNLP 2024" in docs["adu_core.methods.clipfit"] and "EMNLP 2023" not in docs["adu_core.methods.clipfit"]
    md = protocol.rst_to_markdown("Layout::\n\n    pacs/<domain>/<class>/<file>\n\nAfter.")
    assert "```text\npacs/<domain>/<class>/<file>\n```" in md


def test_the_intro_names_the_runs_no_page_shows(tmp_path):
    import json

    from adu_book.provenance import unused_runs

    root = tmp_path / "testbed"
    for name, over in (("used", {}), ("spare", {"epochs": 10})):
        (root / name).mkdir(parents=True)
        (root / name / "run.json").write_text(json.dumps({"config": {"method": "baseline", "seed": 1},
                                                          "overrides": over}))

    class Plan:
        def unique(self):
            return pd.DataFrame({"path": [str(root / "used")]})

    table = unused_runs(Plan(), root)
    assert table.to_dict("records") == [{"method": "baseline", "options": "epochs = 10", "seeds": "1", "runs": 1}]


def test_the_intro_prices_no_goal_of_the_project():
    import nbformat

    nb = nbformat.read(REPO / "book" / "intro.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown").lower()
    assert "goal" not in text and "we give up" not in text


# --- README friction ---------------------------------------------------------------------------------------------
def test_adu_run_says_a_committed_run_was_found_and_skipped(tmp_path, capsys):
    from adu_core.cli import main

    args = ["run", "--dataset", "synthetic", "--forget", "sketch", "--method", "zeroshot", "--out",
            str(tmp_path / "run"), "--set", "epochs=1"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert ": trained." in first and "skipped" not in first
    assert main(args) == 0
    again = capsys.readouterr().out
    assert "found" in again and "skipped it (nothing trained" in again and "Its recorded metrics" in again


def test_the_readme_gives_a_cpu_only_install_and_its_papermill_output_passes_the_checks():
    import tomllib

    readme = (REPO / "README.md").read_text()
    setup = readme[readme.index("## Set up and run"):readme.index("## Grids on a cluster")]
    assert "--index-url https://download.pytorch.org/whl/cpu" in setup and "6 GB" in setup
    ignores = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]["per-file-ignores"]
    assert "*.ipynb" in ignores  # out.ipynb at the top level is linted like the pages
    assert "/*.ipynb" in (REPO / ".gitignore").read_text().splitlines()


def test_glued_text_is_not_bold():
    css = (REPO / "_static" / "book.css").read_text()
    assert re.search(r"span\.pasted-text\s*\{[^}]*font-weight:\s*inherit", css)


def test_a_figure_that_cannot_be_drawn_says_what_is_missing_not_the_exception():
    from adu_book.figures import missing_text
    from adu_core.backbones import BackboneError
    from adu_core.data.base import DataError

    text = missing_text(DataError("pacs: folder /root/.cache/adu/data/pacs does not exist"))
    assert "dataset is not here" in text and "/root" not in text and "Error" not in text
    assert "weights" in missing_text(BackboneError("no file /home/x/w.pt")) and "/home" not in missing_text(
        BackboneError("no file /home/x/w.pt"))


def test_tables_show_numbers_as_a_reader_reads_them():
    import numpy as np

    from adu_book.tables import number_text, styled

    assert [number_text(v) for v in (69.96, 0.04, 1e-5, 12345.6, 0.0)] == ["69.96", "0.04", "1e-05", "12,346", "0.00"]
    assert number_text("a photo") == "a photo" and number_text(7) == "7"
    html = styled(pd.DataFrame({"n": [12.0, np.nan], "H": [69.96, 85.060001]})).to_html()
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html)
    assert cells == ["12", "69.96", "–", "85.06"], cells  # a count a NaN made float keeps no decimals
