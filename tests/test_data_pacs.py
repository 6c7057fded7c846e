"""PACS: the shared offline copy (read-only) and a small fake copy for the error paths."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from adu_core.data import DataError, get_dataset
from adu_core.data.cli import main as data_main
from tests._data_fixtures import fake_pacs_class, fake_pacs_files, write_tree


@pytest.fixture(scope="module")
def shared_pacs(shared_datasets):
    if not (shared_datasets / "pacs").is_dir():
        pytest.skip(f"no PACS copy at {shared_datasets / 'pacs'}")
    return get_dataset("pacs", root=shared_datasets)


def _snapshot(folder):
    """Names and mtimes of the copy's top two levels: enough to catch a stray write."""
    out = {}
    for entry in [folder, *folder.iterdir(), *(folder / "splits").iterdir()]:
        out[str(entry)] = entry.stat().st_mtime_ns
    return out


def test_verify_passes_on_shared_copy_without_writing(shared_pacs, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("ADU_CACHE_DIR", str(tmp_path / "cache"))
    before = _snapshot(shared_pacs.dir)
    assert data_main(["verify", "pacs", "--root", str(shared_pacs.data_root)]) == 0
    out = capsys.readouterr().out
    assert "art_painting         140       535     2,048     1,373" in out and out.rstrip().endswith("OK")
    assert "18/18 committed split files valid" in out
    assert "pretrain / train / test parts (adu-pacs-v2) are disjoint and cover the copy" in out
    assert _snapshot(shared_pacs.dir) == before


def test_shared_splits_and_few_shot(shared_pacs, monkeypatch, tmp_path):
    monkeypatch.setenv("ADU_CACHE_DIR", str(tmp_path / "cache"))
    train, test = shared_pacs.samples("train"), shared_pacs.samples("test")
    pretrain = shared_pacs.samples("pretrain")
    assert (len(pretrain), len(train), len(test)) == (6695, 560, 2736)  # adu-pacs-v2
    assert set(Counter((s.domain, s.label) for s in train).values()) == {20}  # the few-shot pool per cell
    test_per_domain = Counter(s.domain for s in test)
    assert len(test) >= 2500 and min(test_per_domain.values()) >= 400, test_per_domain
    assert not set(train) & set(test) and not set(pretrain) & (set(train) | set(test))
    few = shared_pacs.few_shot(8, 1)
    assert len(few) == 4 * 7 * 8
    assert set(Counter((s.domain, s.label) for s in few).values()) == {8}
    assert set(few) <= set(train)
    assert shared_pacs.few_shot(8, 1) == few and shared_pacs.few_shot(8, 2) != few
    k16 = shared_pacs.few_shot(16, 1)
    assert set(few) < set(k16)  # nested across K for one seed
    # the committed file is what is loaded: nothing generated into the cache
    assert not (tmp_path / "cache").exists()
    img = shared_pacs.open_image(few[0])
    assert img.mode == "RGB" and img.size == (227, 227)
    sketch = next(s for s in few if s.domain == "sketch")
    assert shared_pacs.open_image(sketch).mode == "RGB"  # PNG sketches too
    # the official list's label-0 line is read by its folder
    listed = [s for s in shared_pacs.official_samples() if s.path == "art_painting/dog/pic_225.jpg"]
    assert listed and listed[0].label == 0


def test_manifest_is_stable_and_content_aware(shared_pacs):
    m = shared_pacs.manifest_sha256()
    assert len(m) == 64 and get_dataset("pacs", root=shared_pacs.data_root).manifest_sha256() == m


def test_fake_copy_corrupt_image_names_the_file(tmp_path):
    root = write_tree(tmp_path / "pacs", fake_pacs_files(3))
    ds = fake_pacs_class(3)(root=tmp_path)
    sample = ds.samples("train")[0]
    (root / sample.path).write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match=rf"cannot decode image {root / sample.path}.*corrupt"):
        ds.open_image(sample)
    report = ds.verify(deep=True)
    assert not report.ok and any(sample.path in p and "do not decode" in p for p in report.problems)
    assert ds.verify(deep=False).ok  # the shallow check does not decode


def test_fake_copy_missing_file_and_domain_folder(tmp_path):
    root = write_tree(tmp_path / "pacs", fake_pacs_files(3))
    ds = fake_pacs_class(3)(root=tmp_path)
    sample = ds.samples("test")[5]
    os.remove(root / sample.path)
    with pytest.raises(DataError, match=rf"image not found: {root / sample.path}"):
        ds.open_image(sample)
    report = ds.verify()
    assert any("listed images missing" in p and sample.path in p for p in report.problems)
    for path in (root / "cartoon").rglob("*"):
        if path.is_file():
            path.unlink()
    for path in sorted((root / "cartoon").rglob("*"), reverse=True):
        path.rmdir()
    (root / "cartoon").rmdir()
    with pytest.raises(DataError, match=rf"domain 'cartoon' folder {root / 'cartoon'} is missing"):
        fake_pacs_class(3)(root=tmp_path).samples("train")
    assert any(f"{root / 'cartoon'} is missing" in p for p in fake_pacs_class(3)(root=tmp_path).verify().problems)


@pytest.mark.parametrize(("line", "why"), [
    ("cartoon/dog/img_000.jpg", "malformed line"),  # no label
    ("cartoon/dog/img_000.jpg x", "malformed line"),
    ("cartoon/img_000.jpg 1", "malformed line"),
    ("photo/dog/img_000.jpg 1", "not in domain 'cartoon'"),
    ("cartoon/zebra/img_000.jpg 1", "unknown class folder 'zebra'"),
])
def test_fake_copy_bad_split_line_names_file_and_line(tmp_path, line, why):
    root = write_tree(tmp_path / "pacs", fake_pacs_files(3))
    listed = root / "splits" / "cartoon_train_kfold.txt"
    lines = listed.read_text().splitlines()
    lines[2] = line
    listed.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"{listed}:3: .*{why}"):
        fake_pacs_class(3)(root=tmp_path).samples("train")


def test_fake_copy_wrong_listed_label_follows_the_folder(tmp_path):
    root = write_tree(tmp_path / "pacs", fake_pacs_files(3))
    listed = root / "splits" / "photo_train_kfold.txt"
    lines = listed.read_text().splitlines()
    assert lines[0] == "photo/dog/img_000.jpg 1"
    lines[0] = "photo/dog/img_000.jpg 5"
    listed.write_text("\n".join(lines) + "\n")
    ds = fake_pacs_class(3)(root=tmp_path)
    sample = next(s for s in ds.samples("train") if s.path == "photo/dog/img_000.jpg")
    assert sample.label == 0
    assert ds.label_fixes == {"photo_train_kfold.txt:1 (photo/dog/img_000.jpg labelled 5, class dog = 1)"}


def test_committed_few_shot_rejects_a_different_copy(tmp_path):
    """The real PACS class with committed files refuses a copy whose train list lacks the committed images."""
    write_tree(tmp_path / "pacs", fake_pacs_files(3))
    ds = get_dataset("pacs", root=tmp_path)
    with pytest.raises(DataError, match="not in your copy of pacs"):
        ds.few_shot(8, 1)
    report = ds.verify()
    assert any("not in your copy of pacs" in p and "adu data verify pacs" in p for p in report.problems)


def test_parts_are_disjoint_by_content(shared_pacs):
    """No image the testbed CLIP trained on has the bytes of a few-shot pool or test image (not only other paths)."""
    import hashlib

    def digests(split):
        return {hashlib.sha256(shared_pacs.image_path(s).read_bytes()).hexdigest() for s in shared_pacs.samples(split)}

    pretrain = digests("pretrain")
    downstream = digests("train") | digests("test")
    assert len(pretrain) == 6695 and len(downstream) == 560 + 2736  # no two files share bytes within a part
    assert not pretrain & downstream


def test_committed_parts_follow_the_rule(shared_pacs):
    """Regenerating the parts and few-shot files from the copy gives the committed files byte for byte."""
    from adu_core.data import make_splits
    from adu_core.data.splits import read_checked

    files, extra = make_splits.pacs_files(shared_pacs)
    index = shared_pacs.committed_index()
    assert set(files) == set(index["files"])
    for name, (text, _) in files.items():
        assert read_checked(shared_pacs.splits_dir, name, index) == text, name
    assert index["rules"] == extra["rules"]
