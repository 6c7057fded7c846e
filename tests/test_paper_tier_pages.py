"""Issue 27, items 5, 6 and 7: the pages' cheap-first-try parameters, what a page says about where its new runs went
(and Colab's VM), random weights on the page, the set-up cell on Colab, and the README/benchmark facts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

import adu_book
from adu_book.plans import method_variants
from adu_book.runs import RUN_COLUMNS, RunStatus

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def kernel(monkeypatch):
    """A stand-in for the notebook's kernel: ``page`` reads the parameters papermill injected into it."""
    namespace: dict = {}
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: types.SimpleNamespace(user_ns=namespace))
    return namespace


def test_smoke_preset_at_the_paper_tier_fills_what_was_not_given(kernel):
    kernel.update(preset="smoke", shots=None, max_test_per_domain=None)
    pg = adu_book.page("ablation", "office_home", "paper", epochs=None, max_new_runs=None)
    assert pg.overrides == {"epochs": 1, "shots": 1, "max_test_per_domain": 50}
    assert pg.seeds == (1,) and pg.budget == 1 and pg.preset == "smoke"
    assert pg.command_params == {"dataset": "office_home", "tier": "paper", "preset": "smoke"}
    [run] = pg.plan(method_variants(["adu"]), pg.forget("art", "1"))
    assert (run.cfg.backbone, run.cfg.pretrained, run.cfg.shots, run.cfg.epochs, run.cfg.max_test_per_domain) == \
        ("ViT-B-16", "openai", 1, 1, 50)
    assert "preset smoke" in pg.describe()


def test_explicit_parameters_win_over_the_preset_and_reach_the_command(kernel):
    kernel.update(preset="smoke", shots=4, max_test_per_domain=20)
    pg = adu_book.page("ablation", "office_home", "paper", epochs=3, seeds=2, max_new_runs=5)
    assert pg.overrides == {"epochs": 3, "shots": 4, "max_test_per_domain": 20}
    assert pg.seeds == (1, 2) and pg.budget == 5
    assert pg.command_params == {"dataset": "office_home", "tier": "paper", "preset": "smoke", "epochs": 3,
                                 "shots": 4, "max_test_per_domain": 20, "seeds": 2}


def test_without_a_notebook_or_a_preset_nothing_changes():
    pg = adu_book.page("ablation", "office_home", "paper")
    assert pg.overrides == {} and pg.preset is None and pg.seeds == (1, 2, 3) and pg.budget == -1
    with pytest.raises(ValueError, match=r"unknown preset 'tiny'; choose one of smoke"):
        adu_book.page("ablation", "office_home", "paper", preset="tiny")


def _status(root: Path, trained: int, random: bool) -> RunStatus:
    row = dict.fromkeys(RUN_COLUMNS)
    row.update(path=str(root / "run"), random_weights=random)
    return RunStatus([], root, pd.DataFrame([row]), existed=0, trained=trained, missing=[], blocked={}, budget=-1)


def test_a_page_says_where_new_runs_went_and_that_colab_forgets_them(tmp_path, monkeypatch):
    pg = adu_book.page("ablation", "synthetic", "smoke", results_root=tmp_path / "results")
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    [note] = pg.run_notes(_status(tmp_path / "results", 2, random=False))
    assert note.startswith(f"**2 runs trained now**, written to `{(tmp_path / 'results').resolve()}`")
    assert "Colab" not in note
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    [note] = pg.run_notes(_status(tmp_path / "results", 1, random=False))
    assert "**This folder is on the Colab VM and is lost with it:**" in note and "/content/drive/MyDrive" in note
    assert pg.run_notes(_status(tmp_path / "results", 0, random=False)) == []  # nothing trained: nothing to say


def test_random_weights_are_marked_on_the_page(tmp_path, kernel):
    pg = adu_book.page("ablation", "office_home", "paper", pretrained="random", results_root=tmp_path)
    notes = pg.run_notes(_status(tmp_path, 0, random=True))
    assert any(n.startswith("**Random weights:** 1 of the runs shown use randomly initialised weights") for n in notes)
    from adu_book.provenance import provenance_banner, session_banner

    assert "RANDOM WEIGHTS:      1 of these runs" in provenance_banner(_status(tmp_path, 0, random=True))
    assert "random initialisation (no weights: a plumbing check" in session_banner(pg.session_cfg())


def _setup_cell(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run book/_setup_cell.py as Colab would (a ``google.colab`` module loaded), with adu_book importable."""
    script = ("import sys, types, os; sys.modules['google.colab'] = types.ModuleType('google.colab'); "
              f"exec(open({str(REPO / 'book' / '_setup_cell.py')!r}).read()); "
              "print('RESULTS=' + os.environ.get('ADU_RESULTS_DIR', ''))")
    clean = {k: v for k, v in os.environ.items() if k not in ("ADU_RESULTS_DIR", "ADU_COLAB_DRIVE")}
    return subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env={**clean, **env}, capture_output=True,
                          text=True, timeout=120)


def test_setup_cell_on_colab_keeps_results_on_a_mounted_drive(tmp_path):
    drive = tmp_path / "MyDrive"
    absent = _setup_cell(tmp_path, {"ADU_COLAB_DRIVE": str(drive)})
    assert absent.returncode == 0, absent.stderr
    assert "Colab: results, data and weights vanish with this VM" in absent.stdout
    assert "drive.mount('/content/drive')" in absent.stdout and "RESULTS=\n" in absent.stdout
    drive.mkdir()
    mounted = _setup_cell(tmp_path, {"ADU_COLAB_DRIVE": str(drive)})
    assert mounted.returncode == 0, mounted.stderr
    assert f"RESULTS={drive / 'adu-results'}" in mounted.stdout
    assert f"Colab: new runs are written to {drive / 'adu-results'}/<tier>" in mounted.stdout


def test_readme_offers_the_paper_tier_on_gpus_only_and_says_how_to_keep_results():
    readme = (REPO / "README.md").read_text()
    gpu_lines = [line for line in readme.splitlines() if "GPU" in line and "Binder" in line]
    assert all("no GPU" in line for line in gpu_lines), gpu_lines
    for needed in ("results_root", "/content/drive/MyDrive", "ADU_RESULTS_DIR", "preset smoke",
                   "pretrained random", "office_home_dg", "imagenet-sketch/images", "download.pytorch.org/whl/cpu"):
        assert needed in readme, needed


def test_benchmark_counts_the_committed_office_home_test_split():
    from benchmarks import bench

    committed = (REPO / "adu_core" / "splits" / "office_home" / "test.txt").read_text().splitlines()
    assert bench.OFFICE_HOME["test_images"] == len(committed) == 3123
    text = (REPO / "benchmarks" / "README.md").read_text()
    assert "has no fp16" not in text.replace("\n", " ") and "3,118" not in text
