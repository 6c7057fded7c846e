"""Issue 27: the Colab set-up cell, for real, in a fresh virtual environment that lacks the package.

A page notebook runs (papermill) with the python of a new venv, from a folder outside any checkout, with an empty
HOME: its first cell finds no ``adu_book``, clones the repository (a local clone of this working tree stands in for
the GitHub URL, through ``ADU_REPOSITORY_URL``), installs it with pip in editable mode, and the page runs to the end,
training one smoke run into the clone's results folder.

What is not reinstalled: the venv is created without system site-packages, but the large dependencies (torch,
open_clip, jupyter, ...) are put on its path from this project's own venv (a folder of links to each of its
packages, adu-core's own files left out) instead of being installed again: a copy of torch and the rest would take
minutes and GBs and no network is allowed. So pip finds every dependency satisfied and builds only the project
(``PIP_NO_INDEX``: offline; ``PIP_NO_BUILD_ISOLATION=0``: the build uses the setuptools already there), which is
exactly the set-up cell's job on Colab, whose image already has torch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OWN = ("adu_core", "adu_book", "__editable__", "adu_core-", "adu_core.", "__pycache__")


def _snapshot_repository(dest: Path) -> str:
    """A git repository holding this working tree's files (committed or not, ignored ones left out)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "-c", "commit.gpgsign=false"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run([*git, *cmd], cwd=dest, check=True, capture_output=True)
    return dest.resolve().as_uri()


def _dependency_links(dest: Path) -> Path:
    """Links to every package of this venv except the project's own (so the new venv sees no adu_core)."""
    site = Path(sysconfig.get_paths()["purelib"])
    dest.mkdir()
    for entry in site.iterdir():
        if not entry.name.startswith(OWN) and entry.suffix != ".pth":
            (dest / entry.name).symlink_to(entry)
    return dest


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="symlinks and a POSIX venv layout")
def test_setup_cell_installs_the_project_in_a_fresh_venv_and_the_page_runs(tmp_path):
    url = _snapshot_repository(tmp_path / "origin")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    python = venv / "bin" / "python"
    # a venv of Python < 3.12 brings an old setuptools of its own; torch's metadata wants a newer one (the linked)
    subprocess.run([str(python), "-m", "pip", "uninstall", "-q", "-y", "setuptools"], capture_output=True)
    fresh_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                check=True, capture_output=True, text=True).stdout.strip()
    (Path(fresh_site) / "deps.pth").write_text(f"{_dependency_links(tmp_path / 'deps')}\n")
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    shutil.copy(REPO / "book" / "ablation.ipynb", work / "ablation.ipynb")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ADU_", "VIRTUAL_ENV", "PYTHON", "PIP_", "JUPYTER")) and k != "HOME"}
    env.update(HOME=str(home), ADU_REPOSITORY_URL=url, ADU_CACHE_DIR=str(tmp_path / "cache"), PIP_NO_INDEX="1",
               PIP_NO_BUILD_ISOLATION="0", PIP_DISABLE_PIP_VERSION_CHECK="1", OMP_NUM_THREADS="1",
               HF_HUB_OFFLINE="1")
    missing = subprocess.run([str(python), "-c", "import adu_book"], cwd=work, env=env, capture_output=True,
                             text=True)
    assert missing.returncode != 0, "the fresh venv must not see the project before the set-up cell installs it"

    params = {"dataset": "synthetic", "tier": "smoke", "forget_sets": "photo", "max_new_runs": "1"}
    args = [a for k, v in params.items() for a in ("-p", k, v)]
    proc = subprocess.run([str(python), "-m", "papermill", "ablation.ipynb", "out.ipynb", *args, "--no-progress-bar"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]

    clone = home / "adu-companion"
    assert (clone / "adu_core" / "__init__.py").is_file()
    where = subprocess.run([str(python), "-c", "import adu_core; print(adu_core.__file__)"], cwd=work, env=env, check=True,
                           capture_output=True, text=True).stdout.strip()
    assert Path(where).resolve().is_relative_to(clone.resolve())  # installed editable, from the clone
    [run] = list((clone / "results" / "smoke").rglob("run.json"))
    assert json.loads(run.read_text())["config"]["dataset"] == "synthetic"
    page = json.loads((work / "out.ipynb").read_text())
    shown = json.dumps([c.get("outputs", []) for c in page["cells"]])
    assert "1 run trained now" in shown and "neither (= Baseline)" in shown
