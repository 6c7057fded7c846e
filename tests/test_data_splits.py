"""Split files: committed files follow the documented rules, are checked by sha256, and fail loudly when changed."""

from __future__ import annotations

import json
import shutil
import warnings
from collections import Counter

import pytest

from adu_core.data import DataError, FewShotShortfallWarning, get_dataset, splits
from adu_core.data import make_splits as ms
from adu_core.data.base import Sample


def _committed(name):
    folder = splits.PACKAGE_SPLITS / name
    return folder, json.loads((folder / "index.json").read_text())


@pytest.mark.parametrize("name", ["pacs", "office_home"])
def test_committed_files_match_their_index(name):
    folder, index = _committed(name)
    files = index["files"]
    assert {f"fewshot_k{k}_seed{s}.txt" for k in ms.SHOTS for s in ms.SEEDS} <= set(files)
    for filename, entry in files.items():
        data = (folder / filename).read_bytes()
        assert splits.sha256_bytes(data) == entry["sha256"], filename
        assert data.count(b"\n") == entry["lines"], filename
    on_disk = {p.name for p in folder.iterdir()} - {"index.json", "classes.txt"}
    assert on_disk == set(files)  # nothing unlisted


def test_office_home_committed_splits_follow_the_rule():
    folder, _ = _committed("office_home")
    ds = get_dataset("office_home")
    train = ds._parse((folder / "train.txt").read_text(), "train.txt")
    test = ds._parse((folder / "test.txt").read_text(), "test.txt")
    assert len(train) + len(test) == 15588 and not set(train) & set(test)
    per_domain = Counter(s.domain for s in [*train, *test])
    assert per_domain == {"art": 2427, "clipart": 4365, "product": 4439, "real_world": 4357}
    files, _ = ms.office_home_files(ds, [*train, *test])  # regenerate everything from the file list
    for filename, (text, _) in files.items():
        assert text == (folder / filename).read_text(), filename
    eight = ds._parse((folder / "fewshot_k8_seed1.txt").read_text(), "k8")
    assert len(eight) == 2080 and set(eight) <= set(train)  # 65 x 4 x 8, as in the paper's count


def test_pacs_committed_files_regenerate_from_shared_lists(shared_datasets):
    if not (shared_datasets / "pacs").is_dir():
        pytest.skip("no shared PACS")
    folder, index = _committed("pacs")
    files, extra = ms.pacs_files(get_dataset("pacs", root=shared_datasets))
    for filename, (text, _) in files.items():
        assert text == (folder / filename).read_text(), filename
    assert extra["source_lists"] == index["source_lists"]


def test_tampered_committed_file_is_refused(tmp_path, shared_datasets):
    if not (shared_datasets / "pacs").is_dir():
        pytest.skip("no shared PACS")
    copy = tmp_path / "splits"
    shutil.copytree(splits.PACKAGE_SPLITS / "pacs", copy)
    path = copy / "fewshot_k8_seed1.txt"
    lines = path.read_text().splitlines(keepends=True)
    lines[0] = (copy / "test.txt").read_text().splitlines(keepends=True)[0]  # a test image in the training set
    path.write_text("".join(lines))

    class Patched(type(get_dataset("pacs"))):
        splits_dir = copy

    ds = Patched(root=shared_datasets)
    with pytest.raises(DataError, match=r"fewshot_k8_seed1\.txt was modified.*Restore it from git"):
        ds.few_shot(8, 1)
    assert ds.few_shot(4, 1)  # the other files still load
    path.unlink()
    with pytest.raises(DataError, match="is missing"):
        Patched(root=shared_datasets).few_shot(8, 1)


def test_parse_rejects_bad_lines():
    with pytest.raises(DataError, match=r"f\.txt:2: label 9 outside"):
        splits.parse_samples("a.jpg 0 photo\nb.jpg 9 photo\n", "f.txt", 7, ("photo",))
    with pytest.raises(DataError, match=r"f\.txt:1: unknown domain 'clipart'"):
        splits.parse_samples("a.jpg 0 clipart\n", "f.txt", 7, ("photo",))
    with pytest.raises(DataError, match="expected '<path> <label> <domain>'"):
        splits.parse_samples("a.jpg 0\n", "f.txt", 7, ("photo",))


def test_few_shot_rule_is_deterministic_nested_and_seeded():
    pool = [Sample(f"d{d}/c{c}/{i}.jpg", c, f"d{d}") for d in range(2) for c in range(3) for i in range(20)]
    a = splits.sample_few_shot(pool, 4, 1, "x", ("d0", "d1"), 3)
    assert a == splits.sample_few_shot(list(reversed(pool)), 4, 1, "x", ("d0", "d1"), 3)  # order-independent
    assert set(splits.sample_few_shot(pool, 2, 1, "x", ("d0", "d1"), 3)) < set(a)
    assert a != splits.sample_few_shot(pool, 4, 2, "x", ("d0", "d1"), 3)
    assert set(Counter((s.domain, s.label) for s in a).values()) == {4}


def test_holdout_rule():
    pool = [Sample(f"c{c}/{i}.jpg", c, "d") for c in range(2) for i in range(10)] + [Sample("c2/0.jpg", 2, "d")]
    train, test = splits.holdout_split(pool, "x", 0.2)
    assert Counter(s.label for s in test) == {0: 2, 1: 2}  # a one-image class stays in train
    assert sorted(train + test, key=lambda s: s.path) == sorted(pool, key=lambda s: s.path)


def test_shortfall_is_reported(tmp_data_root):
    ds = get_dataset("synthetic", n_train=3, n_test=2)
    with pytest.warns(FewShotShortfallWarning, match=r"24 \(domain, class\) cell\(s\) have fewer than 5"):
        few = ds.few_shot(5, 1)
    assert len(few) == 4 * 6 * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(ds.few_shot(3, 1)) == 72  # balanced: no warning


def test_generated_few_shot_is_cached_and_checked(tmp_path):
    from tests._data_fixtures import fake_pacs_class, fake_pacs_files, write_tree

    write_tree(tmp_path / "data/pacs", fake_pacs_files(4))
    cls = fake_pacs_class(4)
    ds = cls(root=tmp_path / "data", cache_dir=tmp_path / "cache")
    first = ds.few_shot(2, 7)
    [cached] = (tmp_path / "cache/splits/pacs").rglob("fewshot_k2_seed7.txt")
    assert ds._parse(cached.read_text(), "c") == first
    cached.write_text(cached.read_text().replace("img_000", "img_001", 1))  # tampered: sidecar no longer matches
    again = cls(root=tmp_path / "data", cache_dir=tmp_path / "cache").few_shot(2, 7)
    assert again == first and ds._parse(cached.read_text(), "c") == first  # regenerated and rewritten
