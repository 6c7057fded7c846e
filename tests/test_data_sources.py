"""Every paper dataset's download + install + verify path, against small archives served on 127.0.0.1.

Each test builds archives with the real layout of the dataset's source (Dassl's PACS zip, the original Office-Home
release, DomainNet's per-domain zips and lists, Dassl's splits_mini zip, ImageNet-Sketch's zip), points a subclass
of the real dataset at the local server with a small expected table, and runs the same code `adu data download`
runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings

import pytest

from adu_core.data import DataError, FewShotShortfallWarning, get_dataset
from adu_core.data import download as dl
from adu_core.data import make_splits as ms
from adu_core.data.domainnet import DomainNet, MiniDomainNet
from adu_core.data.imagenet import ImageNetSketchPair
from adu_core.data.office_home import CLASS_DIRS, OfficeHome
from tests._data_fixtures import ServerThread, fake_pacs_class, fake_pacs_files, image_bytes, make_zip, write_tree


@pytest.fixture
def server(monkeypatch):
    with ServerThread() as s:
        monkeypatch.setattr(dl, "GDRIVE_ENDPOINT", s.url("/uc"))
        yield s


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_real_resources_are_declared():
    """Every paper dataset has download code; checksums are real where published, else trust-on-first-use."""
    for name in ("pacs", "office_home", "mini_domainnet", "domainnet", "imagenet"):
        ds = get_dataset(name)
        assert ds.resources, name
        for res in ds.resources:
            assert res.urls and all(u.startswith(("http://", "https://", "gdrive:")) for u in res.urls)
            assert res.verified == bool(res.checksum_source)
    assert all(r.md5 and r.size for r in get_dataset("domainnet").resources)  # the real md5 sums
    assert [r.verified for r in get_dataset("mini_domainnet").resources] == [True] * 4 + [False]


def test_pacs_download_from_drive_and_verify(server, tmp_data_root):
    files = fake_pacs_files(per_class=3, images_prefix="images/")
    server.gdrive["1m4X4fROCCXMO0lRLrr6Zz9Vb3974NWhE"] = make_zip({f"pacs/{k}": v for k, v in files.items()})
    ds = fake_pacs_class(3)()
    report = dl.download_dataset(ds, progress=False)
    assert report.ok, report.render()
    assert (tmp_data_root / "pacs/photo/dog/img_000.jpg").is_file()  # images/ moved up to the shared layout
    assert not (tmp_data_root / "_downloads/pacs.zip").exists()  # archive removed after install
    assert "pacs.zip" in json.loads((tmp_data_root / "_downloads/checksums.json").read_text())
    assert report.counts["photo"] == {"train": 14, "test": 7, "images": 21}
    with warnings.catch_warnings():
        warnings.simplefilter("error", FewShotShortfallWarning)
        few = ds.few_shot(2, seed=1)
    assert len(few) == 4 * 7 * 2
    # generated at first use into the cache dir (not the data root), with its sha256 sidecar
    cached = list((tmp_data_root.parent / "cache/splits/pacs").rglob("fewshot_k2_seed1.txt*"))
    assert sorted(p.name for p in cached) == ["fewshot_k2_seed1.txt", "fewshot_k2_seed1.txt.sha256"]
    n = len(server.log)
    assert dl.download_dataset(ds, progress=False).ok  # a rerun fetches nothing
    assert len(server.log) == n


def test_corrupt_archive_is_reported_and_dropped(server, tmp_data_root):
    server.gdrive["1m4X4fROCCXMO0lRLrr6Zz9Vb3974NWhE"] = make_zip({"pacs/x.txt": b"x" * 5000})[:-40]
    with pytest.raises(dl.ArchiveError, match=r"pacs\.zip"):
        dl.download_dataset(fake_pacs_class(3)(), progress=False)
    downloads = tmp_data_root / "_downloads"
    assert not (downloads / "pacs.zip").exists()  # unverified and corrupt: the rerun fetches it again
    assert "pacs.zip" not in json.loads((downloads / "checksums.json").read_text() or "{}")
    assert not (tmp_data_root / "pacs").exists() and not list(tmp_data_root.glob(".staging-*"))


def test_office_home_download_and_verify(server, tmp_path, tmp_data_root):
    files = {}
    samples = []
    from adu_core.data.base import Sample

    for d, (dom, dom_dir) in enumerate({"art": "Art", "clipart": "Clipart", "product": "Product",
                                        "real_world": "Real World"}.items()):
        for label, cls in enumerate(CLASS_DIRS):
            for i in range(1, 4):
                files[f"OfficeHomeDataset_10072016/{dom_dir}/{cls}/{i:05d}.jpg"] = image_bytes(d * 1000 + label * 5 + i)
                samples.append(Sample(f"{dom_dir.replace(' ', '_')}/{cls}/{i:05d}.jpg", label, dom))
    files["OfficeHomeDataset_10072016/ImageInfo.csv"] = b"extra file outside the domains\n"
    server.gdrive["1uY0pj7oFsjMxRwaD3Sxy0jgel0fsYXLC"] = make_zip(files)

    class TinyOfficeHome(OfficeHome):
        splits_dir = tmp_path / "oh_splits"
        expected_totals = {d: 3 * 65 for d in ("art", "clipart", "product", "real_world")}

    ds = TinyOfficeHome()
    split_files, extra = ms.office_home_files(ds, samples)
    ms.write_folder(ds.splits_dir, ds.name, split_files, **extra)
    report = dl.download_dataset(ds, progress=False)
    assert report.ok, report.render()
    assert (tmp_data_root / "office_home/Real_World/TV/00001.jpg").is_file()  # "Real World" renamed
    assert report.counts["art"] == {"train": 130, "test": 65, "images": 195}  # round(0.2 * 3) = 1 test per class
    assert len(ds.few_shot(2, 1)) == 4 * 65 * 2


def _domainnet_archives(domains, classes, per_class=2):
    zips, lists = {}, {}
    for d, dom in enumerate(domains):
        files, lines = {}, {"train": [], "test": []}
        for label, cls in classes:
            for i in range(per_class + 1):
                rel = f"{dom}/{cls}/{dom}_{label:03d}_{i:06d}.jpg"
                files[rel] = image_bytes(d * 100 + label * 7 + i)
                lines["test" if i == per_class else "train"].append(f"{rel} {label}")
        zips[dom] = make_zip(files)
        for split, ls in lines.items():
            lists[f"{dom}_{split}"] = ("\n".join(ls) + "\n").encode()
    return zips, lists


def test_domainnet_download_md5_and_verify(server, tmp_data_root):
    classes = [(0, "aircraft_carrier"), (1, "airplane")]
    zips, lists = _domainnet_archives(("clipart", "sketch"), classes)
    resources = [dl.Resource(f"{d}.zip", (server.add(f"/{d}.zip", z),), md5=md5(z), size=len(z),
                             checksum_source="test") for d, z in zips.items()]
    resources += [dl.Resource(f"domainnet_{n}.txt", (server.add(f"/txt/{n}.txt", b),), md5=md5(b), kind="file",
                              target=f"splits/{n}.txt", checksum_source="test") for n, b in lists.items()]

    class TinyDomainNet(DomainNet):
        domains = ("clipart", "sketch")
        domain_names = domains
        official_lists = {n: (md5(b), len(b), b.count(b"\n")) for n, b in lists.items()}

    TinyDomainNet.resources = tuple(resources)
    ds = TinyDomainNet()
    report = dl.download_dataset(ds, progress=False)
    assert report.ok, report.render()
    assert report.counts == {"clipart": {"train": 4, "test": 2}, "sketch": {"train": 4, "test": 2}}
    assert {s.label for s in ds.samples("train")} == {0, 1}
    # a list that is not the official one is named
    (tmp_data_root / "domainnet/splits/sketch_test.txt").write_text("sketch/airplane/sketch_001_000002.jpg 1\n")
    report = TinyDomainNet().verify()
    assert any("sketch_test.txt is not the official" in p for p in report.problems)
    # a listed label that contradicts its class folder is an error for DomainNet (its lists are the truth)
    (tmp_data_root / "domainnet/splits/sketch_test.txt").write_text("sketch/airplane/sketch_001_000002.jpg 0\n")
    with pytest.raises(DataError, match=r"sketch_test\.txt:1: label 0 does not match the class folder 'airplane'"):
        TinyDomainNet().samples("test")


def test_domainnet_wrong_md5_stops_before_install(server, tmp_data_root):
    zips, _ = _domainnet_archives(("clipart",), [(0, "aircraft_carrier")])

    class Broken(DomainNet):
        domains = ("clipart",)
        domain_names = domains
        resources = (dl.Resource("clipart.zip", (server.add("/c.zip", zips["clipart"]),), md5="0" * 32,
                                 checksum_source="test"),)

    with pytest.raises(dl.ChecksumError, match="md5"):
        dl.download_dataset(Broken(), progress=False, backoff=0)
    assert not (tmp_data_root / "domainnet").exists()
    assert not list((tmp_data_root / "_downloads").glob("clipart.zip*"))


def test_mini_domainnet_download_with_drive_lists_and_verify(server, tmp_data_root):
    classes = [(7, "umbrella"), (3, "television"), (5, "zebra")]  # numbers as a list may carry them
    domains = ("clipart", "painting", "real", "sketch")
    zips, lists = _domainnet_archives(domains, classes)
    server.gdrive["15rrLDCrzyi6ZY-1vJar3u7plgLe4COL7"] = make_zip(
        {f"splits_mini/{n}.txt": b for n, b in lists.items()})

    class TinyMini(MiniDomainNet):
        class_dirs = ("umbrella", "television", "zebra")
        classnames = class_dirs
        resources = (*(dl.Resource(f"{d}.zip", (server.add(f"/{d}.zip", z),), md5=md5(z), checksum_source="t")
                       for d, z in zips.items()),
                     MiniDomainNet.resources[-1])

    ds = TinyMini()
    report = dl.download_dataset(ds, progress=False)
    assert report.ok, report.render()
    assert sorted({(s.path.split("/")[1], s.label) for s in ds.samples("test")}) == \
        [("television", 1), ("umbrella", 0), ("zebra", 2)]  # relabelled by folder name
    assert len(ds.few_shot(2, 1)) == 4 * 3 * 2


def test_imagenet_sketch_download_and_user_supplied_imagenet(server, tmp_data_root):
    wnids = ("n01440764", "n01443537", "n01484850")
    for label, w in enumerate(wnids):
        write_tree(tmp_data_root / "imagenet", {f"train/{w}/{w}_{i}.JPEG": image_bytes(label * 10 + i)
                                                for i in range(2)})
        write_tree(tmp_data_root / "imagenet", {f"val/{w}/ILSVRC2012_val_{label:08d}.JPEG": image_bytes(50 + label)})
    sketch = make_zip({f"sketch/{w}/sketch_{i}.JPEG": image_bytes(100 + j * 10 + i)
                       for j, w in enumerate(wnids) for i in range(4)})

    class TinyImageNet(ImageNetSketchPair):
        classnames = ("tench", "goldfish", "great white shark")
        n_classes = 3
        expected = {"train": 6, "val": 3, "sketch": 12}
        val_per_class = 1
        resources = (dl.Resource("ImageNet-Sketch.zip", (server.url("/missing.zip"), server.add("/s.zip", sketch))),)

    ds = TinyImageNet()
    report = dl.download_dataset(ds, progress=False)  # the first mirror 404s, the second serves
    assert report.ok, report.render()
    # ImageNet-Sketch: 20 % of each class as test (the authors' 80/20), round(0.2 * 4) = 1 of 4
    assert report.counts == {"real": {"train": 6, "test": 3}, "sketch": {"train": 9, "test": 3}}
    assert len(ds.few_shot(2, 1)) == 2 * 3 * 2


def test_imagenet_user_archives_are_md5_checked(tmp_data_root):
    folder = tmp_data_root / "imagenet"
    folder.mkdir()
    (folder / "ILSVRC2012_img_val.tar").write_bytes(b"not the real archive")
    (folder / "ILSVRC2012_devkit_t12.tar.gz").write_bytes(b"nor this")
    with pytest.raises(DataError, match=r"ILSVRC2012_img_val\.tar: md5 .* official"):
        get_dataset("imagenet").post_download()


def test_office_home_archive_without_domains_is_rejected(server, tmp_data_root, tmp_path):
    server.gdrive["1uY0pj7oFsjMxRwaD3Sxy0jgel0fsYXLC"] = make_zip({"something/else.txt": b"x"})

    class Empty(OfficeHome):
        splits_dir = tmp_path

    with pytest.raises(DataError, match="Office-Home archive"):
        dl.download_dataset(Empty(), progress=False)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write into a read-only folder")
def test_unwritable_root_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(DataError, match="cannot write under the data root"):
            dl.download_dataset(get_dataset("pacs", root=ro), progress=False)
    finally:
        ro.chmod(0o700)
