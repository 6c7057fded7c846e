"""Issue 27, item 3, and the authors' data protocol: existing copies of the datasets are read in place.

Office-Home: the original release (``Real_World`` or ``Real World``) with the project's split, and Dassl's
``office_home_dg/<domain>/{train,val}/<class>/`` with the authors' protocol (pool = train/, test = val/). ImageNet:
torchvision's layout and CoOp's (``imagenet/images/{train,val}``, ``imagenet-sketch/images``). Each layout is a
fabricated tree; each test checks what ``adu data verify`` says, the samples, the protocol a run records, and that
``adu data download`` does not fetch what is already complete.
"""

from __future__ import annotations

import pytest

from adu_core.data import DataError, get_dataset
from adu_core.data import download as dl
from adu_core.data.cli import main as data_cli
from adu_core.data.imagenet import ImageNetSketchPair
from adu_core.data.office_home import CLASS_DIRS, OfficeHome
from tests._paper_tier_fixtures import WNIDS, imagenet_tree, office_home_dassl, office_home_original

NOWHERE = "http://127.0.0.1:9/never-fetched"  # a resource here would fail at once if anything were downloaded


class OfflineOfficeHome(OfficeHome):
    resources = (dl.Resource("OfficeHomeDataset_10072016.zip", (NOWHERE,)),)


@pytest.mark.parametrize("real_world", ["Real_World", "Real World"])
def test_office_home_original_release_keeps_the_projects_split(tmp_data_root, real_world):
    office_home_original(tmp_data_root, real_world)
    ds = OfflineOfficeHome()
    report = ds.verify()
    assert report.ok, report.render()
    assert ds.layout == "original" and report.layout.startswith("original: office_home/{Art,Clipart,")
    record = ds.data_record(test_images=200)
    assert record == {"layout": "original", "protocol": "adu-split-v1", "authors_protocol": False,
                      "protocol_note": record["protocol_note"], "test_images": 200, "test_split_images": 3123}
    assert "not the authors'" in record["protocol_note"]
    assert dl.download_dataset(ds, progress=False).ok  # complete and verified: nothing is fetched


@pytest.mark.parametrize(("folder", "class_case"), [("office_home_dg", "lower"), ("office_home", "lower"),
                                                    ("office_home_dg", "original")])
def test_office_home_dassl_copy_is_read_in_place_with_the_authors_protocol(tmp_data_root, capsys, folder,
                                                                            class_case):
    office_home_dassl(tmp_data_root, folder=folder, train=3, val=2, class_case=class_case)
    ds = OfflineOfficeHome()
    assert ds.dir == tmp_data_root / folder and ds.layout == "dassl"
    train, test = ds.samples("train"), ds.samples("test")
    assert len(train) == 4 * 65 * 3 and len(test) == 4 * 65 * 2
    assert all("/train/" in s.path for s in train) and all("/val/" in s.path for s in test)
    # labels follow the class folder's name: our order is the authors' (their sorted lower-case folders)
    assert sorted(c.lower() for c in CLASS_DIRS) == [c.lower() for c in CLASS_DIRS]
    assert {(s.path.split("/")[2].lower(), s.label) for s in train} == {(c.lower(), i) for i, c in enumerate(CLASS_DIRS)}
    shots = ds.few_shot(2, seed=1)  # generated from train/ only (the committed files belong to the release)
    assert len(shots) == 4 * 65 * 2 and set(shots) <= set(train) and not set(shots) & set(test)
    assert ds.data_record(len(test))["protocol"] == "authors-50a43db" and ds.data_record()["authors_protocol"]
    assert data_cli(["verify", "office_home"]) == 0
    out = capsys.readouterr().out
    assert f"layout: dassl: {folder}/{{art,clipart,product,real_world}}/{{train,val}}/<class>/" in out
    assert "the authors' log counts 1,656: this copy differs from theirs" in out
    assert data_cli(["list"]) == 0
    assert f"present at {tmp_data_root / folder}, layout dassl" in capsys.readouterr().out
    report = dl.download_dataset(ds, progress=False)  # complete: never fetched again, and it says so
    assert report.ok and any("nothing downloaded" in n for n in report.notes)


def test_dassl_copy_problems_are_named(tmp_data_root):
    top = office_home_dassl(tmp_data_root, train=1, val=1)
    for f in (top / "clipart" / "val" / "mug").iterdir():
        f.unlink()
    report = OfflineOfficeHome().verify()
    assert report.problems == ["clipart: 1 class(es) have no image in "
                               f"{top / 'clipart' / 'val'}: mug"]
    (top / "art" / "train" / "unicorn").mkdir()
    with pytest.raises(DataError, match=r"class folders that are not Office-Home's 65: unicorn"):
        OfflineOfficeHome().samples("train")
    # an incomplete copy is not taken for complete: the download is attempted (and fails here, offline)
    with pytest.raises(dl.DownloadError):
        dl.download_dataset(OfflineOfficeHome(), progress=False, retries=0)


class TinyImageNet(ImageNetSketchPair):
    classnames = ("tench", "goldfish", "great white shark")
    n_classes = 3
    expected = {"train": 6, "val": 3, "sketch": 15}
    val_per_class = 1
    resources = (dl.Resource("ImageNet-Sketch.zip", (NOWHERE,)),)


def test_imagenet_torchvision_and_coop_layouts_give_the_same_samples(tmp_path, monkeypatch):
    samples = {}
    for layout in ("torchvision", "coop"):
        root = tmp_path / layout
        imagenet_tree(root, layout)
        monkeypatch.setenv("ADU_DATA_ROOT", str(root))
        ds = TinyImageNet()
        report = ds.verify()
        assert report.ok, report.render()
        assert ds.layout == layout
        where = {"torchvision": "imagenet/sketch/", "coop": "imagenet-sketch/images/"}[layout]
        assert f"sketch from {where}" in report.layout
        assert report.counts == {"real": {"train": 6, "test": 3}, "sketch": {"train": 12, "test": 3}}  # 80/20
        samples[layout] = (ds.samples("train"), ds.samples("test"), ds.few_shot(2, 1))
        assert ds.image_path(samples[layout][1][-1]).is_file()
        assert dl.download_dataset(ds, progress=False).ok  # Sketch is there: not downloaded again
        assert ds.data_record()["protocol"] == "imagenet-val+sketch-80-20"
    assert samples["torchvision"] == samples["coop"]  # logical paths: same split and few-shot files


def test_imagenet_without_sketch_still_downloads_it(tmp_data_root):
    imagenet_tree(tmp_data_root, "coop", sketch=0)
    ds = TinyImageNet()
    assert not ds.verify().ok
    with pytest.raises(dl.DownloadError, match="ImageNet-Sketch.zip"):
        dl.download_dataset(ds, progress=False, retries=0)


def test_sketch_split_is_eighty_twenty_per_class(tmp_data_root):
    imagenet_tree(tmp_data_root, "torchvision", sketch=10)
    ds = TinyImageNet()
    test = [s for s in ds.samples("test") if s.domain == "sketch"]
    assert sorted(s.path.split("/")[1] for s in test) == sorted(w for w in WNIDS for _ in range(2))


def test_registry_finds_a_dassl_copy_under_the_data_root(tmp_data_root):
    office_home_dassl(tmp_data_root)
    assert get_dataset("office_home").layout == "dassl"
