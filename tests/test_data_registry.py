"""The registry contract the trainer relies on: names, data root, class and domain names, domain normalisation."""

from __future__ import annotations

from pathlib import Path

import pytest

from adu_core.data import DataError, data_root, get_dataset, list_datasets
from adu_core.data.locations import cache_dir, user_cache_dir

PAPER = ("domainnet", "imagenet", "mini_domainnet", "office_home", "pacs", "synthetic")


def test_list_datasets():
    assert list_datasets() == sorted(PAPER)


def test_unknown_name_lists_valid_ones():
    for exc in (KeyError, ValueError):
        with pytest.raises(exc) as err:
            get_dataset("office-homme")
        assert str(err.value).startswith("unknown dataset 'office-homme'; valid: domainnet, imagenet")
        assert err.value.args[0] == str(err.value)  # the CLI prints args[0]


@pytest.mark.parametrize("alias", ["Office-Home", "office_home", "OfficeHome", "officehome"])
def test_name_spellings(alias):
    assert get_dataset(alias).name == "office_home"


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("ADU_DATA_ROOT", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_root() == user_cache_dir() / "adu" / "data"
    monkeypatch.setenv("ADU_DATA_ROOT", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "arg") == tmp_path / "arg"  # explicit wins
    assert get_dataset("pacs").dir == tmp_path / "env" / "pacs"
    assert get_dataset("pacs", root=tmp_path / "arg").dir == tmp_path / "arg" / "pacs"
    monkeypatch.setenv("ADU_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" and cache_dir(tmp_path / "d") == tmp_path / "d"


def test_names_known_without_files(tmp_data_root):
    expect = {"pacs": (4, 7), "office_home": (4, 65), "mini_domainnet": (4, 126), "domainnet": (6, 345),
              "synthetic": (4, 6)}
    for name, (n_dom, n_cls) in expect.items():
        ds = get_dataset(name)
        assert (len(ds.domains), len(ds.domain_names), len(ds.classnames)) == (n_dom, n_dom, n_cls), name
        assert len(set(ds.classnames)) == n_cls
        for text in ds.classnames:  # prompt-ready: words, no folder punctuation
            assert "_" not in text and text == text.strip() and text, (name, text)
        for dom in ds.domains:
            assert dom == dom.lower() and " " not in dom
    oh = get_dataset("office_home")
    assert oh.domains == ("art", "clipart", "product", "real_world")
    assert oh.domain_names[-1] == "real world"
    assert oh.classnames[:2] == ("alarm clock", "backpack") and "post-it notes" in oh.classnames
    assert get_dataset("pacs").domain_names[0] == "art painting"
    assert get_dataset("mini_domainnet").classnames[10] == "teddy bear"
    assert get_dataset("domainnet").classnames[0] == "aircraft carrier"


def test_imagenet_classnames_from_open_clip():
    ds = get_dataset("imagenet")
    assert ds.domains == ("real", "sketch")
    assert len(ds.classnames) == 1000 and ds.classnames[0] == "tench"


@pytest.mark.parametrize(("name", "given", "want"), [
    ("office_home", ["Real World", "real-world", "REAL_WORLD", "real"], ("real_world",)),
    ("office_home", "Art, Clipart", ("art", "clipart")),
    ("pacs", ["Art Painting", "art", "sketch"], ("art_painting", "sketch")),
    ("imagenet", ["ImageNet", "sketch"], ("real", "sketch")),
    ("synthetic", ("photo", "painting"), ("photo", "painting")),
    ("synthetic", ("photo,Sketch", "cartoon"), ("photo", "sketch", "cartoon")),
    ("synthetic", ",", ()),
])
def test_check_domains_normalises(name, given, want):
    assert get_dataset(name).check_domains(given) == want


def test_check_domains_unknown_lists_valid():
    with pytest.raises(DataError, match=r"unknown domain 'infograph' for mini_domainnet; valid: clipart, painting, "
                                        r"real, sketch"):
        get_dataset("mini_domainnet").check_domains(["clipart", "infograph"])


def test_missing_dataset_folder_names_it(tmp_data_root):
    ds = get_dataset("office_home")
    with pytest.raises(DataError, match=rf"folder {tmp_data_root / 'office_home'} does not exist.*adu data download"):
        ds.samples("train")
    with pytest.raises(ValueError, match="split must be"):
        ds.samples("val")


def test_root_may_be_the_dataset_folder_itself(tmp_path):
    from tests._data_fixtures import fake_pacs_files, write_tree

    write_tree(tmp_path / "mypacs", fake_pacs_files(2))
    assert get_dataset("pacs", root=tmp_path / "mypacs").dir == Path(tmp_path / "mypacs")


def test_missing_folder_names_where_the_root_came_from(tmp_path, monkeypatch):
    from adu_core.data import DataError, get_dataset

    monkeypatch.setenv("ADU_DATA_ROOT", str(tmp_path / "from-env"))
    with pytest.raises(DataError) as err:
        get_dataset("pacs", root=tmp_path / "given").samples("test")
    msg = str(err.value)
    assert f"data root is {tmp_path / 'given'} (as given)" in msg and "--data-root" in msg
    assert "from $ADU_DATA_ROOT" not in msg and "--root" not in msg.replace("--data-root", "")
    with pytest.raises(DataError, match=r"from-env \(from \$ADU_DATA_ROOT\)"):
        get_dataset("pacs").samples("test")
    monkeypatch.delenv("ADU_DATA_ROOT")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=r"\(the default: neither --data-root nor \$ADU_DATA_ROOT was given\)"):
        get_dataset("pacs").samples("test")
