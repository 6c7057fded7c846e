"""The book's pages as committed: each is its own notebook (no generator), with the structure every page shares.

Every page is listed in ``_toc.yml``, committed without outputs, starts with the set-up cell of
``book/_setup_cell.py`` (collapsed), has one papermill ``parameters`` cell, and executes: at the smoke tier with no
runs at all, every page still runs to the end and glues every number its prose refers to.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
NOTEBOOKS = sorted(p.stem for p in BOOK.glob("*.ipynb"))
GLUE_REF = re.compile(r"\{glue:text\}`([^`]+)`")


def setup_source() -> str:
    """book/_setup_cell.py from its first `import` line on (its header comment is for whoever edits it)."""
    lines = (BOOK / "_setup_cell.py").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("import"))
    return "\n".join(lines[start:]).strip()


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(BOOK / f"{name}.ipynb", as_version=4)


def test_every_notebook_is_a_page_of_the_book():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    listed = {toc["root"]} | {c["file"] for part in toc["parts"] for c in part["chapters"]}
    assert len(NOTEBOOKS) == 14
    assert {f"book/{n}" for n in NOTEBOOKS} == {f for f in listed if (REPO / f"{f}.ipynb").is_file()}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_as_a_page(name):
    nb = read(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks without outputs"
    assert len({c.id for c in nb.cells}) == len(nb.cells)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")  # the page's title
    assert code[0].source == setup_source() and code[0].metadata.get("tags") == ["hide-cell"]
    params = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert params == [2], "the papermill parameters come right after the set-up and import cells"
    wide = [line for line in code[2].source.splitlines() if len(line) > 80]
    assert not wide, f"the parameters cell is shown: lines over 80 characters scroll sideways: {wide}"
    assert "import adu_book" in code[1].source
    # short cells calling the engine: what pages share lives in adu_book, not in copied cell text
    long = [c.id for c in code[3:] if len(c.source.splitlines()) > 12]
    assert not long, f"cells {long} are long: move their logic into adu_book"
    refs = GLUE_REF.findall("\n".join(c.source for c in nb.cells if c.cell_type == "markdown"))
    assert refs, "a page's conclusions glue their numbers"


SMOKE = {"dataset": "synthetic", "tier": "smoke"}
NO_RUNS = {**SMOKE, "max_new_runs": 0, "forget_sets": "photo"}


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_page_executes_without_runs(name, tmp_path):
    """papermill from book/ at the smoke tier, with an empty results folder and no run budget."""
    params = SMOKE if name == "protocol" else {**NO_RUNS, **({"forget_sets": "all"} if name == "ablation" else {})}
    env = {**os.environ, "ADU_RESULTS_DIR": str(tmp_path / "results")}
    env.pop("ADU_MAX_NEW_RUNS", None)
    out = tmp_path / "out.ipynb"
    args = [a for k, v in params.items() for a in ("-p", k, str(v))]
    proc = subprocess.run([sys.executable, "-m", "papermill", f"{name}.ipynb", str(out), *args, "--no-progress-bar"],
                          cwd=BOOK, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    glued = {o["metadata"]["scrapbook"]["name"] for o in outputs if "scrapbook" in o.get("metadata", {})}
    refs = set(GLUE_REF.findall("\n".join(c.source for c in nb.cells if c.cell_type == "markdown")))
    assert refs <= glued, f"referenced but never glued: {sorted(refs - glued)}"
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("run.json"))
