"""`adu data ...` and the data_scripts wrappers."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from adu_core.data.cli import add_parser, main
from tests._data_fixtures import fake_pacs_files, write_tree


def test_list(capsys, tmp_data_root):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert f"data root: {tmp_data_root}" in out
    assert "office_home     4 domains (art, clipart, product, real_world), 65 classes; not downloaded" in out
    assert "synthetic" in out and "in-process" in out


def test_verify_missing_dataset_fails_with_the_folder(capsys, tmp_data_root):
    assert main(["verify", "office_home"]) == 1
    out = capsys.readouterr().out
    assert f"folder {tmp_data_root / 'office_home'} is missing" in out and "adu data download office_home" in out


def test_verify_reports_count_problems(capsys, tmp_data_root):
    write_tree(tmp_data_root / "pacs", fake_pacs_files(2))
    assert main(["verify", "pacs"]) == 1
    out = capsys.readouterr().out
    assert "photo: image counts differ from the expected table" in out and "FAILED" in out


def test_unknown_dataset(capsys):
    assert main(["verify", "nope"]) == 1
    assert "unknown dataset 'nope'; valid:" in capsys.readouterr().err


def test_download_synthetic_and_offline(capsys, tmp_data_root, monkeypatch):
    assert main(["download", "synthetic"]) == 0
    assert "nothing to download" in capsys.readouterr().out
    from adu_core.data import download as dl
    from adu_core.data.pacs import PACS

    monkeypatch.setattr(dl, "GDRIVE_ENDPOINT", "http://127.0.0.1:9/uc")  # discard port: nothing listens
    monkeypatch.setattr(PACS, "resources", (dl.Resource("pacs.zip", ("gdrive:X",)),))
    assert main(["download", "pacs", "--timeout", "2", "--retries", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("adu data: error: cannot download pacs.zip: 127.0.0.1:9 is unreachable")


def test_cache_command(capsys, tmp_data_root):
    assert main(["cache", "synthetic", "--size", "16", "--split", "test"]) == 0
    assert "synthetic test: 288 images at 16px" in capsys.readouterr().out


def test_add_parser_plugs_into_a_parent():
    parser = argparse.ArgumentParser(prog="adu")
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["data", "verify", "pacs", "--root", "/x", "--deep"])
    assert (args.name, args.root, args.deep) == ("pacs", "/x", True) and callable(args.func)
    assert parser.parse_args(["data"]).func(None) == 2  # bare `adu data` prints help


def test_adu_entry_point_routes_data(capsys, tmp_data_root):
    cli = pytest.importorskip("adu_core.cli")
    assert cli.main(["data", "list"]) == 0
    assert "synthetic" in capsys.readouterr().out


def test_data_scripts_wrappers(repo_root, shared_datasets):
    if not (shared_datasets / "pacs").is_dir():
        pytest.skip("no shared PACS")
    done = subprocess.run([sys.executable, "data_scripts/verify.py", "pacs", "--root", str(shared_datasets)],
                          cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("OK")
