"""The in-process synthetic dataset and the torch ImageDataset over it."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest
import torch

from adu_core.data import DataError, ImageDataset, Sample, get_dataset


@pytest.fixture(scope="module")
def ds():
    return get_dataset("synthetic")


def test_contract(ds):
    assert ds.name == "synthetic" and ds.domains == ("photo", "sketch", "cartoon", "painting")
    assert ds.classnames == ("circle", "square", "triangle", "star", "cross", "heart")
    train, test = ds.samples("train"), ds.samples("test")
    assert (len(train), len(test)) == (4 * 6 * 20, 4 * 6 * 12)
    assert set(Counter((s.domain, s.label) for s in train).values()) == {20}
    assert not set(train) & set(test)
    assert ds.verify().ok


def test_deterministic_and_distinct(ds):
    s = ds.samples("train")[0]
    a = np.asarray(ds.open_image(s))
    b = np.asarray(get_dataset("synthetic").open_image(s))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    other = np.asarray(ds.open_image(ds.samples("train")[1]))
    assert not np.array_equal(a, other)
    shifted = np.asarray(get_dataset("synthetic", seed=1).open_image(s))
    assert not np.array_equal(a, shifted)
    assert get_dataset("synthetic", seed=1).manifest_sha256() != ds.manifest_sha256()


def test_fast(ds):
    samples = ds.samples("test")[::6]
    t0 = time.perf_counter()
    for s in samples:
        ds.open_image(s)
    assert (time.perf_counter() - t0) / len(samples) < 0.02  # about 2 ms on one core


def _stats(ds, domain):
    imgs = [np.asarray(ds.open_image(s), dtype=np.float32) for s in ds.samples("test") if s.domain == domain][:24]
    x = np.stack(imgs)
    sat = (x.max(-1) - x.min(-1)).mean()
    flat = np.mean([len(np.unique(i.reshape(-1, 3), axis=0)) for i in imgs])
    return sat, flat


def test_domains_look_different(ds):
    stats = {d: _stats(ds, d) for d in ds.domains}
    assert stats["sketch"][0] < 1.0  # grey pencil on paper: no colour at all
    assert stats["cartoon"][1] < 0.3 * stats["photo"][1]  # flat fills: few distinct colours
    assert stats["photo"][0] > 20 and stats["painting"][0] > 20


def test_classes_are_learnable(ds):
    """A linear model on edge maps, no training tricks, must beat chance by far on held-out images."""
    from sklearn.linear_model import LogisticRegression

    def feats(samples):
        out = []
        for s in samples:
            a = np.asarray(ds.open_image(s).convert("L").resize((16, 16)), dtype=np.float32) / 255
            out.append(np.hypot(np.diff(a, axis=1)[:-1], np.diff(a, axis=0)[:, :-1]).ravel())
        return np.array(out)

    train = [s for s in ds.samples("train") if s.domain in ("cartoon", "sketch")]
    test = [s for s in ds.samples("test") if s.domain in ("cartoon", "sketch")]
    clf = LogisticRegression(max_iter=300, C=0.1).fit(feats(train), [s.label for s in train])
    acc = (clf.predict(feats(test)) == np.array([s.label for s in test])).mean()
    assert acc > 0.45  # chance is 1/6; about 0.6 here


def test_few_shot(ds):
    few = ds.few_shot(4, 1)
    assert len(few) == 96 and set(few) <= set(ds.samples("train"))
    assert ds.few_shot(4, 1) == few and ds.few_shot(4, 2) != few


def test_bad_ids(ds):
    with pytest.raises(DataError, match="not a synthetic sample id"):
        ds.open_image(Sample("photo/blob/train/000", 0, "photo"))
    with pytest.raises(DataError, match="carries label"):
        ds.open_image(Sample("photo/circle/train/000", 3, "photo"))


def test_image_dataset(ds):
    samples = ds.few_shot(1, 1)
    data = ImageDataset(ds, samples, transform=None)
    x, label, dom = data[len(samples) - 1]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32 and 0 <= x.min() <= x.max() <= 1
    assert (label, dom) == (samples[-1].label, ds.domains.index(samples[-1].domain))
    loader = torch.utils.data.DataLoader(ImageDataset(ds, samples, transform=lambda im: torch.zeros(2)),
                                         batch_size=8)
    xb, yb, db = next(iter(loader))
    assert xb.shape == (8, 2) and yb.dtype == torch.int64 and db.tolist() == [0] * 6 + [1] * 2
    with pytest.raises(DataError, match="domains"):
        ImageDataset(ds, [Sample("x", 0, "infograph")], None)
