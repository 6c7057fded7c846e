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



# --- the analysis pages: sensitivity, shots, pseudo-labels, t-SNE, attention maps ------------------------------------------
ANALYSIS_IMPORTS = IMPORTS.replace("from adu_core import report, viz", "from adu_core import analysis, report, viz")


def analysis_header(name: str, params: nbformat.NotebookNode, extra_imports: str = "") -> list[nbformat.NotebookNode]:
    """The shared header of the analysis pages (as :func:`header_cells`, with ``adu_core.analysis`` imported)."""
    return [
        code(setup_source(), "hide-cell"),
        code(ANALYSIS_IMPORTS + extra_imports, "hide-cell"),
        params,
        md("""
            ## This execution

            The code version, the device, and the weights and data that new runs would use (each run records its
            own in its `run.json`; the runs shown are summarised below the run step).
            """),
        provenance(name),
    ]


AUTO_FORGET_DOC = ('"auto": one run per domain like the paper\'s figures\' forgotten ones, real/photo then '
                   'art/painting (PACS: photo; art_painting); "all" (with n_forget), or e.g. "sketch;photo"')
FIGURE_FORGET_DOC = ('"auto": the real/photo-like domain, as the paper\'s attention figure forgets Mini DomainNet\'s '
                     'real (PACS: photo); or one forget set, e.g. "sketch" (only the first set is used)')
SWEEP_NOTE = """
    ## Runs

    Each point averages `run.json` files, one per (forget set, seed). The step below trains only the runs that are
    missing, within this execution's budget (`max_new_runs`; the book's build trains none and shows the committed
    runs), and then states how many runs exist. The point at a sweep's default value is the same run in every
    sweep, and the same run as ADU's row in Table 1.
    """


def sensitivity() -> nbformat.NotebookNode:
    cells = [
        md("""
            # Sensitivity: γ, λ, prompt depth, prompt tokens, MMD kernel, InstaPG placement, training length

            The paper's hyperparameter figure sweeps γ, the weight of DDL's domain-classification loss, and λ, the
            weight of its MMD term. Its grid values and numbers are not available to us; what we have is its
            statement, as reported by a detailed public summary of the paper: *"Performance stabilizes once γ and λ
            exceed certain thresholds, indicating robustness."* Its appendix also ablates the MMD kernel and the
            prompt insertion depth, without numbers we could find.

            We sweep seven choices, **one at a time while every other option keeps the tier's default**: γ, λ, the
            prompt depth (how many first layers get prompts), the prompt tokens per layer, the MMD kernel, where
            InstaPG sits among the prompted layers (a choice the paper leaves open: see
            [the protocol](protocol.ipynb)), and the number of training epochs (the paper trains 50; the testbed
            tier 10, so this sweep shows what the shorter schedule costs). Each point shows H, Mem and For of ADU.
            """),
        *analysis_header("sensitivity", parameters(
            "adu", "the method swept: adu (the sweeps vary its own options)", forget_sets="auto", n_forget="1",
            forget_doc=AUTO_FORGET_DOC,
            extra='''sweeps = "all"  # "all", or among gamma, lam, prompt_depth, n_ctx, mmd_kernel, instapg, epochs
gammas = "0,1,10,30,100"  # γ grid (the paper's γ: 30)
lams = "0,1,10,30,100"  # λ grid (the paper's λ: 10)
depths = None  # prompt depths; None: 4 depths spread from 1 to the backbone's layers, plus the tier's default
n_ctxs = "1,2,4,8"  # prompt tokens per layer (the paper: 8)
kernels = "gaussian,linear,laplacian"  # MMD kernels (adu_core.losses)
placements = "none,first,middle,default,all"  # InstaPG among the prompted layers (default: all after the first)
epoch_grid = None  # training epochs; None: ½, 1, 2 and 4 times the tier's (testbed: 5, 10, 20, 40; the paper: 50)
plateau_tol = 2.0  # H points: a curve "stabilises" at the first value after which it stays within this band''')),
        md(SWEEP_NOTE),
        code("""
            if report.parse_list(methods) != ["adu"]:
                raise ValueError(f"the sweeps vary ADU's own options (γ, λ, DDL's kernel, InstaPG): methods must be "
                                 f"'adu', not {methods!r}")
            sets = analysis.figure_forget_sets(pg.domains, forget_sets, parse=lambda s: pg.forget(s, n_forget))
            base = pg.session_cfg("adu")
            grids = {"gamma": gammas, "lam": lams, "prompt_depth": depths, "n_ctx": n_ctxs, "mmd_kernel": kernels,
                     "instapg": placements, "epochs": epoch_grid}
            chosen = list(analysis.SWEEPS) if str(sweeps).strip() == "all" else report.parse_list(sweeps)
            points = {s: analysis.sweep_points(s, grids[s], base) for s in chosen}
            plan = [run for s in chosen for run in analysis.sweep_plan(pg, points[s], sets)]
            status = pg.ensure(plan)
            display(Markdown(status.message("sensitivity", pg.command_params)))
            print("forget sets:", "; ".join("+".join(s) for s in sets))
            print(report.provenance_banner(status))
            runs = status.runs
            """, "hide-input"),
        md("""
            ## The grids

            Each sweep's values, its default (the tier's value of that option, shaded in the plots), and the runs
            it needs per forget set and seed. Shared points (every sweep's default) are trained once.
            """),
        code("""
            grid_table = pd.DataFrame([{
                "sweep": analysis.SWEEPS[s],
                "values": ", ".join(p.value for p in points[s]),
                "default": next((p.value for p in points[s] if p.default), "(not in the grid)"),
                "points": len(points[s]),
            } for s in chosen]).set_index("sweep")
            n_points = len({(p.overrides) for s in chosen for p in points[s]})
            glue("sens_n_points", str(n_points), display=False)
            glue("sens_n_sets", str(len(sets)), display=False)
            glue("sens_n_planned", str(status.n_unique), display=False)
            grid_table
            """, "hide-input"),
        md("""
            {glue:text}`sens_n_points` distinct configurations × {glue:text}`sens_n_sets` forget set(s) × the seeds
            = {glue:text}`sens_n_planned` runs in all.

            ## The table

            Ours: mean ± sample standard deviation over n runs (forget sets × seeds). The paper prints no numbers
            for these sweeps.
            """),
        code("""
            table = analysis.ours_table(runs, ["sweep", "setting"])
            if len(table):
                table.index = table.index.set_levels(
                    [table.index.levels[0].map(lambda s: analysis.SWEEPS.get(s, s)), table.index.levels[1]])
            report.styled(table)
            """, "hide-input"),
        md("""
            ## The plots

            One row per sweep. Thin coloured lines: each forget set (mean ± sample standard deviation over its
            seeds), so that a setting's effect is read within a forget set; bold black line: the mean over all runs.
            The shaded value is the default, the same run in every row. Each row's y axis is zoomed to its data.
            """),
        code("""
            orders = {s: [p.value for p in points[s]] for s in chosen}
            defaults = {s: next((p.value for p in points[s] if p.default), None) for s in chosen}
            fig = viz.sweep_lines(runs, orders, defaults, titles=analysis.SWEEPS, unordered=("mmd_kernel", "instapg"))
            plt.show()
            """, "hide-input"),
        code("""
            # Facts for the conclusion below (glued, so that no number in the text is typed by hand).
            def curve(sweep):
                labels = orders.get(sweep, [])
                if not len(runs):
                    return labels, [float("nan")] * len(labels)
                h = runs[runs["sweep"] == sweep].groupby("setting")["h"].mean()
                return labels, [h.get(v, float("nan")) for v in labels]


            def settles(sweep, symbol):
                labels, values = curve(sweep)
                if sweep not in points or all(pd.isna(v) for v in values):
                    return "cannot be judged yet (no runs)"
                start = analysis.plateau(labels, values, plateau_tol)
                if start is None:
                    return f"does not stay within {plateau_tol:g} points anywhere along the grid"
                return f"stays within {plateau_tol:g} points from {symbol} = {start} on"


            symbols = {"gamma": "γ = ", "lam": "λ = ", "prompt_depth": "depth ", "n_ctx": "", "mmd_kernel": "",
                       "instapg": "", "epochs": ""}
            units = {"n_ctx": " tokens", "epochs": " epochs"}
            facts = {
                "sens_dataset": report.DATASET_NAMES.get(pg.dataset, pg.dataset),
                "sens_forget": "; ".join("+".join(s) for s in sets),
                "sens_n_runs": str(runs["path"].nunique() if len(runs) else 0),
                "sens_default_h": report.fmt(runs.loc[runs["default"].astype(bool), "h"].drop_duplicates().mean()
                                             if len(runs) else float("nan")),
                "sens_gamma_settles": settles("gamma", "γ"),
                "sens_lam_settles": settles("lam", "λ"),
            }
            for s in analysis.SWEEPS:
                labels, values = curve(s)
                if s not in points:
                    facts[f"sens_{s}"] = "not swept in this execution"
                elif s in ("mmd_kernel", "instapg"):
                    facts[f"sens_{s}"] = analysis.describe_levels(labels, values)
                else:
                    facts[f"sens_{s}"] = analysis.describe_curve(labels, values, symbols[s], units.get(s, ""))
            for key, value in facts.items():
                glue(key, value, display=False)
            """, "remove-cell"),
        md("""
            ## What the numbers say

            **Paper.** *"Performance stabilizes once γ and λ exceed certain thresholds, indicating robustness"*
            (no values given).

            **Ours ({glue:text}`sens_dataset`, forgetting {glue:text}`sens_forget`, {glue:text}`sens_n_runs`
            runs).** At the defaults, H is {glue:text}`sens_default_h`. Over γ, H is {glue:text}`sens_gamma`; it
            {glue:text}`sens_gamma_settles`. Over λ, H is {glue:text}`sens_lam`; it {glue:text}`sens_lam_settles`.
            Prompt depth: {glue:text}`sens_prompt_depth`. Prompt tokens per layer: {glue:text}`sens_n_ctx`. MMD
            kernel: {glue:text}`sens_mmd_kernel`. InstaPG placement: {glue:text}`sens_instapg`. Training length:
            {glue:text}`sens_epochs`.
            """),
    ]
    return _notebook(cells)


def shots() -> nbformat.NotebookNode:
    cells = [
        md("""
            # Shots: accuracy against training images per class

            The paper trains on 8 images per class and domain and shows a figure over the number of training
            samples. Its values are not available to us; its trend, as reported by a detailed public summary of the
            paper, is: *"As the number of training samples increases, the proposed method continues
            to improve, whereas the Baseline exhibits overfitting tendencies on Mini DomainNet."*

            We train the Baseline and ADU with 1, 2, 4, 8 and 16 shots (images per class and domain) and draw
            zero-shot CLIP, which trains on nothing, as a dashed line.
            """),
        *analysis_header("shots", parameters(
            "zeroshot,baseline,adu", "baseline and adu at every number of shots; zeroshot as a reference line",
            forget_sets="auto", n_forget="1", forget_doc=AUTO_FORGET_DOC,
            extra='shots_grid = "1,2,4,8,16"  # training images per class per domain (the paper: 8)')),
        md(RUN_NOTE),
        code("""
            run_methods, not_here = pg.methods(methods, ["zeroshot", "baseline", "adu"])
            sets = analysis.figure_forget_sets(pg.domains, forget_sets, parse=lambda s: pg.forget(s, n_forget))
            default_shots = pg.session_cfg().shots
            ks = sorted(set(report.parse_ints(shots_grid)))
            plan = analysis.shots_plan(pg, run_methods, ks, sets, default_shots)
            status = pg.ensure(plan)
            display(Markdown(status.message("shots", pg.command_params)))
            if not_here:
                display(Markdown(f"Not implemented in this version of `adu_core`: {', '.join(not_here)}."))
            print("forget sets:", "; ".join("+".join(s) for s in sets), "| shots:", ", ".join(map(str, ks)),
                  f"| zero-shot CLIP at the tier's {default_shots} shots (it trains nothing)")
            print(report.provenance_banner(status))
            runs = status.runs
            is_ref = runs["reference"].astype(bool) if len(runs) else pd.Series(dtype=bool)
            trained, refs = runs[~is_ref], runs[is_ref]
            """, "hide-input"),
        md("""
            ## The table

            Ours: mean ± sample standard deviation over n runs (forget sets × seeds). Zero-shot CLIP's row has no
            shots: it trains nothing.
            """),
        code("""
            table = analysis.ours_table(runs.assign(shots=runs["shots"].where(~is_ref, "–")) if len(runs) else runs,
                                        ["variant", "shots"], key_names={"variant": "method"})
            report.styled(table)
            """, "hide-input"),
        md("""
            ## The plot

            Mean ± sample standard deviation over runs (y zoomed to the data); the dashed line is zero-shot CLIP.
            """),
        code("""
            names = [report.METHOD_NAMES.get(m, m) for m in run_methods if m != "zeroshot"]
            fig = viz.metric_lines(trained, x="shots", hue="variant", hue_order=names, xscale="log2",
                                   references=refs, reference_label=report.METHOD_NAMES["zeroshot"],
                                   xlabel="shots per class and domain")
            plt.show()
            """, "hide-input"),
        code("""
            # Facts for the conclusion below (glued, so that no number in the text is typed by hand).
            def curve(method, metric="h"):
                name = report.METHOD_NAMES.get(method, method)
                part = trained[trained["variant"] == name] if len(trained) else trained
                mean = part.groupby("shots")[metric].mean() if len(part) else pd.Series(dtype=float)
                return ks, [mean.get(k, float("nan")) for k in ks]


            facts = {
                "shots_dataset": report.DATASET_NAMES.get(pg.dataset, pg.dataset),
                "shots_forget": "; ".join("+".join(s) for s in sets),
                "shots_n_runs": str(runs["path"].nunique() if len(runs) else 0),
                "shots_zeroshot_h": report.fmt(refs["h"].mean() if len(refs) else float("nan")),
            }
            for m in ("baseline", "adu"):
                facts[f"shots_{m}_h"] = analysis.describe_curve(*curve(m), unit=" shots")
                facts[f"shots_{m}_peak"] = analysis.trend_after_peak(*curve(m), unit=" shots")
            for key, value in facts.items():
                glue(key, value, display=False)
            """, "remove-cell"),
        md("""
            ## What the numbers say

            **Paper (Mini DomainNet).** *"As the number of training samples increases, the proposed method continues
            to improve, whereas the Baseline exhibits overfitting tendencies"* (no values given).

            **Ours ({glue:text}`shots_dataset`, forgetting {glue:text}`shots_forget`, {glue:text}`shots_n_runs`
            runs).** ADU's H is {glue:text}`shots_adu_h`; it is {glue:text}`shots_adu_peak`. The Baseline's H is
            {glue:text}`shots_baseline_h`; it is {glue:text}`shots_baseline_peak`. Zero-shot CLIP's H is
            {glue:text}`shots_zeroshot_h`.
            """),
    ]
    return _notebook(cells)


def pseudo_labels() -> nbformat.NotebookNode:
    cells = [
        md("""
            # Pseudo-labels: unlearning with few domain labels

            ADU needs each training image's domain: to split the images between L_memorize and L_forget, and for
            DDL. The paper's appendix "presents a preliminary exploration using pseudo-labels" (a public summary of
            the paper), which "worked well" (a public blog post about it); how the pseudo-labels are made and the
            numbers are not available to us. This page is our version of that setting: only a fraction of the training images keep their domain
            label and a *labeller* gives the others one. We plot H, Mem and For against the labelled fraction for
            each labeller, and the accuracy of the pseudo-labels themselves.
            """),
        *analysis_header("pseudo_labels", parameters(
            "adu", "methods trained on pseudo-labelled domains: adu; baseline too (its memorize/forget split uses "
                   "the domain labels)", forget_sets="auto", n_forget="1", forget_doc=AUTO_FORGET_DOC,
            extra='''fractions = "0,0.05,0.1,0.25,0.5,1.0"  # fraction of training images that keep their domain label
labellers = "kmeans,zeroshot"  # pseudo-labellers (adu_core.pseudo_labels)'''),
            extra_imports="\nimport adu_core.pseudo_labels\n"),
        md("""
            ## Our method

            Quoted from the code that implements it (`adu_core.pseudo_labels`), so that this page cannot drift from
            what runs. A fraction of 1 keeps every label: that point is ADU's ordinary run, shown for each labeller.
            """),
        code("""
            display(Markdown(adu_core.pseudo_labels.__doc__.strip()))
            """, "hide-input"),
        md(RUN_NOTE),
        code("""
            run_methods, not_here = pg.methods(methods, ["adu"])
            sets = analysis.figure_forget_sets(pg.domains, forget_sets, parse=lambda s: pg.forget(s, n_forget))
            fracs = sorted({float(f) for f in report.parse_list(fractions)})
            plan, notes = analysis.pseudo_label_plan(pg, run_methods, report.parse_list(labellers), fracs, sets)
            status = pg.ensure(plan)
            display(Markdown(status.message("pseudo_labels", pg.command_params)))
            for note in notes:
                display(Markdown(f"Note: {note}."))
            print("forget sets:", "; ".join("+".join(s) for s in sets), "| labelled fractions:",
                  ", ".join(f"{f:g}" for f in fracs))
            print(report.provenance_banner(status))
            runs = analysis.with_run_metrics(status.runs, {"pseudo_label_acc": ("pseudo_labels", "pseudo_label_acc")})
            """, "hide-input"),
        md("""
            ## The table

            Ours: mean ± sample standard deviation over n runs (forget sets × seeds). Pseudo-label accuracy is
            measured on the training images that lost their label (none at fraction 1).
            """),
        code("""
            table = analysis.ours_table(runs, ["variant", "labeller", "fraction"],
                                        metrics=("h", "mem", "for", "pseudo_label_acc"), key_names={"variant": "method"},
                                        sort=True)
            report.styled(table)
            """, "hide-input"),
        md("""
            ## The plot

            Mean ± sample standard deviation over runs (y zoomed to the data), against the labelled fraction (the
            fractions evenly spaced).
            """),
        code("""
            fig = viz.metric_lines(runs, x="fraction", hue="labeller", style="variant" if len(run_methods) > 1 else None,
                                   metrics=("h", "mem", "for", "pseudo_label_acc"), xscale="ordinal",
                                   xlabel="labelled fraction", width=2.8, sharey=False)
            plt.show()
            """, "hide-input"),
        code("""
            # Facts for the conclusion below (glued, so that no number in the text is typed by hand).
            def curve(labeller, metric="h", method="adu"):
                part = runs[(runs["labeller"] == labeller) & (runs["method"] == method)] if len(runs) else runs
                mean = part.groupby("fraction")[metric].mean() if len(part) else pd.Series(dtype=float)
                xs = [f for f in fracs if f in mean.index]
                return [f"{f:g}" for f in xs], [mean[f] for f in xs]


            def acc_range(labeller):
                _, values = curve(labeller, "pseudo_label_acc")
                values = [v for v in values if pd.notna(v)]
                if not values:
                    return "not measurable yet (no runs with missing labels)"
                return f"{min(values):.2f}%" if len(values) == 1 else f"{min(values):.2f}% to {max(values):.2f}%"


            full = runs[(runs["fraction"] == 1.0) & (runs["method"] == "adu")] if len(runs) else runs
            facts = {
                "pl_dataset": report.DATASET_NAMES.get(pg.dataset, pg.dataset),
                "pl_forget": "; ".join("+".join(s) for s in sets),
                "pl_n_runs": str(runs["path"].nunique() if len(runs) else 0),
                "pl_full_h": report.fmt(full["h"].drop_duplicates().mean() if len(full) else float("nan")),
            }
            for labeller in analysis.LABELLERS:
                facts[f"pl_{labeller}_h"] = analysis.describe_curve(*curve(labeller), what="fraction ")
                facts[f"pl_{labeller}_acc"] = acc_range(labeller)
            for key, value in facts.items():
                glue(key, value, display=False)
            """, "remove-cell"),
        md("""
            ## What the numbers say

            **Paper.** The appendix reports that unlearning with pseudo-labels "worked well"; no numbers are
            available to us.

            **Ours ({glue:text}`pl_dataset`, ADU, forgetting {glue:text}`pl_forget`, {glue:text}`pl_n_runs` runs).**
            With every domain label, H is {glue:text}`pl_full_h`. With k-means pseudo-labels, H is
            {glue:text}`pl_kmeans_h`; pseudo-label accuracy: {glue:text}`pl_kmeans_acc`. With CLIP's zero-shot
            domain prompts, H is {glue:text}`pl_zeroshot_h`; pseudo-label accuracy: {glue:text}`pl_zeroshot_acc`.
            """),
    ]
    return _notebook(cells)


FIGURE_RUN_NOTE = """
    ## Runs

    This figure needs one finished run per unlearned method, with its trained state (`trained.pt` beside its
    `run.json`). The step below trains it only when it is missing and this execution's budget allows
    (`max_new_runs`; the book's build trains none). "Before unlearning" is zero-shot CLIP on the same frozen backbone.
    """


def figure_runs(page: str, marks: bool = False) -> list[nbformat.NotebookNode]:
    """The run step of a figure page: the unlearned model(s) for one forget set, loaded beside zero-shot CLIP."""
    mark_line = "\nmarks = analysis.marked_domains(pg.domains, pg.domain_names, sets[0])" if marks else ""
    return [md(FIGURE_RUN_NOTE), code(f"""
run_methods, not_here = pg.methods(methods, ["adu"])
sets = analysis.figure_forget_sets(pg.domains, forget_sets, n=1, parse=lambda s: pg.forget(s, n_forget)[:1])
plan = pg.plan(report.method_variants(run_methods), sets)
status = pg.ensure(plan)
display(Markdown(status.message("{page}", pg.command_params)))
print("forget set:", "+".join(sets[0]))
print(report.provenance_banner(status))
fm = analysis.before_after([(p.labels["variant"], p.labels["_path"]) for p in plan],
                           device=pg.overrides.get("device"))
for label, reason in fm.reasons.items():
    display(Markdown(f"**{{label}} cannot be shown:** {{reason}}."))""" + mark_line, "hide-input")]



def tsne() -> nbformat.NotebookNode:
    cells = [
        md("""
            # t-SNE of the image features: before and after unlearning

            The paper's t-SNE figure (Mini DomainNet) shows the image features of zero-shot CLIP with the four
            domains heavily intermixed, and those of ADU in four separated clusters (our description of the figure;
            its forget configuration and split are not stated). DDL is meant to do this: forgetting a domain while
            keeping the others needs features that tell the domains apart.

            We embed the features of a fixed set of test images (the same images for every model) with scikit-learn's
            t-SNE at a fixed seed, before (zero-shot CLIP) and after unlearning, coloured by domain and by class,
            and measure the separation with silhouette scores in the original feature space (t-SNE distances are
            not meaningful).
            """),
        *analysis_header("tsne", parameters(
            "adu", 'the unlearned model(s) shown after zero-shot CLIP: adu (or e.g. "baseline,adu")',
            forget_sets="auto", n_forget="1", forget_doc=FIGURE_FORGET_DOC,
            extra='''n_per_domain = 100  # test images per domain embedded (a fixed draw, the same for every model)
perplexity = 30.0  # t-SNE perplexity (lowered to (n - 1)/3 for small sets)
tsne_seed = 0  # t-SNE's random state''')),
        *figure_runs("tsne"),
        md("""
            ## The embedding

            Rows: the model; columns: the same points coloured by domain (forgotten ones marked) and by class.
            """),
        code("""
            marks = analysis.marked_domains(pg.domains, pg.domain_names, sets[0])
            panels, scores = [], []
            if fm.models:
                ds, env = fm.dataset, fm.env
                samples, images = analysis.test_images(ds, env, n_per_domain)
                domains = [marks[s.domain] for s in samples]
                classes = [ds.classnames[s.label] for s in samples]
                for name, model in fm.models.items():
                    feats = analysis.image_features(model, env, images)
                    xy = analysis.tsne_embedding(feats, seed=tsne_seed, perplexity=perplexity)
                    panels.append((name, pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "domain": domains,
                                                       "class": classes})))
                    scores.append({"model": name, **analysis.separation_scores(
                        feats, {"domains": [s.domain for s in samples], "classes": classes})})
                fig = viz.embedding_grid(panels)
                plt.show()
                print(f"{len(samples)} test images ({n_per_domain} per domain at most), t-SNE seed {tsne_seed}")
            else:
                display(Markdown("**No embedding to show:** no unlearned model could be rebuilt here (see above)."))
            """, "hide-input"),
        md("""
            ## How separated

            Silhouette score of the domains and of the classes in each model's feature space (cosine distance,
            −1 to 1): near 0 means intermixed, higher means separated.
            """),
        code("""
            score_table = pd.DataFrame(scores, columns=["model", "domains", "classes"]).set_index("model")
            score_table.round(3)
            """, "hide-input"),
        code("""
            # Facts for the conclusion below (glued, so that no number in the text is typed by hand).
            def score(model, what):
                return float(score_table.loc[model, what]) if model in score_table.index else float("nan")


            before = "Zero-shot CLIP"
            after = report.METHOD_NAMES.get(run_methods[-1], run_methods[-1]) if run_methods else ""
            d_gap = score(after, "domains") - score(before, "domains")
            facts = {
                "tsne_dataset": report.DATASET_NAMES.get(pg.dataset, pg.dataset),
                "tsne_forget": "+".join(sets[0]),
                "tsne_after": after,
                "tsne_n_points": str(len(panels[0][1]) if panels else 0),
                "tsne_dom_before": report.fmt(score(before, "domains"), 3),
                "tsne_dom_after": report.fmt(score(after, "domains"), 3),
                "tsne_cls_before": report.fmt(score(before, "classes"), 3),
                "tsne_cls_after": report.fmt(score(after, "classes"), 3),
                "tsne_verdict": ("not comparable here: " + "; ".join(fm.reasons.values() or ["no runs"]) if pd.isna(d_gap)
                                 else ("more" if d_gap > 0 else "not more") + " separated by domain after unlearning"
                                 f" ({report.signed(d_gap, 3)})"),
            }
            for key, value in facts.items():
                glue(key, value, display=False)
            """, "remove-cell"),
        md("""
            ## What the numbers say

            **Paper (Mini DomainNet).** Zero-shot CLIP's features mix the domains; ADU's form one cluster per domain
            (read from the figure; no number is given).

            **Ours ({glue:text}`tsne_dataset`, forgetting {glue:text}`tsne_forget`, {glue:text}`tsne_n_points` test
            images).** The domain silhouette is {glue:text}`tsne_dom_before` for zero-shot CLIP and
            {glue:text}`tsne_dom_after` for {glue:text}`tsne_after`: the features are {glue:text}`tsne_verdict`. The
            class silhouette goes from {glue:text}`tsne_cls_before` to {glue:text}`tsne_cls_after`.
            """),
    ]
    return _notebook(cells)


def attention() -> nbformat.NotebookNode:
    cells = [
        md("""
            # Attention maps: before and after unlearning

            The paper's attention figure (Mini DomainNet, bird images, |D_forget| = 1 with *real* forgotten) shows,
            for one image per domain, the attention of zero-shot CLIP and of ADU: after ADU the attention on the
            object disappears or weakens in the forgotten domain and is kept or strengthened in the memorized ones
            (our description of the figure). The paper does not name its attribution method.

            We use **attention rollout** of the class token (documented below, from `adu_core.attribution`), show
            one test image of one class per domain, and summarise N test images per domain by how spread the
            rollout is: its normalised **entropy** (1 = uniform over the patches) and the share of the attention on
            the 10 % most attended patches (**top-10 %**; 0.1 = uniform).
            """),
        *analysis_header("attention", parameters(
            "adu", 'the unlearned model(s) shown after zero-shot CLIP: adu (or e.g. "baseline,adu")',
            forget_sets="auto", n_forget="1", forget_doc=FIGURE_FORGET_DOC,
            extra='''class_name = None  # the class shown in every domain (None: the first class)
image_index = 0  # which test image of that class per domain (in the split's order)
n_per_domain = 50  # test images per domain for the rollout statistics (a fixed draw)'''),
            extra_imports="\nimport seaborn as sns\n\nimport adu_core.attribution\nfrom adu_core.attribution import upsample\n"),
        md("""
            ## The attribution method

            Quoted from the code that computes it.
            """),
        code("""
            display(Markdown(adu_core.attribution.__doc__.strip()))
            """, "hide-input"),
        *figure_runs("attention", marks=True),
        md("""
            ## The maps

            One test image of the same class per domain (columns; the forgotten domain is marked); rows: the image,
            then the rollout of each model overlaid (red: most attended). Each map is scaled to its own range, so the
            colours show where a model looks, not how peaked its attention is (the statistics below measure that).
            """),
        code("""
            if fm.models:
                ds, env = fm.dataset, fm.env
                label = ds.classnames.index(class_name) if class_name is not None else 0
                shown, images = analysis.test_images(
                    ds, env, None, samples=analysis.one_per_domain(ds.samples("test"), pg.domains, label, image_index))
                rows = [(name, upsample(analysis.rollout_maps(model, env, images), env.image_size).numpy())
                        for name, model in fm.models.items()]
                fig = viz.attention_grid(images.numpy(), rows, [marks[d] for d in pg.domains])
                plt.show()
                print(f"class: {ds.classnames[label]}; test image #{image_index} of that class in each domain")
            else:
                display(Markdown("**No maps to show:** no unlearned model could be rebuilt here (see above)."))
            """, "hide-input"),
        md("""
            ## How spread the attention is

            Per domain and model: mean ± sample standard deviation over n test images of the rollout's entropy and
            top-10 % share.
            """),
        code("""
            stats = pd.DataFrame(columns=["model", "domain", "forgotten", "entropy", "peak", "top10"])
            if fm.models:
                samples, images = analysis.test_images(ds, env, n_per_domain)
                parts = []
                for name, model in fm.models.items():
                    values = analysis.rollout_stats(analysis.rollout_maps(model, env, images))
                    parts.append(pd.DataFrame({"model": name, "domain": [marks[s.domain] for s in samples],
                                               "forgotten": [s.domain in sets[0] for s in samples], **values}))
                stats = pd.concat(parts, ignore_index=True)
            stat_table = (stats.groupby(["domain", "model"], sort=False)[["entropy", "top10"]]
                          .agg(["mean", "std"]).round(4) if len(stats) else stats)
            if len(stats):
                stat_table[("", "n")] = stats.groupby(["domain", "model"], sort=False).size()
            stat_table
            """, "hide-input"),
        code("""
            if len(stats):
                names = {"entropy": "entropy (1 = uniform)", "top10": "top-10 % share (0.1 = uniform)"}
                long = stats.rename(columns=names).melt(id_vars=["model", "domain"], value_vars=list(names.values()),
                                                        var_name="statistic")
                grid = sns.catplot(data=long, x="domain", y="value", hue="model", col="statistic", kind="point",
                                   errorbar="sd", dodge=0.3, linestyle="none", sharey=False, height=2.8, aspect=1.4,
                                   capsize=0.1, err_kws={"linewidth": 1})
                grid.set_axis_labels("", "")
                grid.set_titles("{col_name}")
                for ax in grid.axes.flat:
                    ax.tick_params(axis="x", labelrotation=20)
                plt.show()
            """, "hide-input"),
        code("""
            # Facts for the conclusion below (glued, so that no number in the text is typed by hand).
            def mean_stat(model, forgotten, stat="entropy"):
                part = stats[(stats["model"] == model) & (stats["forgotten"] == forgotten)] if len(stats) else stats
                return float(part[stat].mean()) if len(part) else float("nan")


            before = "Zero-shot CLIP"
            after = report.METHOD_NAMES.get(run_methods[-1], run_methods[-1]) if run_methods else ""
            change_forgotten = mean_stat(after, True) - mean_stat(before, True)
            change_kept = mean_stat(after, False) - mean_stat(before, False)
            if pd.isna(change_forgotten) or pd.isna(change_kept):
                verdict = "cannot be compared here: " + "; ".join(fm.reasons.values() or ["no runs"])
            elif change_forgotten > change_kept:
                verdict = "spreads more (or focuses less) on the forgotten domain than on the kept ones"
            else:
                verdict = "does not spread more on the forgotten domain than on the kept ones"
            facts = {
                "att_dataset": report.DATASET_NAMES.get(pg.dataset, pg.dataset),
                "att_forget": "+".join(sets[0]),
                "att_after": after,
                "att_n": str(int(stats.groupby(["model", "domain"]).size().min()) if len(stats) else 0),
                "att_ent_forgot_before": report.fmt(mean_stat(before, True), 4),
                "att_ent_forgot_after": report.fmt(mean_stat(after, True), 4),
                "att_ent_kept_before": report.fmt(mean_stat(before, False), 4),
                "att_ent_kept_after": report.fmt(mean_stat(after, False), 4),
                "att_change_forgotten": report.signed(change_forgotten, 4),
                "att_change_kept": report.signed(change_kept, 4),
                "att_top_change_forgotten": report.signed(mean_stat(after, True, "top10") - mean_stat(before, True, "top10"), 4),
                "att_top_change_kept": report.signed(mean_stat(after, False, "top10") - mean_stat(before, False, "top10"), 4),
                "att_verdict": verdict,
            }
            for key, value in facts.items():
                glue(key, value, display=False)
            """, "remove-cell"),
        md("""
            ## What the numbers say

            **Paper (Mini DomainNet, real forgotten).** After ADU the attention on the object disappears or weakens
            in the forgotten domain and is kept in the others (read from the figure; no number is given).

            **Ours ({glue:text}`att_dataset`, forgetting {glue:text}`att_forget`, {glue:text}`att_n` test images per
            domain).** The rollout entropy on the forgotten domain goes from {glue:text}`att_ent_forgot_before`
            (zero-shot CLIP) to {glue:text}`att_ent_forgot_after` ({glue:text}`att_after`; change
            {glue:text}`att_change_forgotten`), and on the kept domains from {glue:text}`att_ent_kept_before` to
            {glue:text}`att_ent_kept_after` (change {glue:text}`att_change_kept`): after unlearning the attention
            {glue:text}`att_verdict`. The share of the 10 % most attended patches changes by
            {glue:text}`att_top_change_forgotten` on the forgotten domain and by {glue:text}`att_top_change_kept` on
            the kept ones.
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
    "sensitivity": sensitivity,
    "shots": shots,
    "pseudo_labels": pseudo_labels,
    "tsne": tsne,
    "attention": attention,
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
