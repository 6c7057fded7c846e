"""The paper-and-code page's data (adu_book.authors_code): its structure, its switches, and its citations.

Where a mirror of the authors' repository is present (``$ADU_AUTHORS_MIRROR``, else ``.mirror/ali-ahmed925+ADU_new/
repo`` beside the project), every cited file must exist at its commit, and every cited commit must belong to the
release's history (no later third-party commit) with the date the text gives it. CI has no mirror: those tests skip.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from adu_book import authors_code as ac
from adu_core.config import RECIPES, RULES, field_names

MIRROR = Path(os.environ.get("ADU_AUTHORS_MIRROR",
                             Path(__file__).resolve().parents[2] / ".mirror" / "ali-ahmed925+ADU_new" / "repo"))
TAGS = ("[PP", "[KB", "[PN", "[I4", "[I6", "[RC", "[RH", "PAPER.md")
# "abc1234 (2025-04-22" or "abc1234 (2025-04-22, 'message')": a commit and the date the text gives it.
CITED = re.compile(r"\b([0-9a-f]{7})\b \((\d{4}-\d{2}-\d{2})")
HEXLIKE = re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7}\b")


def _texts() -> list[str]:
    out = [t for d in ac.DIFFERENCES for t in (d.history, d.code, d.note)]
    return out + list(ac.SAME_IN_BOTH) + list(ac.OTHER_FINDINGS)


# --- structure --------------------------------------------------------------------------------------------------------
def test_keys_are_unique_identifiers():
    keys = [d.key for d in ac.DIFFERENCES]
    assert len(keys) == len(set(keys))
    assert all(k.isidentifier() for k in keys)
    assert ac.by_key("forget_loss").switch == {"forget_loss": "neg_entropy"}
    with pytest.raises(KeyError):
        ac.by_key("nope")


def test_every_entry_is_filled_in():
    for d in ac.DIFFERENCES:
        for name in ("topic", "paper", "code", "history", "ours", "recipes"):
            assert getattr(d, name).strip(), f"{d.key}: empty {name}"
        assert d.code_file, f"{d.key}: no code_file"
        assert d.kind in ac.KINDS, f"{d.key}: kind {d.kind!r}"
        assert any(tag in d.paper for tag in TAGS) or "not stated" in d.paper.lower(), \
            f"{d.key}: the paper's words carry no source tag"


def test_switches_only_on_recipe_switches_and_a_note_where_not_switched():
    for d in ac.DIFFERENCES:
        assert d.switched == (d.kind == "recipe switch"), d.key
        if not d.switched:
            assert d.note.strip(), f"{d.key}: not switched but no note says why"
        if d.kind == "dataset protocol":
            assert "dataset protocol" in d.note.lower() or "dataset" in d.note.lower(), d.key


def test_every_switch_field_is_a_config_field_or_a_listed_new_one():
    known = set(field_names()) | set(ac.NEW_SWITCH_FIELDS)
    for d in ac.DIFFERENCES:
        for name in d.switch or {}:
            assert name in known, f"{d.key}: {name} is neither a RunConfig field nor a listed new switch"


def test_switch_values_are_in_range_where_the_config_has_a_rule():
    for name, value in ac.authors_switches().items():
        if name in RULES and not str(value).startswith("@"):  # "@n_ctx": another field's value, checked resolved
            check, allowed = RULES[name]
            assert check(value), f"{name}={value!r}: {allowed}"


def test_authors_switches_merge():
    switches = ac.authors_switches()
    assert switches == RECIPES["authors_code"]  # the config's preset is exactly the switched differences
    assert (switches["lam"], switches["batch_size"], switches["forget_loss"]) == (0.5, 128, "neg_entropy")
    assert ac.authors_switches() is not ac.authors_switches()  # a fresh dict: callers may change it


def test_conflicting_switches_are_refused(monkeypatch):
    twin = ac.Difference(key="x", topic="t", kind="recipe switch", paper="not stated", code="c", code_file=("main.sh",),
                         history="h", ours="o", switch={"lam": 1.0})
    monkeypatch.setattr(ac, "DIFFERENCES", (*ac.DIFFERENCES, twin))
    with pytest.raises(ValueError, match="lam"):
        ac.authors_switches()


def test_code_paths_parse():
    for d in ac.DIFFERENCES:
        for commit, path in ac.code_paths(d):
            assert re.fullmatch(r"[0-9a-f]{7,40}", commit), (d.key, commit)
            assert path and not path.startswith("/") and "::" not in path, (d.key, path)
    assert ac.code_paths(ac.by_key("pacs_protocol"))[0] == ("d95d879", "datasets/pacs_df.py")
    assert ac.code_paths(ac.by_key("forget_loss"))[0] == (ac.RELEASE, "utils/loss_fn.py")


def test_table_has_a_row_per_difference():
    pytest.importorskip("pandas")
    table = ac.differences_table()
    assert list(table.index) == [d.key for d in ac.DIFFERENCES]
    assert table.loc["batch", "switch"] == "batch_size=128, sampler='random'"


def test_the_page_shows_an_index_and_a_card_per_difference():
    pytest.importorskip("pandas")
    overview, cards = ac.overview_table(), ac.difference_cards()
    assert list(overview["difference"]) == [d.topic for d in ac.DIFFERENCES]
    assert cards.count("<details") == len(ac.DIFFERENCES) == len(overview)
    for i, d in enumerate(ac.DIFFERENCES, start=1):  # each card: its number, and every field that has a value
        card = cards.split(f'id="difference-{d.key}"', 1)[1].split("</details>", 1)[0]
        assert f"<summary>{i}. " in card and overview.loc[i, "kind"] == d.kind
        for value in (d.paper, d.code, d.history, d.ours, d.note, d.dassl, *d.code_file):
            assert html.escape(value) in card, (d.key, value[:40])
    assert "<code>batch_size=128, sampler=&#x27;random&#x27;</code>" in cards


def test_the_index_says_what_both_recipes_do_only_where_nothing_is_switched():
    pytest.importorskip("pandas")
    both = ac.overview_table()["both recipes"]
    for i, d in enumerate(ac.DIFFERENCES, start=1):
        if d.switched:
            assert both[i] == "–", d.key
        else:
            assert both[i] and not both[i].startswith("both recipes") and both[i] in d.recipes, d.key
    assert both[1 + [d.key for d in ac.DIFFERENCES].index("precision")] == "the project's mixed precision"
    fields = dict(topic="t", kind="recipe switch", paper="p", code="c", code_file=("main.sh",), history="h", ours="o")
    with pytest.raises(ValueError, match="both_recipes"):  # a switched difference follows each source
        ac.Difference(key="x", switch={"lam": 1.0}, both_recipes="the paper's", **fields)
    with pytest.raises(ValueError, match="both_recipes"):  # an unswitched one must say what both do
        ac.Difference(key="y", switch=None, **fields)


# --- citations, against the authors' repository --------------------------------------------------------------------
def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(MIRROR), *args], capture_output=True, text=True, check=False)


needs_mirror = pytest.mark.skipif(not (MIRROR.is_dir() and shutil.which("git")),
                                  reason="no mirror of the authors' repository here (CI has none)")


@needs_mirror
def test_every_code_file_exists_at_its_commit():
    missing = [(d.key, commit, path) for d in ac.DIFFERENCES for commit, path in ac.code_paths(d)
               if _git("cat-file", "-e", f"{commit}:{path}").returncode != 0]
    assert not missing, missing


@needs_mirror
def test_cited_commits_precede_the_release_and_carry_their_dates():
    problems = []
    cited = {h for text in _texts() for h in HEXLIKE.findall(text)}
    cited |= {commit for d in ac.DIFFERENCES for commit, _ in ac.code_paths(d)}
    cited |= {h for text in _texts() for h, _ in CITED.findall(text)}  # all-digit hashes too
    for h in sorted(cited):
        if _git("cat-file", "-e", f"{h}^{{commit}}").returncode != 0:
            problems.append(f"{h}: not a commit")
        elif _git("merge-base", "--is-ancestor", h, ac.RELEASE).returncode != 0:
            problems.append(f"{h}: not in the release's history")
    for text in _texts():
        for h, date in CITED.findall(text):
            actual = _git("show", "-s", "--format=%ad", "--date=short", h).stdout.strip()
            if actual != date:
                problems.append(f"{h}: written {date}, committed {actual}")
    release_date = _git("show", "-s", "--format=%ad", "--date=short", ac.RELEASE).stdout.strip()
    if release_date != ac.RELEASE_DATE:
        problems.append(f"release {ac.RELEASE}: {release_date} != {ac.RELEASE_DATE}")
    assert not problems, problems
