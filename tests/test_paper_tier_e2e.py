"""Issue 27: the user's command at the paper tier, end to end, on each accepted Office-Home layout.

``papermill book/ablation.ipynb out.ipynb -p dataset office_home -p tier paper -p preset smoke -p pretrained CKPT``
from ``book/``, as a reproducer runs it, on a fabricated Office-Home folder (the original release's layout with
every file of the committed lists; Dassl's ``office_home_dg``) and a tiny random checkpoint of the paper's depth
(12 layers: 9 prompted, InstaPG). The smoke preset trains one run of one epoch; the page must then show the paper's
Table 2 numbers beside that run's, say where the run went, and record the layout and protocol it used.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests._paper_tier_fixtures import PAPER_DEPTH_CFG, office_home_dassl, office_home_original, paper_depth_checkpoint

REPO = Path(__file__).resolve().parents[1]
EXPECTED = {"original": ("adu-split-v1", False, 4 * 50), "dassl": ("authors-50a43db", True, 4 * 50)}


def _paper_value(table: int, dataset: str, n_forget: int, instapg: str, ddl: str, metric: str) -> float:
    with open(REPO / "book" / "paper_numbers.csv", newline="") as f:
        for row in csv.DictReader(f):
            if (row["table"], row["dataset"], row["n_forget"], row["method"], row["instapg"], row["ddl"],
                    row["metric"]) == (str(table), dataset, str(n_forget), "adu", instapg, ddl, metric):
                return float(row["value"])
    raise LookupError("no such paper value")


def _text(html: str) -> str:
    html = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&nbsp;", " ")


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["original", "dassl"])
def test_paper_tier_page_trains_one_run_and_shows_it_beside_the_paper(tmp_path, layout):
    data = tmp_path / "data"
    office_home_original(data) if layout == "original" else office_home_dassl(data, train=2, val=1)
    ckpt = paper_depth_checkpoint(tmp_path / "clip12.pt")
    results, out = tmp_path / "results", tmp_path / "out.ipynb"
    env = {k: v for k, v in os.environ.items() if k not in ("ADU_MAX_NEW_RUNS", "ADU_RESULTS_DIR", "ADU_RUN_SHARD")}
    env.update(ADU_DATA_ROOT=str(data), ADU_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    params = {"dataset": "office_home", "tier": "paper", "preset": "smoke", "pretrained": str(ckpt),
              "results_root": str(results), "device": "cpu"}
    args = [a for k, v in params.items() for a in ("-p", k, v)]
    proc = subprocess.run([sys.executable, "-m", "papermill", "ablation.ipynb", str(out), *args, "--no-progress-bar"],
                          cwd=REPO / "book", env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    [run_json] = list(results.rglob("run.json"))  # the preset's budget: one run
    run = json.loads(run_json.read_text())
    protocol, authors, n_test = EXPECTED[layout]
    assert run["config"]["tier"] == "paper" and run["config"]["backbone"] == "ViT-B-16"
    assert (run["config"]["shots"], run["config"]["epochs"], run["config"]["max_test_per_domain"]) == (1, 1, 50)
    assert run["data"]["layout"] == layout and run["data"]["protocol"] == protocol
    assert run["data"]["authors_protocol"] is authors and run["n_test"] == n_test
    weights = run["provenance"]["weights"]
    assert weights["name"] == PAPER_DEPTH_CFG["name"] and weights["architecture"]["vision_layers"] == 12
    assert run["config"]["method"] == "baseline" and run["config"]["forget"] == ["art"]

    nb = json.loads(out.read_text())
    shown = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            data_out = output.get("data", {})
            shown.append("".join(data_out.get("text/markdown", "")) + _text("".join(data_out.get("text/html", "")))
                         + "".join(output.get("text", "")))
    page = "\n".join(shown)
    assert f"**1 run trained now**, written to `{results.resolve()}`" in page
    assert "**Preset `smoke`:**" in page
    assert f"data layout / split: {layout} / {protocol} (1 run)" in page
    # Table 2, |D_forget| = 1, the Baseline row: the paper's H beside ours (then Δ, Mem, For), n = 1
    row = re.search(r"1 neither \(= Baseline\) (\S+) (\S+) \S+ (\S+) (\S+) \S+ (\S+) (\S+) \S+ (\d+) ", page)
    assert row, "the page shows no Baseline row of Table 2"
    paper = [_paper_value(2, "office_home", 1, "false", "false", m) for m in ("h", "mem", "for")]
    ours = [run["metrics"][m] for m in ("h", "mem", "for")]
    assert [float(v) for v in row.groups()[:6]] == pytest.approx(
        [x for pair in zip(paper, ours, strict=True) for x in pair], abs=0.006)
    assert row.group(7) == "1"
