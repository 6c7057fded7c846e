"""The uint8 tensor cache: same pixels as decoding, reused only while every file is unchanged."""

from __future__ import annotations

import json

import pytest
import torch

from adu_core.data import get_dataset
from adu_core.data import tensor_cache as tc
from tests._data_fixtures import fake_pacs_class, fake_pacs_files, image_bytes, write_tree


@pytest.fixture
def fake(tmp_path):
    write_tree(tmp_path / "data/pacs", fake_pacs_files(2))
    return fake_pacs_class(2)(root=tmp_path / "data", cache_dir=tmp_path / "cache")


def _files(ds):
    return sorted((ds.cache_dir / "tensors" / ds.name).glob("*.u8"))


def test_cache_matches_decoding_and_is_reused(fake, monkeypatch):
    samples = fake.samples("train")
    images = tc.cached_images(fake, samples, 16, progress=False)
    assert images.shape == (len(samples), 3, 16, 16) and images.dtype == torch.uint8
    assert torch.equal(images, tc.decode(fake, samples, 16, progress=False))
    try:
        from adu_core.pipeline import decode_images
    except ImportError:
        decode_images = None
    if decode_images is not None:  # the trainer's uncached path gives the same pixels
        assert torch.equal(images, decode_images(fake, samples, 16))
    [path] = _files(fake)
    monkeypatch.setattr(tc, "decode", lambda *a, **k: pytest.fail("decoded again instead of using the cache"))
    again = tc.cached_images(fake, samples, 16, progress=False)
    assert torch.equal(again, images)


def test_changed_file_changes_the_key_and_replaces_the_cache(fake):
    samples = fake.samples("test")
    first = tc.cached_images(fake, samples, 16, progress=False)
    [old] = _files(fake)
    key = tc.cache_key(fake, samples, 16)
    (fake.image_path(samples[0])).write_bytes(image_bytes(999))  # same name, new content
    assert tc.cache_key(fake, samples, 16) != key
    second = tc.cached_images(fake, samples, 16, progress=False)
    assert not torch.equal(first[0], second[0]) and torch.equal(first[1:], second[1:])
    [new] = _files(fake)
    assert new != old  # the stale file is gone, never reused
    assert tc.cache_key(fake, samples, 16) != tc.cache_key(fake, samples, 24)
    assert tc.cache_key(fake, samples[:-1], 16) != tc.cache_key(fake, samples, 16)


def test_stat_fingerprint_and_corrupt_cache(fake):
    samples = fake.samples("test")
    tc.cached_images(fake, samples, 8, fingerprint="stat", progress=False)
    [path] = _files(fake)
    path.write_bytes(b"not the pixels")
    images = tc.cached_images(fake, samples, 8, fingerprint="stat", progress=False)  # rebuilt, not crashed
    assert images.shape == (len(samples), 3, 8, 8)
    assert json.loads(tc.meta_path(path).read_text())["key"] == tc.cache_key(fake, samples, 8, "stat")
    tc.meta_path(path).write_text("{")  # a truncated metadata file: rebuilt too
    assert torch.equal(tc.cached_images(fake, samples, 8, fingerprint="stat", progress=False), images)


def test_in_process_dataset_writes_nothing(tmp_path):
    ds = get_dataset("synthetic", cache_dir=tmp_path / "cache")
    path, n = tc.build_cache(ds, "test", 32, progress=False)
    assert path is None and n == 288 and not (tmp_path / "cache").exists()


def test_build_cache_for_few_shot(fake):
    path, n = tc.build_cache(fake, "train", 8, shots=1, seed=1, progress=False)
    labels, domains = tc.cached_labels(path)
    few = fake.few_shot(1, 1)
    assert n == len(few) == 28 and labels == [s.label for s in few]
    assert domains == [fake.domains.index(s.domain) for s in few]
