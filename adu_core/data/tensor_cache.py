"""Decode + resize a sample list once into a uint8 tensor [N, 3, S, S] on disk, so training is not bound by JPEG.

The file is keyed by (dataset, the exact sample list, resolution, resize rule, and a fingerprint of every file's
bytes), so a changed, added or removed image gives a new key: a stale cache is never reused. Fingerprints are the
sha256 of each file by default (reading is far cheaper than decoding); ``fingerprint="stat"`` uses size + mtime for
very large sets. Files live under ``<cache dir>/tensors/<dataset>/``: the raw pixels (``.u8``, N·3·S·S bytes) and a
small ``.json`` beside them (key, shape, labels, domains), both written atomically (temporary file + rename). Older
caches of the same list and size are removed when a new one is written. In-process datasets (``synthetic``) are
decoded without touching the disk.

**Bounded memory.** Images are decoded straight into the memory-mapped file, and the tensor that comes back is a
(copy-on-write) mapping of it, not a copy: its pages are the kernel's page cache, read from disk as evaluation
streams through them in batches and dropped again under memory pressure. So ImageNet's test set (val + Sketch's
held-out part, about 9 GB decoded at 224 px) needs disk, not RAM: the process's own memory stays at a few hundred MB
whatever N is (``benchmarks/eval_memory.py`` measures it; ``benchmarks/README.md`` has the figures).

The resize matches ``adu_core.pipeline.decode_images`` (CLIP's evaluation transform): shorter side to S with
bicubic filtering, then a centred S x S crop.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF
from tqdm.auto import tqdm

from . import locations
from .base import DataError, Sample
from .dataset import Dataset
from .splits import samples_sha256

log = logging.getLogger(__name__)

VERSION = 2  # 2: raw .u8 pixels + .json (v1 was one torch.save file, which had to be built in memory)
RESIZE_RULE = "torchvision resize(shorter side, bicubic, antialias) + center_crop"


def to_uint8(image: Image.Image, size: int) -> torch.Tensor:
    image = TF.resize(image.convert("RGB"), size, interpolation=InterpolationMode.BICUBIC)
    return TF.pil_to_tensor(TF.center_crop(image, size))


def decode(ds: Dataset, samples: Sequence[Sample], size: int, desc: str = "decode", workers: int | None = None,
           progress: bool = True, out: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 [N, 3, size, size] decoded now (threads: PIL releases the GIL while decoding and resizing), into ``out``
    when given (e.g. a memory-mapped file), else into a new tensor."""
    if out is None:
        out = torch.empty((len(samples), 3, size, size), dtype=torch.uint8)
    elif tuple(out.shape) != (len(samples), 3, size, size) or out.dtype != torch.uint8:
        raise ValueError(f"out must be uint8 {(len(samples), 3, size, size)}, got {out.dtype} {tuple(out.shape)}")
    workers = workers or min(8, os.cpu_count() or 1)

    def one(i: int) -> None:
        out[i] = to_uint8(ds.open_image(samples[i]), size)

    bar = tqdm(total=len(samples), desc=desc, leave=False, disable=not progress or len(samples) < 256)
    with bar, ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(one, range(len(samples))):
            bar.update()
    return out


def cache_key(ds: Dataset, samples: Sequence[Sample], size: int, fingerprint: str = "content") -> str:
    """sha256 over (dataset, sample list, size, resize rule, every file's fingerprint)."""
    files = hashlib.sha256()
    for s in samples:
        files.update(f"{ds.fingerprint(s, fingerprint)} {s.path}\n".encode())
    meta = {"v": VERSION, "dataset": ds.name, "size": int(size), "resize": RESIZE_RULE,
            "samples": samples_sha256(samples), "files": files.hexdigest(), "fingerprint": fingerprint}
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()


def cache_path(ds: Dataset, samples: Sequence[Sample], size: int, key: str, cache_dir: Path | None = None) -> Path:
    """The raw pixel file of a cache; its metadata is the ``.json`` beside it (:func:`meta_path`)."""
    base = locations.cache_dir(cache_dir) if cache_dir is not None else ds.cache_dir
    return base / "tensors" / ds.name / f"{size}px-{samples_sha256(samples)[:16]}-{key[:24]}.u8"


def meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _map(path: Path, n: int, size: int) -> torch.Tensor:
    """A copy-on-write mapping of the raw pixel file: nothing is read until a batch is used."""
    return torch.from_numpy(np.memmap(path, dtype=np.uint8, mode="c", shape=(n, 3, size, size)))


def _load(path: Path, key: str, n: int, size: int) -> torch.Tensor | None:
    try:
        meta = json.loads(meta_path(path).read_text())
    except (OSError, ValueError) as err:  # a missing, truncated or foreign file is just rebuilt
        log.warning("tensor cache %s has no readable metadata (%s); rebuilding it", path, err)
        return None
    want = n * 3 * size * size
    if not isinstance(meta, dict) or meta.get("key") != key or meta.get("shape") != [n, 3, size, size] \
            or meta.get("dtype") != "uint8" or path.stat().st_size != want:
        log.warning("tensor cache %s does not match its key, shape or size; rebuilding it", path)
        return None
    return _map(path, n, size)


def cached_images(ds: Dataset, samples: Sequence[Sample], size: int, *, desc: str = "decode",
                  cache_dir: str | os.PathLike[str] | None = None, fingerprint: str = "content",
                  workers: int | None = None, progress: bool = True) -> torch.Tensor:
    """uint8 [N, 3, size, size] for ``samples``: from the on-disk cache when its key matches, else decoded and saved."""
    return _cached(ds, list(samples), size, desc, cache_dir, fingerprint, workers, progress)[0]


def _cached(ds: Dataset, samples: list[Sample], size: int, desc: str, cache_dir, fingerprint: str,
            workers: int | None, progress: bool) -> tuple[torch.Tensor, Path | None]:
    if not ds.on_disk:
        return decode(ds, samples, size, desc, workers, progress), None
    if not samples:
        return torch.empty((0, 3, size, size), dtype=torch.uint8), None
    key = cache_key(ds, samples, size, fingerprint)
    path = cache_path(ds, samples, size, key, Path(cache_dir) if cache_dir is not None else None)
    if path.is_file():
        images = _load(path, key, len(samples), size)
        if images is not None:
            return images, path
    try:
        _build(path, key, ds, samples, size, desc, workers, progress)
    except OSError as err:
        log.warning("could not write the tensor cache %s (%s); decoding into memory instead", path, err)
        return decode(ds, samples, size, desc, workers, progress), None
    return _map(path, len(samples), size), path


def _atomic_tmp(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def _build(path: Path, key: str, ds: Dataset, samples: Sequence[Sample], size: int, desc: str,
           workers: int | None, progress: bool) -> None:
    """Decode ``samples`` straight into a new memory-mapped pixel file, then write its metadata; both atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(samples)
    tmp = _atomic_tmp(path)
    try:
        pixels = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=(n, 3, size, size))
        decode(ds, samples, size, desc, workers, progress, out=torch.from_numpy(pixels))
        pixels.flush()
        del pixels
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    index = {d: i for i, d in enumerate(ds.domains)}
    meta = {"key": key, "dataset": ds.name, "version": VERSION, "shape": [n, 3, size, size], "dtype": "uint8",
            "labels": [s.label for s in samples], "domains": [index[s.domain] for s in samples]}
    tmp = _atomic_tmp(meta_path(path))
    try:
        tmp.write_text(json.dumps(meta))
        os.chmod(tmp, 0o644)
        os.replace(tmp, meta_path(path))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    prefix = path.name.rsplit("-", 1)[0] + "-"  # same list and size, older key (or format): stale, never reused
    for old in path.parent.glob(f"{prefix}*"):
        if old.suffix in (".pt", ".u8", ".json") and old not in (path, meta_path(path)):
            old.unlink(missing_ok=True)


def cached_labels(path: Path) -> tuple[list[int], list[int]]:
    """(labels, domain indices) recorded with the cache at ``path`` (as :func:`build_cache` returns it)."""
    meta = json.loads(meta_path(path).read_text())
    return meta["labels"], meta["domains"]


def build_cache(ds: Dataset, split: str, size: int, *, shots: int | None = None, seed: int = 1,
                cache_dir: str | os.PathLike[str] | None = None, fingerprint: str = "content",
                progress: bool = True) -> tuple[Path | None, int]:
    """Build the cache for a split ("train", "test") or a few-shot set (``shots``); returns (path, n images)."""
    if shots is not None:
        samples, desc = ds.few_shot(shots, seed), f"{ds.name} k{shots} s{seed}"
    elif split in ("train", "test"):
        samples, desc = ds.samples(split), f"{ds.name} {split}"
    else:
        raise DataError(f"split must be train or test (or give shots), not {split!r}")
    images, path = _cached(ds, samples, size, desc, cache_dir, fingerprint, None, progress)
    return path, len(images)
