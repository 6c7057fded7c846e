"""adu_book's analysis helpers (grids of runs, figures, curve phrases, their plots) and the five analysis pages.

Run tests use the synthetic dataset at the smoke tier with 1 epoch (a tiny random model: seconds per run). One ADU
run (forget photo) is trained once per module in a temporary results folder; every page executed here reuses it,
since the point at each sweep's default is that same run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pandas as pd
import pytest
import torch

import adu_book
from adu_book import facts, figures, grids, plans, plots, tables
from adu_book.paper import figure_forget_sets, like_domain
from adu_book.runs import BUDGET_ENV, ensure_runs
from adu_core.config import make_config
from adu_core.train import run_folder

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
PAGES = ("sensitivity", "shots", "pseudo_labels", "tsne", "attention")
PACS = ("art_painting", "cartoon", "photo", "sketch")
SMOKE = {"dataset": "synthetic", "tier": "smoke", "forget_sets": "photo", "epochs": 1}


# --- grids and plans -------------------------------------------------------------------------------------------------------
def test_depth_grid_spreads_over_the_layers_and_keeps_the_default():
    assert grids.depth_grid(6, 4) == [1, 3, 4, 6]  # the testbed encoder
    assert grids.depth_grid(12, 9) == [1, 5, 8, 9, 12]  # ViT-B/16 at the paper's depth
    assert grids.depth_grid(4, 3) == [1, 2, 3, 4]  # the smoke tier's adu-tiny
    assert grids.depth_grid(6, 4, points=1) == [4, 6]
    with pytest.raises(ValueError):
        grids.depth_grid(0, 1)


def test_like_domain_and_auto_forget_sets():
    assert like_domain(("art", "clipart", "product", "real_world"), ("real", "photo")) == "real_world"
    assert like_domain(("x", "y"), ("real",)) is None
    assert figure_forget_sets(PACS) == [("photo",), ("art_painting",)]
    assert figure_forget_sets(PACS, n=1) == [("photo",)]
    assert figure_forget_sets(("photo", "sketch", "cartoon", "painting")) == [("photo",), ("painting",)]
    assert figure_forget_sets(("clipart", "painting", "real", "sketch")) == [("real",), ("painting",)]
    assert figure_forget_sets(("x", "y")) == [("x",)]  # neither kind: the first domain
    assert figure_forget_sets(PACS, "sketch", parse=lambda s: [(s,)]) == [("sketch",)]
    with pytest.raises(ValueError, match="parser"):
        figure_forget_sets(PACS, "sketch")


def test_sweep_points_default_has_no_overrides():
    cfg = make_config("synthetic", "smoke")  # gamma 30, lam 10, depth 3, n_ctx 2, gaussian
    gamma = grids.sweep_points("gamma", "0,1,30", cfg)  # 0: Table 3's run without the domain CE
    assert [(p.value, p.default, p.overrides, p.x) for p in gamma] == [("0", False, (("ddl_ce", False),), 0.0),
                                                                        ("1", False, (("gamma", 1.0),), 1.0),
                                                                        ("30", True, (), 30.0)]
    assert grids.sweep_points("lam", "0", cfg)[0].overrides == (("ddl_mmd", False),)
    assert [p.value for p in grids.sweep_points("lam", [1, 10.0], cfg)] == ["1", "10"]
    assert grids.sweep_points("n_ctx", 2, cfg)[0].default
    epochs = grids.sweep_points("epochs", "1,3", dataclasses.replace(cfg, epochs=3))
    assert [(p.value, p.default, p.overrides) for p in epochs] == [("1", False, (("epochs", 1),)), ("3", True, ())]
    assert [p.value for p in grids.sweep_points("epochs", None, dataclasses.replace(cfg, epochs=10))] == ["5", "10", "20", "40"]
    depth = grids.sweep_points("prompt_depth", None, cfg)  # None: over adu-tiny's 4 layers
    assert [p.value for p in depth] == ["1", "2", "3", "4"] and [p.default for p in depth] == [0, 0, 1, 0]
    kernel = grids.sweep_points("mmd_kernel", "gaussian,laplacian", cfg)
    assert kernel[1].overrides == (("mmd_kernel", "laplacian"),) and kernel[1].x is None
    place = {p.value: p.overrides for p in grids.sweep_points("instapg", ",".join(grids.PLACEMENTS), cfg)}
    assert place == {"none": (("instapg", False),), "first (0)": (("instapg_layers", (0,)),),
                     "middle (1)": (("instapg_layers", (1,)),), "after the first (1–2)": (),
                     "all (0–2)": (("instapg_layers", (0, 1, 2)),)}
    with pytest.raises(ValueError, match="unknown sweep"):
        grids.sweep_points("lr", "1", cfg)
    with pytest.raises(ValueError, match="placement"):
        grids.sweep_points("instapg", "somewhere", cfg)
    with pytest.raises(ValueError, match="repeated"):
        grids.sweep_points("gamma", "30,30.0", cfg)
    with pytest.raises(ValueError, match="needs its values"):
        grids.sweep_points("gamma", None, cfg)
    with pytest.raises(ValueError, match="the epochs sweep takes whole numbers, got 'ten'"):
        grids.sweep_points("epochs", "5,ten", cfg)
    with pytest.raises(ValueError, match="the lam sweep takes numbers, got 'x'"):
        grids.sweep_points("lam", "1,x", cfg)


def test_backbone_layers_from_the_architecture():
    assert grids.backbone_layers(make_config("synthetic", "smoke")) == 4
    assert grids.backbone_layers(make_config("pacs", "testbed", pretrained="/nonexistent/w.pt")) == 6


@pytest.fixture
def page(tmp_path, monkeypatch):
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    return adu_book.page("sensitivity", "synthetic", "smoke", epochs=1, results_root=tmp_path, max_new_runs=0)


def test_sweep_plan_shares_the_default_run(page):
    cfg = page.session_cfg("adu")
    points = grids.sweep_points("gamma", "0,30", cfg) + grids.sweep_points("mmd_kernel", "gaussian,linear", cfg)
    plan = grids.sweep_plan(page, points, [("photo",)])
    assert len(plan) == 4
    status = page.ensure(plan, progress=False)
    assert status.n_unique == 3 and status.trained == 0 and len(status.missing) == 4
    table1_adu = page.plan(plans.method_variants(["adu"]), [("photo",)])[0]
    defaults = [p for p in plan if p.labels["default"]]
    assert {run_folder(page.results_root, p.cfg) for p in defaults} == {run_folder(page.results_root, table1_adu.cfg)}
    gamma0 = next(p for p in plan if p.labels["sweep"] == "gamma" and p.labels["setting"] == "0")
    # γ = 0 is the domain-classifier term switched off (Table 3's run), plotted at x = 0
    assert gamma0.cfg.ddl_ce is False and gamma0.cfg.gamma == cfg.gamma and gamma0.cfg.ddl_mmd
    assert gamma0.cfg.epochs == 1 and gamma0.labels["x"] == 0.0


def test_shots_and_pseudo_label_plans(page):
    plan = grids.shots_plan(page, ["zeroshot", "baseline", "adu"], [2, 4, 8], [("photo",)], default_shots=4)
    assert len(plan) == 1 + 3 + 3
    zs = [p for p in plan if p.cfg.method == "zeroshot"]
    assert len(zs) == 1 and zs[0].labels["reference"] and zs[0].cfg.shots == 4
    assert sorted(p.cfg.shots for p in plan if p.cfg.method == "adu") == [2, 4, 8]
    assert {p.labels["variant"] for p in plan} == {"Zero-shot CLIP", "Baseline", "ADU"}

    plan, notes = grids.pseudo_label_plan(page, ["adu"], ["kmeans", "zeroshot"], [0.0, 0.5, 1.0], [("photo",)])
    assert len(plan) == 2 + 3 and len(notes) == 1 and "kmeans" in notes[0]
    assert not any(p.labels["labeller"] == "kmeans" and p.labels["fraction"] == 0.0 for p in plan)
    full = [p for p in plan if p.labels["fraction"] == 1.0]
    assert len(full) == 2 and full[0].cfg == full[1].cfg and full[0].cfg.domain_label_fraction == 1.0
    half_zs = next(p for p in plan if p.labels["labeller"] == "zeroshot" and p.labels["fraction"] == 0.5)
    assert half_zs.cfg.pseudo_labeler == "zeroshot" and half_zs.cfg.domain_label_fraction == 0.5
    assert page.ensure(plan, progress=False).n_unique == 4
    with pytest.raises(ValueError, match="labeller"):
        grids.pseudo_label_plan(page, ["adu"], ["oracle"], [0.5], [("photo",)])
    with pytest.raises(ValueError, match="within"):
        grids.pseudo_label_plan(page, ["adu"], ["zeroshot"], [1.5], [("photo",)])


# --- tables and phrases ------------------------------------------------------------------------------------------------------
def test_ours_table_sorts_formats_and_counts():
    runs = pd.DataFrame({"labeller": ["kmeans", "kmeans", "zeroshot", "zeroshot", "zeroshot", "zeroshot"],
                         "fraction": [0.5, 1.0, 0.5, 1.0, 0.0, 0.0],
                         "h": [1.0, 2.0, 3.0, 4.0, 5.0, 7.0], "mem": 50.0, "for": 50.0,
                         "pseudo_label_acc": [60.0, None, 20.0, None, 10.0, 30.0]})
    table = tables.ours_table(runs, ["labeller", "fraction"], metrics=("h", "pseudo_label_acc"), sort=True)
    assert list(table.columns) == ["H", "Pseudo-label acc.", "n"]
    assert list(table.index) == [("kmeans", "0.5"), ("kmeans", "1"), ("zeroshot", "0"), ("zeroshot", "0.5"),
                                 ("zeroshot", "1")]
    assert table.loc[("zeroshot", "0"), "H"] == "6.00 ± 1.41" and table.loc[("zeroshot", "0"), "n"] == 2
    assert table.loc[("kmeans", "1"), "Pseudo-label acc."] == "–"
    assert len(tables.ours_table(runs.iloc[0:0], ["labeller", "fraction"])) == 0
    # unsorted: rows in the first appearance of each key combination, even where a value recurs under another key
    sweeps = pd.DataFrame({"sweep": ["depth", "depth", "n_ctx", "n_ctx", "n_ctx"], "setting": ["4", "6", "2", "4", "8"],
                           "h": [1.0, 2.0, 3.0, 4.0, 5.0]})
    assert list(tables.ours_table(sweeps, ["sweep", "setting"]).index) == [
        ("depth", "4"), ("depth", "6"), ("n_ctx", "2"), ("n_ctx", "4"), ("n_ctx", "8")]


def test_with_run_metrics_reads_run_json(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"metrics": {"h": 1.0, "pseudo_labels": {"pseudo_label_acc": 75.0}}}))
    b.write_text(json.dumps({"metrics": {"h": 2.0}}))
    runs = pd.DataFrame({"path": [str(a), str(b), str(a)]})
    out = tables.with_run_metrics(runs, {"acc": ("pseudo_labels", "pseudo_label_acc"), "h": ("h",)})
    assert out["acc"].iloc[0] == 75.0 and math.isnan(out["acc"].iloc[1]) and out["h"].tolist() == [1.0, 2.0, 1.0]
    assert "acc" not in runs  # a copy
    empty = tables.with_run_metrics(pd.DataFrame(columns=["path"]), {"acc": ("x",)})
    assert list(empty.columns) == ["path", "acc"] and not len(empty)


def test_curve_phrases():
    assert facts.plateau([0, 1, 10, 30, 100], [20.0, 40.0, 60.0, 61.0, 60.5]) == 10
    assert facts.plateau([0, 1, 10], [20.0, 40.0, 60.0]) is None
    assert facts.plateau(["a", "b", "c"], [50.0, float("nan"), 51.0]) == "a"
    assert facts.describe_curve([1, 2, 4], [10.0, 30.0, 20.0], "γ = ") == \
        "10.00 at γ = 1 and 20.00 at γ = 4 (+10.00), highest (30.00) at γ = 2"
    assert facts.describe_curve([1, 4], [10.0, 20.0], "γ = ", value_unit=" %", diff_unit=" points") == \
        "10.00 % at γ = 1 and 20.00 % at γ = 4 (+10.00 points)"
    assert facts.describe_curve([1], [5.0], unit=" shots") == "5.00 at 1 shot (one point only)"
    assert facts.describe_curve([1, 16], [5.0, 6.0], unit=" shots") == "5.00 at 1 shot and 6.00 at 16 shots (+1.00)"
    assert facts.describe_curve([1], [float("nan")]) == "not measurable yet (no runs)"
    assert facts.describe_levels(["a", "b"], [1.0, 2.0]) == "highest with b (2.00), lowest with a (1.00)"
    assert facts.describe_curve([1, 16], [6.0, 5.0]) == "6.00 at 1 and 5.00 at 16 (\u22121.00)"  # a true minus


def test_the_overfitting_sentence_tests_a_named_point_with_the_paired_interval():
    """The paper's trend is tested at points named before looking (the most shots against the paper's 8), never at
    the curve's peak, and the words follow the paired interval."""
    from adu_book.conclusions import against_paper_setting

    rows = [{"variant": "Baseline", "shots": k, "forget": f, "seed": 1, "h": h + drop}
            for f, drop in (("a", 0.0), ("b", 1.0), ("c", -1.0), ("d", 0.5))
            for k, h in ((1, 40.0), (8, 60.0), (16, 50.0 - 0.8 * drop))]  # 16 − 8 shots: −10, −10.8, −9.2, −10.4
    runs = pd.DataFrame(rows)
    text = against_paper_setting(runs, "Baseline", [1, 8, 16], 8)
    assert text.startswith("Baseline's H with 16 shots is lower than with 8 shots (the paper's setting) by 10.10 "
                           "H points (95 % CI") and "n = 4" in text
    noisy = runs.copy()
    noisy.loc[(noisy["shots"] == 16) & noisy["forget"].isin(["a", "b"]), "h"] += 9  # two pairs barely move
    assert "shows no measurable difference from with 8 shots" in against_paper_setting(noisy, "Baseline",
                                                                                        [1, 8, 16], 8)
    assert "no point above" in against_paper_setting(runs, "Baseline", [1, 8], 8)


# --- figure statistics -------------------------------------------------------------------------------------------------------
def test_rollout_stats_uniform_and_one_hot():
    uniform = torch.full((1, 4, 5), 0.05)
    one_hot = torch.zeros(1, 4, 5)
    one_hot[0, 2, 3] = 0.7
    stats = figures.rollout_stats(torch.cat([uniform, one_hot]))
    assert stats["entropy"] == pytest.approx([1.0, 0.0], abs=1e-9)
    assert stats["peak"] == pytest.approx([1.0, 20.0])
    assert stats["top10"] == pytest.approx([0.1, 1.0])  # 2 of 20 patches


def test_tsne_embedding_is_deterministic_and_separation_scores():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 4
    groups = np.repeat(np.arange(3), 15)
    feats = centres[groups] + rng.normal(size=(45, 16)) * 0.3
    a = figures.tsne_embedding(feats, seed=0, perplexity=10)
    b = figures.tsne_embedding(feats, seed=0, perplexity=10)
    assert a.shape == (45, 2) and np.allclose(a, b)
    assert figures.tsne_embedding(feats[:6], seed=0).shape == (6, 2)  # perplexity lowered below n
    with pytest.raises(ValueError):
        figures.tsne_embedding(feats[:3])
    scores = figures.separation_scores(feats, {"groups": groups, "shuffled": rng.permutation(groups),
                                                "one": np.zeros(45)})
    assert scores["groups"] > 0.5 and abs(scores["shuffled"]) < 0.2 and math.isnan(scores["one"])


def test_marked_domains_and_one_per_domain():
    from adu_core.data.base import Sample

    assert figures.marked_domains(("a", "b"), ("A", "B"), ("b",)) == {"a": "A (kept)", "b": "B (forgotten)"}
    samples = [Sample("1", 0, "a"), Sample("2", 1, "a"), Sample("3", 1, "b"), Sample("4", 1, "b")]
    assert [s.path for s in figures.one_per_domain(samples, ("a", "b"), 1, index=1)] == ["2", "4"]
    with pytest.raises(ValueError, match="no test image"):
        figures.one_per_domain(samples, ("a", "b"), 0)


# --- a real run: rebuilding it for the figures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The default smoke ADU run (1 epoch, forget photo) in a module results folder; returns (base, run folder)."""
    base = tmp_path_factory.mktemp("results")
    plan = plans.plan_runs("synthetic", "smoke", plans.method_variants(["adu"]), [("photo",)], (1,), epochs=1)
    status = ensure_runs(plan, base / "smoke", progress=False, max_new_runs=-1)
    assert not status.missing
    return base, Path(status.runs["path"].iloc[0]).parent


def test_figure_models_and_their_maps(results):
    _, folder = results
    fm = figures.before_after([("ADU", folder)])
    assert list(fm.models) == ["Zero-shot CLIP", "ADU"] and not fm.reasons
    zs, adu = fm.models.values()
    assert zs.env is adu.env and fm.dataset.name == "synthetic"
    samples, images = figures.test_images(fm.dataset, fm.env, 3)
    assert len(samples) == 12 and images.dtype == torch.uint8  # 3 per domain
    feats = {name: figures.image_features(m, fm.env, images) for name, m in fm.models.items()}
    assert feats["ADU"].shape == feats["Zero-shot CLIP"].shape
    assert np.allclose(np.linalg.norm(feats["ADU"], axis=1), 1.0, atol=1e-4)
    assert not np.allclose(feats["ADU"], feats["Zero-shot CLIP"])  # the prompts change the features
    maps = figures.rollout_maps(adu, fm.env, images, batch_size=5)
    grid = fm.env.clip.visual.grid_size
    assert maps.shape == (12, *grid) and bool((maps >= 0).all())
    stats = figures.rollout_stats(maps)
    assert ((stats["entropy"] > 0) & (stats["entropy"] <= 1 + 1e-9)).all()


def test_figures_are_drawn_from_the_runs_artifact_without_models_or_data(results, tmp_path):
    """With the data a figure is computed and stored beside its run; without it (no model, no images) the same
    figure comes from that file, and a file for other settings is never used."""
    import shutil

    _, folder = results
    run = tmp_path / "run"
    shutil.copytree(folder, run)
    fm = figures.before_after([("ADU", run)])
    marks = figures.marked_domains(fm.dataset.domains, fm.dataset.domain_names, ("photo",))
    panels, scores, source = figures.tsne_figure(fm, [("ADU", run)], marks, 4)
    assert source.startswith("Computed now") and (run / "figure-tsne.json").is_file() and len(panels) == 2
    nothing = figures.FigureModels({}, None, {}, {})
    again, scores2, source2 = figures.tsne_figure(nothing, [("ADU", run)], marks, 4)
    assert source2.startswith("Drawn from `") and "figure-tsne.json" in source2
    assert [n for n, _ in again] == [n for n, _ in panels] and again[1][1].equals(panels[1][1])
    assert scores2.equals(scores)
    stale, _, why = figures.tsne_figure(nothing, [("ADU", run)], marks, 5)  # another setting, no way to compute it
    assert not stale and why.startswith("**No figure here:** the stored artifact is for other runs or settings")
    data, rows, stats = figures.attention_figure(fm, [("ADU", run)], fm.dataset.domains, marks, ("photo",), None, 0, 2)
    assert data.images is not None and [n for n, _ in rows] == ["Zero-shot CLIP", "ADU"] and len(stats)
    data2, rows2, stats2 = figures.attention_figure(nothing, [("ADU", run)], fm.dataset.domains, marks, ("photo",),
                                                    None, 0, 2)
    assert data2.images is None and np.array_equal(rows2[1][1], rows[1][1]) and stats2.equals(stats)


def test_figure_method_says_why_it_cannot_rebuild(results, tmp_path):
    import shutil

    _, folder = results
    assert "does not exist" in figures.figure_method(tmp_path / "nowhere")
    assert "does not exist" in figures.figure_method(None)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    (copy / "trained.pt").unlink()
    assert "trained state" in figures.figure_method(copy)
    fm = figures.before_after([("ADU", copy)])
    assert not fm.models and fm.env is None and "trained state" in fm.reasons["ADU"]


# --- plots -----------------------------------------------------------------------------------------------------------------
def test_analysis_plots_draw_with_and_without_runs():
    import matplotlib.pyplot as plt

    runs = pd.DataFrame({"sweep": ["gamma", "gamma", "gamma", "mmd_kernel"], "setting": ["0", "30", "30", "linear"],
                         "h": [10.0, 20.0, 22.0, 30.0], "mem": 50.0, "for": 40.0})
    orders = {"gamma": ["0", "30"], "mmd_kernel": ["gaussian", "linear"]}
    fig = plots.sweep_lines(runs, orders, {"gamma": "30", "mmd_kernel": "gaussian"}, unordered=("mmd_kernel",))
    assert fig.axes[0].get_title() == "H" and len(fig.axes) == 6
    assert len(plots.sweep_lines(runs.iloc[0:0], orders, {}).axes) == 6
    lines = pd.DataFrame({"shots": [1, 2, 1, 2], "variant": ["ADU", "ADU", "Baseline", "Baseline"],
                          "h": [1.0, 2.0, 3.0, 4.0], "mem": 1.0, "for": 1.0})
    fig = plots.metric_lines(lines, x="shots", hue="variant", xscale="log2", references=lines.assign(h=50.0),
                           reference_label="Zero-shot CLIP")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]  # one legend, under the panels
    assert "Zero-shot CLIP" in labels and "ADU" in labels
    assert plots.metric_lines(lines.iloc[0:0], x="shots", hue="variant").axes[0].texts[0].get_text() == "no runs yet"
    with pytest.raises(ValueError, match="xscale"):
        plots.metric_lines(lines, x="shots", hue="variant", xscale="cubic")
    fracs = plots.metric_lines(lines.assign(shots=[0.0, 0.05, 0.0, 0.05]), x="shots", hue="variant",
                             xscale="ordinal", sharey=False)
    ax = fracs.axes[0]
    assert list(ax.get_xticks()) == [0, 1] and [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.05"]
    assert ax.get_ylim()[1] - ax.get_ylim()[0] >= 10  # zoomed to the data, never narrower than 10 points
    pts = pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0], "domain": ["a", "b"], "class": ["c", "c"]})
    assert plots.embedding_grid([("before", pts), ("after", pts)]).axes[0].get_title() == "before, by domain"
    images = np.zeros((2, 3, 8, 8), dtype=np.uint8)
    fig = plots.attention_grid(images, [("ADU", np.ones((2, 8, 8)))], ["a (kept)", "b (forgotten)"])
    assert len(fig.axes) == 4 and fig.axes[1].get_title() == "b (forgotten)"
    maps_only = plots.attention_grid(None, [("ADU", np.random.rand(2, 8, 8))], ["a (kept)", "b (forgotten)"])
    assert len(maps_only.axes) == 2 and maps_only.axes[0].get_ylabel() == "ADU"  # no data here: maps alone
    plt.close("all")


# --- the notebooks ---------------------------------------------------------------------------------------------------------
def test_pages_are_listed():
    import yaml

    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    analyses = next(p for p in toc["parts"] if p["caption"] == "Analyses")
    assert {f"book/{n}" for n in PAGES} <= {c["file"] for c in analyses["chapters"]}


@pytest.mark.parametrize("name", PAGES)
def test_page_structure(name):
    nb = nbformat.read(BOOK / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "hide-cell" in code[0].metadata.get("tags", []) and "pip" in code[0].source
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    ns: dict = {}
    exec(params[0].source, ns)
    assert ns["dataset"] == "pacs" and ns["tier"] == "testbed" and ns["max_new_runs"] is None and not ns["force"]
    for p in ("methods", "seeds", "forget_sets", "epochs", "backbone", "pretrained", "device", "results_root",
              "force", "max_new_runs"):
        assert p in ns, p
    assert "adu_book.page(" in code[3].source  # the provenance cell follows the parameters
    assert all(not c.get("outputs") for c in code), "notebooks are committed without outputs"
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "{glue:text}" in text
    src = "\n".join(c.source for c in code)
    assert "pg.run(" in src and "os.getcwd" not in src and "Path.cwd" not in src and "../" not in src


def _papermill(name: str, base: Path, out: Path, **params) -> dict[str, str]:
    """Execute a page from book/ with ADU_RESULTS_DIR=base; returns its glued values (as text)."""
    env = {**os.environ, "ADU_RESULTS_DIR": str(base)}
    env.pop(BUDGET_ENV, None)
    args = [a for k, v in params.items() for a in ("-p", k, str(v))]
    cmd = [sys.executable, "-m", "papermill", f"{name}.ipynb", str(out), *args, "--no-progress-bar"]
    proc = subprocess.run(cmd, cwd=BOOK, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    glued = {}
    for o in outputs:
        if "scrapbook" in o.get("metadata", {}):
            (value,) = [v for k, v in o["data"].items() if k.endswith("text/plain")]
            glued[o["metadata"]["scrapbook"]["name"]] = value.strip("'\"")
    # the figures the page shows where it computes them (a glued headline figure is shown under the title instead)
    glued["_images"] = str(sum("image/png" in o.get("data", {}) for o in outputs))
    return glued


@pytest.mark.slow
def test_sensitivity_page(results, tmp_path):
    base, _ = results
    g = _papermill("sensitivity", base, tmp_path / "out.ipynb", **SMOKE, sweeps="gamma,mmd_kernel,instapg",
                   gammas="0,30", kernels="gaussian", placements="none,default")
    assert g["sens_n_points"] == "3" and g["sens_n_planned"] == "3" and g["sens_n_runs"] == "3"
    assert "γ = 0" in g["sens_gamma"] and g["sens_lam"] == "not swept in this execution"
    assert g["sens_default_h"] != "n/a" and g["_images"] == "1"


@pytest.mark.slow
def test_shots_page(results, tmp_path):
    base, _ = results
    g = _papermill("shots", base, tmp_path / "out.ipynb", **SMOKE, methods="zeroshot,adu", shots_grid="2,4")
    assert g["shots_n_runs"] == "3"  # ADU at 2 and 4 shots (4 = the smoke default, the shared run), zero-shot
    assert "2 shots" in g["shots_adu_h"] and g["shots_zeroshot_h"] != "n/a" and g["_images"] == "1"


@pytest.mark.slow
def test_pseudo_labels_page(results, tmp_path):
    base, _ = results
    g = _papermill("pseudo_labels", base, tmp_path / "out.ipynb", **SMOKE, fractions="0.5,1")
    assert g["pl_n_runs"] == "3" and g["pl_full_h"] != "n/a"
    for labeller in ("kmeans", "zeroshot"):
        assert g[f"pl_{labeller}_acc"].endswith("%") and "fraction 0.5" in g[f"pl_{labeller}_h"]
        assert 0 <= float(g[f"pl_{labeller}_acc"].rstrip("%")) <= 100


@pytest.mark.slow
def test_tsne_page(results, tmp_path):
    base, _ = results
    g = _papermill("tsne", base, tmp_path / "out.ipynb", **SMOKE, n_per_domain=15, max_new_runs=0)
    assert g["tsne_n_points"] == "60" and g["tsne_dom_before"] != "n/a" and g["tsne_dom_after"] != "n/a"
    assert "separated by domain" in g["tsne_verdict"] and g["_images"] == "1"


@pytest.mark.slow
def test_attention_page(results, tmp_path):
    base, _ = results
    g = _papermill("attention", base, tmp_path / "out.ipynb", **SMOKE, n_per_domain=5, max_new_runs=0)
    assert g["att_n"] == "5" and g["att_ent_forgot_before"] != "n/a" and g["att_change_kept"] != "n/a"
    assert "cannot" not in g["att_verdict"] and g["_images"] == "2"


@pytest.mark.slow
def test_figure_page_without_its_run_says_so(tmp_path):
    """No run and a run budget of 0: the page executes, says why there is no figure, and glues n/a."""
    g = _papermill("attention", tmp_path / "empty", tmp_path / "out.ipynb", **SMOKE, max_new_runs=0)
    assert g["att_n"] == "0" and g["att_ent_forgot_before"] == "n/a"
    assert "run budget does not train it" in g["att_verdict"] and g["_images"] == "0"


@pytest.mark.slow
def test_depth_page_measures_and_then_reads_its_files(tmp_path):
    """The depth page trains its runs and measures them (budget -1), writes recovery.json beside each run, and a
    second execution with no budget reads those files and glues the same numbers."""
    params = {**SMOKE, "methods": "adu,baseline,gate", "relearn_steps": "0,3"}
    first = _papermill("depth", tmp_path / "results", tmp_path / "a.ipynb", **params, max_new_runs=-1)
    assert first["depth_n"] == "3" and first["depth_probe_main"].endswith(" %") and first["depth_last"] == "3"
    assert len(list((tmp_path / "results").rglob("recovery.json"))) == 3
    assert first["_images"] == "1"  # the relearning curves
    again = _papermill("depth", tmp_path / "results", tmp_path / "b.ipynb", **params, max_new_runs=0)
    assert {k: v for k, v in again.items() if k != "_images"} == {k: v for k, v in first.items() if k != "_images"}


def test_depth_text_says_what_is_not_measured_yet():
    from adu_book.depth import pct

    assert pct(47.2) == "47.20 %" and pct(float("nan")) == "– (not measured yet)"  # never "nan %" on the page


def test_a_sweep_with_one_point_is_not_judged():
    from adu_book.conclusions import settling

    nan = float("nan")
    assert settling([0, 10, 30], [nan, 55.0, nan], "γ", 2) == "cannot be judged yet (one point of the grid has runs)"
    assert settling([0, 10, 30], [nan] * 3, "γ", 2) == "cannot be judged yet (no runs)"
    assert settling([0, 10, 30], [40.0, 55.0, 55.5], "γ", 2) == "stays within 2 points from γ = 10 on"
