"""The runs committed under results/: each a valid run.json whose paths name no machine's folders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from adu_core.results import read_run

REPO = Path(__file__).resolve().parents[1]
COMMITTED = sorted((REPO / "results").rglob("run.json")) + sorted((REPO / "results").rglob("figure-*.json"))
# an absolute path of a POSIX or Windows machine inside a JSON string
ABSOLUTE = re.compile(r'"(/(?:home|root|work|tmp|Users|mnt|data|check|content)/[^"]*|[A-Za-z]:\\\\[^"]*)"')


@pytest.mark.parametrize("path", COMMITTED or [None], ids=lambda p: str(p.relative_to(REPO)) if p else "none")
def test_committed_files_name_no_machine_path(path):
    if path is None:
        pytest.skip("no committed results")
    text = path.read_text()
    assert not ABSOLUTE.findall(text), f"{path.relative_to(REPO)}: {ABSOLUTE.findall(text)[:3]}"
    if path.name == "run.json":
        run = read_run(path)  # valid: the schema the book reads
        pretrained = run["config"].get("pretrained")
        assert pretrained is None or not Path(pretrained).is_absolute(), pretrained


def test_the_pattern_catches_what_it_should():
    assert ABSOLUTE.findall(json.dumps({"pretrained": "/work/main/models/testbed/testbed_clip.pt"}))
    assert not ABSOLUTE.findall(json.dumps({"pretrained": "models/testbed/testbed_clip.pt"}))
