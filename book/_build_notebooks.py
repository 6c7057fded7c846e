"""Write the book's notebooks from the cell sources below: `python book/_build_notebooks.py` (then commit the .ipynb).

The notebooks are generated so that their shared cells (set-up, parameters, provenance) cannot drift apart and so
that they are committed without outputs. Every notebook has, in order: a collapsed set-up cell (the code of
book/_setup_cell.py), a `parameters` cell for papermill whose defaults are the offline tier, a provenance cell, then
run / aggregate / table / plot cells, and a conclusion whose numbers are glued (myst_nb.glue), never typed.

`--check` exits 1 when a committed notebook differs from what this script writes (a test runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

BOOK = Path(__file__).resolve().parent


def setup_source() -> str:
    """book/_setup_cell.py from its first `import` line on (its header comment is for whoever edits it)."""
    lines = (BOOK / "_setup_cell.py").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("import"))
    return "\n".join(lines[start:]).strip()


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(dedent(text).strip())


def code(text: str, *tags: str) -> nbformat.NotebookNode:
    cell = new_code_cell(dedent(text).strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


IMPORTS = """
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets: plain text bars

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from adu_core import report, viz

pd.set_option("display.max_colwidth", None)
pd.set_option("display.width", 200)
"""

# The parameters every run page shares; `{extra}` adds the page's own ones.
PARAMETERS = '''
# Parameters (papermill: `-p NAME VALUE`). None means "the tier's default"; lists may be given as "a,b,c".
dataset = "pacs"  # registry name: pacs, synthetic (offline); office_home, mini_domainnet, imagenet (paper tier)
tier = "testbed"  # paper | testbed | smoke: the preset that gives every None below its value
methods = {methods}  # {methods_doc}
seeds = None  # None: the tier's seeds (paper 3, testbed 1); N: seeds 1..N; "1,3": those seeds
forget_sets = {forget_sets}  # {forget_doc}
n_forget = {n_forget}  # |D_forget| sizes to enumerate when forget_sets is "all"
epochs = None  # training epochs (None: the tier's; paper 50)
backbone = None  # open_clip architecture (None: the tier's; paper ViT-B-16)
pretrained = None  # open_clip tag or checkpoint path (None: the tier's; paper "openai")
device = "auto"  # auto | cuda | cpu
results_root = None  # folder of run.json files (None: results/<tier> in the project, or $ADU_RESULTS_DIR/<tier>)
force = False  # True: redo runs whose run.json exists
max_new_runs = None  # missing runs this execution may train; -1: all; None: $ADU_MAX_NEW_RUNS, else the tier's default
paper_dataset = None  # the paper's dataset shown beside ours (None: ours when the paper has it, else the closest)
group_size = 1  # runs trained together in one pass over the frozen backbone (GPU: try 8); 1: one at a time
{extra}
'''


def parameters(methods: str, methods_doc: str, forget_sets: str = "all", n_forget: str = "1,2,3",
               forget_doc: str = '"all": every forget/keep combination; or "sketch;photo+sketch" (";" between sets)',
               extra: str = "") -> nbformat.NotebookNode:
    src = PARAMETERS.format(methods=json.dumps(methods), methods_doc=methods_doc, forget_sets=json.dumps(forget_sets),
                            n_forget=json.dumps(n_forget),
                            forget_doc=forget_doc, extra=extra)
    return code(src, "parameters")


def provenance(name: str) -> nbformat.NotebookNode:
    return code(f"""
        # Provenance of this execution: code version, device, and the weights and data that new runs would use.
        pg = report.page({name!r}, dataset, tier, seeds=seeds, epochs=epochs, backbone=backbone, pretrained=pretrained,
                         device=device, results_root=results_root, force=force, max_new_runs=max_new_runs,
                         paper_dataset=paper_dataset, group_size=group_size)
        print(report.session_banner(pg.session_cfg()))
        print(pg.describe())
        """, "hide-input")


def header_cells(name: str, params: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [
        code(setup_source(), "hide-cell"),
        code(IMPORTS, "hide-cell"),
        params,
        md("""
            ## This execution

            The code version, the device, and the weights and data that new runs would use (each run records its
            own in its `run.json`; the runs shown are summarised below the run step).
            """),
        provenance(name),
    ]


RUN_NOTE = """
    ## Runs

    Each table cell averages `run.json` files, one per (forget set, seed, row). The step below trains only the runs
    that are missing, within this execution's budget (`max_new_runs`; the book's build trains none and shows the
    committed runs), and then states how many runs exist.
    """


# --- main_results: Table 1 ---------------------------------------------------------------------------------------------
def main_results() -> nbformat.NotebookNode:
    cells = [
        md("""
            # Table 1: ADU against the baselines

            The paper's Table 1 compares ADU with four ways of fine-tuning CLIP to forget domains: LP++, CLIPFit and
            Black-Box Forgetting (BBF), each trained with the unlearning losses, and the *Baseline*, the same vision
            prompts as ADU trained with L_memorize + L_forget only. Every number is the average over
            all forget/keep combinations of the domains for |D_forget| = 1, 2 and 3 (and over seeds).
            H is computed per run and then averaged. We add a zero-shot CLIP row, which the paper does not give.
            """),
        *header_cells("main_results", parameters(
            "all", '"all": zero-shot + the paper\'s rows (lp++, clipfit, bbf, baseline, adu); or e.g. "baseline,adu"')),
        md(RUN_NOTE),
        code("""
            run_methods, not_here = pg.methods(methods, ["zeroshot", *report.PAPER_METHODS])
            sets = pg.forget(forget_sets, n_forget)
            sizes = sorted({len(s) for s in sets})
            plan = pg.plan(report.method_variants(run_methods), sets)
            status = pg.ensure(plan)
            display(Markdown(status.message("main_results", pg.command_params)))
            if not_here:
                display(Markdown(f"Not implemented in this version of `adu_core`: {', '.join(not_here)}. "
                                 "Their rows show the paper's numbers only."))
            print(report.provenance_banner(status))
            """, "hide-input"),
        md("""
            ## The table

            For each |D_forget| and method: the paper's value, **ours** as mean ± sample standard deviation over
            runs, **Δ** = ours − paper, and **n**, the number of runs averaged (forget sets × seeds). When our
            dataset is not one of the paper's, the paper's column shows its closest dataset, named above the table.
            """),
        code("""
            ref = pg.reference(1)
            paper1 = pg.paper[(pg.paper["table"] == 1) & (pg.paper["dataset"] == ref) & pg.paper["n_forget"].isin(sizes)]
            paper1 = paper1.assign(variant=paper1["method"].map(report.METHOD_NAMES))
            summary = report.summary_table(status.runs, paper1, keys=["n_forget", "variant"])
            display(Markdown(pg.paper_note(1)))
            for note in paper1.loc[paper1["flag"] != "", "note"].unique():
                display(Markdown(f"**Flag ({report.DATASET_NAMES.get(ref, ref)}):** {note}."))
            report.styled(report.display_table(summary, ["n_forget", "variant"],
                                               key_names={"n_forget": "|D_forget|", "variant": "method"}))
            """, "hide-input", "full-width"),
        md("Our H for every forget set (mean over seeds), for a closer look:"),
        code("""
            if len(status.runs):
                per_set = status.runs.pivot_table(index=["n_forget", "forget"], columns="variant", values="h",
                                                  aggfunc="mean", sort=False)
                display(per_set.round(2))
            else:
                print("no runs yet")
            """, "hide-input", "hide-output"),
        md("""
            ## The plot

            Bars: ours (mean over runs, error bar: sample standard deviation) and the paper's value (grey, hatched).
            """),
        code("""
            order = [report.METHOD_NAMES.get(m, m) for m in [*report.PAPER_METHODS, "zeroshot"]]
            grid = viz.bars_vs_paper(status.runs, paper1, x="variant", row="n_forget", order=order,
                                     paper_label=pg.paper_label(1), xlabel="")
            plt.show()
            """, "hide-input"),
        code("""
            # Facts for the conclusion below (glued, so that no number in the text is typed by hand).
            def both(column):
                return {k: report.gap(summary, m, "ADU", "Baseline", column=column) for k, m in
                        (("h", "h"), ("for", "for"), ("mem", "mem"))}

            ours, theirs = both("mean"), both("paper")
            than_baseline = ("higher than the Baseline's", "lower than the Baseline's")
            facts = {
                "main_ref": report.DATASET_NAMES.get(ref, ref),
                "main_dataset": report.DATASET_NAMES.get(pg.dataset, pg.dataset),
                "main_tier": pg.tier,
                "main_n_runs": str(status.runs["path"].nunique() if len(status.runs) else 0),
                "main_paper_h_gain": report.fmt(report.mean_of(theirs["h"])),
                "main_paper_for_gain": report.signed(report.mean_of(theirs["for"])),
                "main_paper_mem_change": report.signed(report.mean_of(theirs["mem"])),
                "main_paper_verdict": report.verdict(theirs["h"], sizes, *than_baseline),
                "main_verdict": report.verdict(ours["h"], sizes, *than_baseline),
                "main_h_gain": report.signed(report.mean_of(ours["h"])),
                "main_for_gain": report.signed(report.mean_of(ours["for"])),
                "main_mem_change": report.signed(report.mean_of(ours["mem"])),
            }
            for key, value in facts.items():
                glue(key, value, display=False)
            """, "remove-cell"),
        md("""
            ## What the numbers say

            **Paper ({glue:text}`main_ref`).** ADU's H is {glue:text}`main_paper_verdict`, by
            {glue:text}`main_paper_h_gain` points on average over |D_forget|. The gain comes from
            forgetting: For changes by {glue:text}`main_paper_for_gain` points while Mem changes by
            {glue:text}`main_paper_mem_change`.

            **Ours ({glue:text}`main_dataset`, {glue:text}`main_tier` tier, {glue:text}`main_n_runs` runs).** ADU's H
            is {glue:text}`main_verdict`; the mean H difference is {glue:text}`main_h_gain`
            points, For changes by {glue:text}`main_for_gain` and Mem by {glue:text}`main_mem_change` (ADU − Baseline,
            averaged over |D_forget|).
            """),
    ]
    return _notebook(cells)


# --- ablation: Tables 2 and 3 ------------------------------------------------------------------------------------------
def ablation() -> nbformat.NotebookNode:
    cells = [
        md("""
            # Tables 2 and 3: what DDL and InstaPG each contribute

            **Table 2** switches ADU's two components on and off: the Domain Disentangling Loss (DDL) and the
            instance-wise prompt generator (InstaPG), for |D_forget| = 1, 2, 3. Its row without either is
            the Baseline, and its row with both is ADU, so those rows reuse the runs of Table 1.
            **Table 3** splits DDL into its two terms, the domain-classification cross-entropy (CE) and the MMD term,
            with InstaPG on (the paper shows it for Office-Home, |D_forget| = 1); its row without either
            term is Table 2's "InstaPG only" run.
            """),
        *header_cells("ablation", parameters(
            "all", 'rows: "all", or keys among baseline, instapg_only, ddl_only, adu (Table 2), mmd_only, ce_only '
                   '(Table 3)',
            extra='table3_n_forget = "1"  # |D_forget| sizes of Table 3 (the paper: 1)')),
        md(RUN_NOTE),
        code("""
            rows2 = report.select_variants(report.TABLE2_VARIANTS, methods if methods == "all" else
                                           [k for k in report.parse_list(methods)
                                            if k in {v.key for v in report.TABLE2_VARIANTS}])
            rows3 = report.select_variants(report.TABLE3_VARIANTS, methods if methods == "all" else
                                           [k for k in report.parse_list(methods)
                                            if k in {v.key for v in report.TABLE3_VARIANTS}])
            sets2 = pg.forget(forget_sets, n_forget)
            sets3 = [s for s in pg.forget(forget_sets, table3_n_forget)
                     if len(s) in report.parse_ints(table3_n_forget)]
            sizes2 = sorted({len(s) for s in sets2})
            plan = pg.plan(rows2, sets2, table=2) + pg.plan(rows3, sets3, table=3)
            status = pg.ensure(plan)
            display(Markdown(status.message("ablation", pg.command_params)))
            print(report.provenance_banner(status))
            runs = status.runs
            runs2 = runs[runs["table"] == 2] if len(runs) else runs
            runs3 = runs[runs["table"] == 3] if len(runs) else runs
            """, "hide-input"),
        md("""
            ## Table 2: DDL × InstaPG

            The paper's value, ours (mean ± sample standard deviation over n runs) and Δ = ours − paper.
            """),
        code("""
            ref2 = pg.reference(2)
            paper2 = report.paper_for_variants(pg.paper, 2, ref2, rows2)
            paper2 = paper2[paper2["n_forget"].isin(sizes2)]
            summary2 = report.summary_table(runs2, paper2, keys=["n_forget", "variant"])
            display(Markdown(pg.paper_note(2)))
            for note in paper2.loc[paper2["flag"] != "", "note"].unique():
                display(Markdown(f"**Flag ({report.DATASET_NAMES.get(ref2, ref2)}):** {note}."))
            report.styled(report.display_table(summary2, ["n_forget", "variant"],
                                               key_names={"n_forget": "|D_forget|", "variant": "components"}))
            """, "hide-input", "full-width"),
        code("""
            grid = viz.bars_vs_paper(runs2, paper2, x="variant", row="n_forget", order=[v.label for v in rows2],
                                     paper_label=pg.paper_label(2), xlabel="")
            plt.show()
            """, "hide-input"),
        md("""
            ## Table 3: CE × MMD inside DDL (InstaPG on)
            """),
        code("""
            ref3 = pg.reference(3)
            paper3 = report.paper_for_variants(pg.paper, 3, ref3, rows3)
            summary3 = report.summary_table(runs3, paper3, keys=["n_forget", "variant"])
            display(Markdown(pg.paper_note(3)))
            report.styled(report.display_table(summary3, ["n_forget", "variant"],
                                               key_names={"n_forget": "|D_forget|", "variant": "DDL terms"}))
            """, "hide-input", "full-width"),
        code("""
            grid = viz.bars_vs_paper(runs3, paper3, x="variant", order=[v.label for v in rows3],
                                     paper_label=pg.paper_label(3), xlabel="")
            plt.show()
            """, "hide-input"),
        code("""
            # Facts for the conclusion below (glued, so that no number in the text is typed by hand).
            def avg_gap(summary, a, b, column):
                return report.mean_of(report.gap(summary, "h", a, b, column=column))

            labels2 = {v.key: v.label for v in report.TABLE2_VARIANTS}
            labels3 = {v.key: v.label for v in report.TABLE3_VARIANTS}
            facts = {
                "abl_ref2": report.DATASET_NAMES.get(ref2, ref2),
                "abl_ref3": report.DATASET_NAMES.get(ref3, ref3),
                "abl_dataset": report.DATASET_NAMES.get(pg.dataset, pg.dataset),
                "abl_n_runs": str(runs["path"].nunique() if len(runs) else 0),
            }
            for key in ("instapg_only", "ddl_only", "adu"):
                for column, who in (("paper", "paper"), ("mean", "ours")):
                    facts[f"abl_{who}_{key}"] = report.signed(
                        avg_gap(summary2, labels2[key], labels2["baseline"], column))
            for key in ("mmd_only", "ce_only", "adu"):
                for column, who in (("paper", "paper"), ("mean", "ours")):
                    facts[f"abl3_{who}_{key}"] = report.signed(
                        avg_gap(summary3, labels3[key], labels3["instapg_only"], column))
            gaps_ours = report.gap(summary2, "h", labels2["adu"], labels2["ddl_only"])
            gaps_paper = report.gap(summary2, "h", labels2["adu"], labels2["ddl_only"], column="paper")
            than_ddl = ("higher than with DDL alone", "lower than with DDL alone")
            facts["abl_paper_both_vs_ddl"] = report.verdict(gaps_paper, sizes2, *than_ddl)
            facts["abl_ours_both_vs_ddl"] = report.verdict(gaps_ours, sizes2, *than_ddl)
            for key, value in facts.items():
                glue(key, value, display=False)
            """, "remove-cell"),
        md("""
            ## What the numbers say

            **Table 2.** Relative to the Baseline, the mean change in H over |D_forget| is, in the paper
            ({glue:text}`abl_ref2`): InstaPG alone {glue:text}`abl_paper_instapg_only`, DDL alone
            {glue:text}`abl_paper_ddl_only`, both {glue:text}`abl_paper_adu` points. In our runs
            ({glue:text}`abl_dataset`, {glue:text}`abl_n_runs` runs in all): InstaPG alone
            {glue:text}`abl_ours_instapg_only`, DDL alone {glue:text}`abl_ours_ddl_only`, both
            {glue:text}`abl_ours_adu` points. With InstaPG added to DDL, H is, in the paper,
            {glue:text}`abl_paper_both_vs_ddl`; in ours, {glue:text}`abl_ours_both_vs_ddl`.

            **Table 3.** Relative to InstaPG without DDL, the change in H is, in the paper ({glue:text}`abl_ref3`):
            MMD alone {glue:text}`abl3_paper_mmd_only`, CE alone {glue:text}`abl3_paper_ce_only`, both
            {glue:text}`abl3_paper_adu` points; in ours: MMD alone {glue:text}`abl3_ours_mmd_only`, CE alone
            {glue:text}`abl3_ours_ce_only`, both {glue:text}`abl3_ours_adu` points.
            """),
    ]
    return _notebook(cells)


# --- domain_accuracy: Table 4 ------------------------------------------------------------------------------------------
def domain_accuracy() -> nbformat.NotebookNode:
    cells = [
        md("""
            # Table 4: how well the features separate domains

            The paper's Table 4 reports the accuracy of predicting an image's *domain* on Office-Home when Art is
            forgotten: before unlearning, after the Baseline, and after ADU. Its claim is that DDL makes the
            features domain-separable, which ADU needs in order to forget one domain while keeping the others.
            The paper does not say how this accuracy was measured. We report two measures (see
            [the protocol](protocol.ipynb)): a logistic-regression **probe** fit on each model's features of the
            few-shot training images and scored on the test images (defined for every method, so "before
            unlearning" is the zero-shot model), and ADU's own domain-classifier **head** on the test images.
            """),
        *header_cells("domain_accuracy", parameters(
            "zeroshot,baseline,adu", "the paper's rows: before unlearning (zeroshot), baseline, adu",
            forget_sets="auto", n_forget="1",
            forget_doc='"auto": the domain that matches Office-Home\'s Art (PACS: art_painting); "all", or '
                       '"sketch;photo"')),
        md(RUN_NOTE),
        code("""
            run_methods, not_here = pg.methods(methods, ["zeroshot", "baseline", "adu"])
            if isinstance(forget_sets, str) and forget_sets == "auto":
                sets = [(report.analogous_domain(pg.domains, "art"),)]
            else:
                sets = pg.forget(forget_sets, n_forget)
            plan = pg.plan(report.method_variants(run_methods), sets)
            status = pg.ensure(plan)
            display(Markdown(status.message("domain_accuracy", pg.command_params)))
            print("forget sets:", "; ".join("+".join(s) for s in sets))
            print(report.provenance_banner(status))
            """, "hide-input"),
        md("""
            ## The table

            The paper's value (Office-Home, Art forgotten), ours (mean ± sample standard deviation over n runs) and
            Δ = ours − paper. The head exists only for methods trained with DDL.
            """),
        code("""
            runs = status.runs.assign(domain_acc=status.runs["domain_acc_probe"]) if len(status.runs) else \\
                status.runs.assign(domain_acc=pd.Series(dtype=float))
            ref = pg.reference(4)
            paper4 = pg.paper[(pg.paper["table"] == 4) & (pg.paper["dataset"] == ref)]
            paper4 = paper4.assign(variant=paper4["method"].map(report.METHOD_NAMES))
            summary = report.summary_table(runs, paper4, keys=["variant"], metrics=("domain_acc", "domain_acc_head"))
            display(Markdown(pg.paper_note(4)))
            chance = 100.0 / len(pg.domains)
            report.styled(report.display_table(summary, ["variant"],
                                               key_names={"variant": "method"}))
            """, "hide-input"),
        code("""
            order = [report.METHOD_NAMES[m] for m in ("zeroshot", "baseline", "adu")]
            grid = viz.bars_vs_paper(runs, paper4, x="variant", metrics=("domain_acc", "domain_acc_head"),
                                     order=order, paper_label=pg.paper_label(4), xlabel="", aspect=1.4)
            for ax in grid.axes.flat:
                ax.axhline(chance, color="0.2", linestyle="--", linewidth=1)
                ax.text(len(order) - 0.5, chance + 1.5, "chance", ha="right", fontsize=8)
            plt.show()
            """, "hide-input"),
        code("""
            # Facts for the conclusion below (glued, so that no number in the text is typed by hand).
            def value(variant, metric, column):
                row = summary[(summary["variant"] == report.METHOD_NAMES[variant]) & (summary["metric"] == metric)]
                return float(row[column].iloc[0]) if len(row) and pd.notna(row[column].iloc[0]) else float("nan")

            facts = {"dom_chance": report.fmt(chance, 1), "dom_n_domains": str(len(pg.domains)),
                     "dom_paper_chance": report.fmt(100.0 / len(report.get_dataset(ref).domains), 1),
                     "dom_dataset": report.DATASET_NAMES.get(pg.dataset, pg.dataset),
                     "dom_forget": "; ".join("+".join(s) for s in sets),
                     "dom_n_runs": str(status.runs["path"].nunique() if len(status.runs) else 0)}
            for m in ("zeroshot", "baseline", "adu"):
                facts[f"dom_paper_{m}"] = report.fmt(value(m, "domain_acc", "paper"))
                facts[f"dom_probe_{m}"] = report.fmt(value(m, "domain_acc", "mean"))
            facts["dom_head_adu"] = report.fmt(value("adu", "domain_acc_head", "mean"))
            ours_gap = value("adu", "domain_acc", "mean") - value("baseline", "domain_acc", "mean")
            facts["dom_verdict"] = ("not measurable yet (no runs)" if pd.isna(ours_gap) else
                                    ("higher" if ours_gap > 0 else "not higher") + f" than the Baseline's "
                                    f"({report.signed(ours_gap)} points)")
            for key, value_ in facts.items():
                glue(key, value_, display=False)
            """, "remove-cell"),
        md("""
            ## What the numbers say

            **Paper (Office-Home, Art forgotten).** Domain accuracy is {glue:text}`dom_paper_zeroshot`% before
            unlearning (chance: {glue:text}`dom_paper_chance`%), {glue:text}`dom_paper_baseline`%
            after the Baseline and {glue:text}`dom_paper_adu`% after ADU.

            **Ours ({glue:text}`dom_dataset`, forgetting {glue:text}`dom_forget`, {glue:text}`dom_n_runs` runs).**
            The probe reaches {glue:text}`dom_probe_zeroshot`% before unlearning, {glue:text}`dom_probe_baseline`%
            after the Baseline and {glue:text}`dom_probe_adu`% after ADU (chance with
            {glue:text}`dom_n_domains` domains: {glue:text}`dom_chance`%); ADU's own head reaches
            {glue:text}`dom_head_adu`%. ADU's probe accuracy is {glue:text}`dom_verdict`. Note that a linear probe
            on frozen CLIP features is typically far above chance, so the paper's near-chance "before" value
            suggests a different protocol (not stated in the paper).
            """),
    ]
    return _notebook(cells)


# --- protocol ------------------------------------------------------------------------------------------------------------
def protocol() -> nbformat.NotebookNode:
    cells = [
        md("""
            # Protocol: every choice the paper leaves open

            Everything a run does is decided by one configuration (`adu_core.config.RunConfig`), saved with the run.
            This page is generated from that code: each field with what the paper states, our default for the
            `paper` tier, the value at the offline `testbed` tier, and its documentation line. A field whose
            documentation carries **[G]** is a choice of ours where the paper is silent. The pages' other choices
            (data splits, metrics, the domain-accuracy protocol, the baselines' adaptation) follow, quoted from the
            code's own documentation, and then the paper's known inconsistencies, kept as printed.
            """),
        code(setup_source(), "hide-cell"),
        code(IMPORTS + "\nimport importlib\n\nfrom adu_core.config import TIERS\n", "hide-cell"),
        code('''
            # Parameters (papermill: `-p NAME VALUE`).
            dataset = "pacs"  # the offline dataset whose testbed configuration is listed
            tier = "testbed"  # the tier compared with the paper tier
            paper_dataset = "office_home"  # the dataset whose paper-tier configuration is listed
            methods = "all"  # methods whose own options are listed ("all" or a comma-separated list)
            ''', "parameters"),
        md("## This execution"),
        code("""
            print(report.session_banner(report.make_config(dataset, tier)))
            """, "hide-input"),
        md("""
            ## Configuration fields

            "testbed differs" marks the testbed's reductions of the paper-tier protocol; "our choice [G]" marks the
            fields where the paper is silent.
            """),
        code("""
            table = report.protocol_table(paper_dataset=paper_dataset, testbed_dataset=dataset, tier=tier)
            glue("proto_n_fields", str(len(table)), display=False)
            glue("proto_n_choices", str(int((table["our choice [G]"] == "yes").sum())), display=False)
            glue("proto_n_reduced", str(int((table[f"{tier} differs"] == "yes").sum())), display=False)
            report.styled(table.set_index("field"), min_widths={"paper": "11em", "doc": "20em"})
            """, "hide-input", "full-width"),
        md("""
            Of {glue:text}`proto_n_fields` fields, {glue:text}`proto_n_choices` are our choices where the paper is
            silent, and the testbed changes {glue:text}`proto_n_reduced` of the paper tier's values.

            ## Testbed reductions and run counts

            Besides the fields above, the tiers differ in how many seeds a table averages and in how many missing
            runs one execution of a page may train (`max_new_runs`; -1 means all). The book is built with the
            testbed's budget, so it only shows runs that exist and says how many are missing.
            """),
        code("""
            presets = pd.DataFrame({
                "seeds per cell": {t: ", ".join(map(str, report.TIER_SEEDS.get(t, ()))) for t in TIERS},
                "new runs per execution (default)": {t: report.TIER_RUN_BUDGET.get(t) for t in TIERS},
                "field overrides": {t: ", ".join(f"{k}={v}" for k, v in TIERS[t].items()) for t in TIERS},
            })
            presets.index.name = "tier"
            presets
            """, "hide-input"),
        md("""
            ## Methods' own options

            Method-specific hyperparameters (the `method_options` field), with their defaults and documentation.
            """),
        code("""
            options = report.method_options_table()
            if methods != "all":
                options = options[options["method"].isin(report.parse_list(methods))]
            report.styled(options.set_index(["method", "option"]), min_widths={"doc": "24em"})
            """, "hide-input", "full-width"),
        md("""
            ## Choices outside the configuration

            Quoted from the code that implements them, so that this page cannot drift from what runs.

            - **Data splits and few-shot sets** (the paper follows Dassl and does not publish its splits),
            - **Metrics and their aggregation** (pooled per run; H per run, then averaged),
            - **Domain-classification accuracy** (Table 4's protocol is not stated),
            - **Methods**, including how the baselines were adapted to unlearning,
            - **The paper's numbers beside ours**: which of the paper's datasets stands beside a dataset it does not
              have, and which domain stands for Office-Home's Art in Table 4.
            """),
        code("""
            modules = ["adu_core.data.splits", "adu_core.data.pacs", "adu_core.data.office_home",
                       "adu_core.data.domainnet", "adu_core.data.imagenet", "adu_core.metrics", "adu_core.evaluate",
                       "adu_core.methods.prompt", "adu_core.methods.zeroshot", "adu_core.methods.lpp",
                       "adu_core.methods.clipfit", "adu_core.methods.bbf"]
            for name in modules:
                try:
                    doc = importlib.import_module(name).__doc__ or "(no documentation)"
                except ImportError:
                    continue  # not part of this version of adu_core
                display(Markdown(f"**`{name}`**\\n\\n" + doc.strip()))
            paper = report.load_paper_numbers()
            reference = {ds: report.paper_reference(ds, paper, 1)
                         for ds in ("pacs", "synthetic", "office_home", "mini_domainnet", "imagenet")}
            domains = report.page("protocol", dataset, tier).domains
            display(Markdown(
                "**The paper's numbers beside ours** (Table 1's dataset for each of ours): "
                + "; ".join(f"{report.DATASET_NAMES.get(k, k)} → {report.DATASET_NAMES.get(v, v)}"
                            for k, v in reference.items())
                + f". Table 4 forgets Office-Home's Art; on {dataset} its page forgets "
                + f"`{report.analogous_domain(domains, 'art')}`."))
            """, "hide-input"),
        md("""
            ## The paper's known inconsistencies

            Values that the paper prints differently in two places. They are kept as printed in
            `book/paper_numbers.csv` (column `flag`) and each page shows the value of its own table.
            """),
        code("""
            paper = report.load_paper_numbers()
            flagged = paper[paper["flag"] != ""]
            glue("proto_n_flagged", str(flagged[["dataset", "n_forget", "method"]].drop_duplicates().shape[0]),
                 display=False)
            flagged.pivot_table(index=["flag", "dataset", "n_forget", "metric"], columns="table", values="value",
                                aggfunc="first").rename(columns=lambda t: f"Table {t}")
            """, "hide-input"),
        md("""
            {glue:text}`proto_n_flagged` cell(s) of the paper's tables are printed inconsistently; the note column
            of the CSV says where.
            """),
    ]
    return _notebook(cells)


def _notebook(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):  # stable ids, so regenerating an unchanged notebook changes nothing
        cell["id"] = f"c{i:02d}"
    return nb


NOTEBOOKS = {
    "main_results": main_results,
    "ablation": ablation,
    "domain_accuracy": domain_accuracy,
    "protocol": protocol,
}


def render(name: str) -> str:
    return nbformat.writes(NOTEBOOKS[name](), version=4) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a committed notebook is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS:
        path = BOOK / f"{name}.ipynb"
        text = render(name)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(BOOK.parent)}")
    if stale:
        print(f"out of date (run python book/_build_notebooks.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
