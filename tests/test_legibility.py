"""Legible figures (adu_book.legibility, adu_book.plots, adu_book.forest): the text record a figure carries in its PNG,
the checks a test of the built book runs on it, and every plot of the book drawn legibly at the book's width.

The built pages themselves are checked in tests/test_book_html.py (the same checks, at the width Chromium shows
each image); here the checks are shown to catch what they must (overlapping, clipped, covered and small text).
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from adu_book import forest, legibility, plots  # noqa: E402


def record(fig) -> dict:
    png, meta = legibility.figure_png(fig)
    plt.close(fig)
    rec = legibility.read_record(png)
    assert rec is not None and meta["width"] == round(rec["width"] * legibility.CSS_DPI / legibility.RENDER_DPI)
    return rec


def test_the_record_travels_in_the_png_and_locates_the_text():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_title("a title")
    ax.set_xticks([0, 1], ["left", "right"])
    rec = record(fig)
    texts = {t["s"]: t for t in rec["texts"]}
    assert {"a title", "left", "right"} <= set(texts)
    assert rec["dpi"] == legibility.RENDER_DPI and len(rec["axes"]) == 1
    title, left = texts["a title"]["corners"], texts["left"]["corners"]
    assert max(y for _, y in title) < min(y for _, y in left)  # top-left origin: the title is above the ticks
    assert all(0 <= x <= rec["width"] and 0 <= y <= rec["height"] for x, y in left)
    assert not legibility.problems(rec)


def test_overlapping_tick_labels_are_found_rotated_or_not():
    fig, axes = plt.subplots(1, 2, figsize=(6, 2.5))
    axes[0].set_xticks(range(8), [f"a long label {i}" for i in range(8)], rotation=30, ha="right")
    axes[1].set_xticks(range(4), [f"lab {i}" for i in range(4)], rotation=45, ha="right")  # these fit
    axes[0].set_xlim(-0.5, 7.5)
    axes[1].set_xlim(-0.5, 3.5)
    problems = legibility.problems(record(fig))
    assert any("'a long label 0' and 'a long label 1' overlap" in p for p in problems)
    assert not [p for p in problems if "'lab " in p]


def test_text_cut_by_its_panel_or_covered_by_another_is_found():
    fig, axes = plt.subplots(1, 2, figsize=(6, 2.5))
    axes[0].text(1.02, 0.5, "chance", transform=axes[0].transAxes, clip_on=False)  # under the next panel
    axes[1].text(0.95, 0.5, "clipped words", transform=axes[1].transAxes, clip_on=True)  # past its right edge
    problems = legibility.problems(record(fig))
    assert any("'chance' is covered by another panel" in p for p in problems)
    assert any("'clipped words' is clipped by its panel" in p for p in problems)


def test_small_text_is_found_at_the_width_the_page_shows():
    fig, ax = plt.subplots(figsize=(4, 2))
    ax.set_title("tiny", fontsize=7)
    ax.set_xlabel("fine", fontsize=10)
    rec = record(fig)
    assert any("'tiny' renders at 7.0 pt" in p for p in legibility.problems(rec))
    assert not [p for p in legibility.problems(rec) if "'fine'" in p]
    shrunk = legibility.problems(rec, shown_width=rec["width"] * legibility.CSS_DPI / legibility.RENDER_DPI * 0.6)
    assert any("'fine' renders at 6.0 pt" in p for p in shrunk)  # the page shrinks the image: 10 pt -> 6 pt


def test_overlap_depth_is_zero_for_separate_and_touching_boxes():
    square = [[0, 0], [1, 0], [1, 1], [0, 1]]
    assert legibility.overlap_depth(square, [[2, 0], [3, 0], [3, 1], [2, 1]]) == 0
    assert legibility.overlap_depth(square, [[1, 0], [2, 0], [2, 1], [1, 1]]) == 0
    assert legibility.overlap_depth(square, [[0.5, 0.5], [1.5, 0.5], [1.5, 1.5], [0.5, 1.5]]) == pytest.approx(0.5)


# --- every plot of the book, at the book's width -----------------------------------------------------------------
def _runs() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for variant in ("ADU", "LP++", "CLIPFit", "BBF", "Baseline", "Zero-shot CLIP", "Domain gate"):
        for k in (1, 2, 3):
            for f in ("a", "b", "c", "d"):
                for seed in (1, 2, 3):
                    h = 50 + rng.normal(0, 5)
                    rows.append({"variant": variant, "n_forget": k, "forget": f"{f}{k}", "seed": seed, "h": h,
                                 "mem": h + 3, "for": h - 3})
    return pd.DataFrame(rows)


def _legible(fig) -> None:
    rec = record(fig)
    assert rec["width"] * legibility.CSS_DPI / legibility.RENDER_DPI <= 780, "wider than the book's column"
    assert not legibility.problems(rec)


def test_the_table_pages_plots_are_legible():
    runs = _runs()
    _legible(plots.levels(runs, None, y="variant", hue="n_forget"))
    _legible(plots.levels(runs.assign(domain_acc=runs["h"]), None, y="variant", metrics=("domain_acc",),
                          chance=25.0))
    rows, points = forest.versus_rows(runs, "Baseline", ["ADU", "LP++", "Zero-shot CLIP"])
    _legible(forest.forest(rows, "H minus the Baseline's H, points", paper=points))


def test_the_analysis_pages_plots_are_legible():
    rng = np.random.default_rng(1)
    sweep = pd.DataFrame([{"sweep": s, "setting": v, "forget": f, "seed": 1, "h": 50 + rng.normal(0, 3),
                           "mem": 50.0, "for": 50.0, "default": v == d}
                          for s, vals, d in (("gamma", ["0", "10", "30", "100"], "30"),
                                             ("instapg", ["none", "first (0)", "after the first (1–3)", "all (0–3)"],
                                              "after the first (1–3)"))
                          for v in vals for f in "abcd"])
    orders = {"gamma": ["0", "10", "30", "100"],
              "instapg": ["none", "first (0)", "after the first (1–3)", "all (0–3)"]}
    _legible(plots.sweep_lines(sweep, orders, {"gamma": "30", "instapg": "after the first (1–3)"},
                               titles={"gamma": "γ (weight of DDL's domain CE)", "instapg": "InstaPG placement"},
                               unordered=("instapg",)))
    lines = pd.DataFrame([{"fraction": fr, "labeller": lab, "h": 50.0 + fr, "mem": 50.0, "for": 50.0,
                           "pseudo_label_acc": 90.0} for fr in (0, 0.05, 0.1, 0.25, 0.5, 1.0)
                          for lab in ("kmeans", "zeroshot")])
    _legible(plots.metric_lines(lines, x="fraction", hue="labeller", metrics=("h", "mem", "for", "pseudo_label_acc"),
                                xscale="ordinal", ncols=2, sharey=False, xlabel="labelled fraction"))
    curves = pd.DataFrame([{"variant": m, "model": model, "step": s, "acc": 50.0 + s / 5, "forget": "a", "seed": 1}
                           for m in ("ADU", "Baseline", "LP++", "CLIPFit") for model in ("unlearned", "original")
                           for s in (0, 5, 20, 50)])
    _legible(plots.relearn_lines(curves, reference=pd.DataFrame({"variant": ["ADU"], "acc": [60.0]})))
    stats = pd.DataFrame([{"model": m, "domain": d, "entropy": 0.98, "top10": 0.12, "forgotten": d == "photo"}
                          for m in ("Zero-shot CLIP", "ADU") for d in ("art_painting", "cartoon", "photo", "sketch")
                          for _ in range(3)])
    _legible(plots.rollout_points(stats))
    pts = pd.DataFrame({"x": rng.normal(size=40), "y": rng.normal(size=40), "domain": list("abcd") * 10,
                        "class": list("abcdefgh") * 5})
    _legible(plots.embedding_grid([("Zero-shot CLIP", pts), ("ADU", pts)]))
    images = np.zeros((4, 3, 16, 16), dtype=np.uint8)
    _legible(plots.attention_grid(images, [("Zero-shot CLIP", np.ones((4, 2, 2))), ("ADU", np.ones((4, 2, 2)))],
                                  ["art_painting", "cartoon", "photo (forgotten)", "sketch"]))


def test_the_ledger_forest_draws_verdicts_bands_and_the_papers_markers():
    rows = pd.DataFrame([
        {"label": "ADU − Baseline [Table 1]", "group": "", "mean": -1.1, "lo": -2.2, "hi": -0.1, "n": 42,
         "kind": "contradicted", "band_lo": math.nan, "band_hi": math.nan},
        {"label": "H at γ = 100 − H at the default γ [Sensitivity figure]", "group": "", "mean": -1.5, "lo": -3.4,
         "hi": 0.3, "n": 4, "kind": "inconclusive", "band_lo": -2.0, "band_hi": 2.0},
        {"label": "KVW − ADU [Table 1 (our row)]", "group": "", "mean": 0.5, "lo": -0.5, "hi": 1.5, "n": 42,
         "kind": "supported", "band_lo": -2.0, "band_hi": math.nan}])
    points = pd.DataFrame([{"label": "ADU − Baseline [Table 1]", "group": "", "source": "mini_domainnet",
                            "value": 12.9}])
    fig = forest.forest(rows, "our paired effect, H points", paper=points, label_width=44)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"supported", "contradicted", "inconclusive"} <= set(legend)
    assert any("Mini DomainNet" in t for t in legend) and any("band" in t for t in legend)
    assert any("margin" in t for t in legend)
    _legible(fig)
