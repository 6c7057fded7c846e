"""Decode + resize a sample list once into a uint8 tensor [N, 3, S, S] on disk, so training is not bound by JPEG.

The file is keyed by (dataset, the exact sample list, resolution, resize rule, and a fingerprint of every file's
bytes), so a changed, added or removed image gives a new key: a stale cache is never reused. Fingerprints are the
sha256 of each file by default (reading is far cheaper than decoding); ``fingerprint="stat"`` uses size + mtime for
very large sets. Files are written atomically (temporary file + rename) under
``<cache dir>/tensors/<dataset>/`` and loaded memory-mapped. Older caches of the same list and size are removed
when a new one is written. In-process datasets (``synthetic``) are decoded without touching the disk.

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

VERSION = 1
RESIZE_RULE = "torchvision resize(shorter side, bicubic, antialias) + center_crop"


def to_uint8(image: Image.Image, size: int) -> torch.Tensor:
    image = TF.resize(image.convert("RGB"), size, interpolation=InterpolationMode.BICUBIC)
    return TF.pil_to_tensor(TF.center_crop(image, size))


def decode(ds: Dataset, samples: Sequence[Sample], size: int, desc: str = "decode", workers: int | None = None,
           progress: bool = True) -> torch.Tensor:
    """uint8 [N, 3, size, size] decoded now (threads: PIL releases the GIL while decoding and resizing)."""
    out = torch.empty((len(samples), 3, size, size), dtype=torch.uint8)
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
    base = locations.cache_dir(cache_dir) if cache_dir is not None else ds.cache_dir
    return base / "tensors" / ds.name / f"{size}px-{samples_sha256(samples)[:16]}-{key[:24]}.pt"


def _load(path: Path, key: str, n: int, size: int) -> torch.Tensor | None:
    try:
        obj = torch.load(path, mmap=True, weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file is just rebuilt
        log.warning("tensor cache %s is unreadable (%s); rebuilding it", path, err)
        return None
    images = obj.get("images") if isinstance(obj, dict) else None
    if obj.get("key") != key or images is None or tuple(images.shape) != (n, 3, size, size) \
            or images.dtype != torch.uint8:
        log.warning("tensor cache %s does not match its key or shape; rebuilding it", path)
        return None
    return images


def cached_images(ds: Dataset, samples: Sequence[Sample], size: int, *, desc: str = "decode",
                  cache_dir: str | os.PathLike[str] | None = None, fingerprint: str = "content",
                  workers: int | None = None, progress: bool = True) -> torch.Tensor:
    """uint8 [N, 3, size, size] for ``samples``: from the on-disk cache when its key matches, else decoded and saved."""
    return _cached(ds, list(samples), size, desc, cache_dir, fingerprint, workers, progress)[0]


def _cached(ds: Dataset, samples: list[Sample], size: int, desc: str, cache_dir, fingerprint: str,
            workers: int | None, progress: bool) -> tuple[torch.Tensor, Path | None]:
    if not ds.on_disk:
        return decode(ds, samples, size, desc, workers, progress), None
    key = cache_key(ds, samples, size, fingerprint)
    path = cache_path(ds, samples, size, key, Path(cache_dir) if cache_dir is not None else None)
    if path.is_file():
        images = _load(path, key, len(samples), size)
        if images is not None:
            return images, path
    images = decode(ds, samples, size, desc, workers, progress)
    try:
        _save(path, key, ds, samples, images)
    except OSError as err:
        log.warning("could not write the tensor cache %s (%s); using the decoded images from memory", path, err)
        return images, None
    return images, path


def _save(path: Path, key: str, ds: Dataset, samples: Sequence[Sample], images: torch.Tensor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    index = {d: i for i, d in enumerate(ds.domains)}
    obj = {"key": key, "dataset": ds.name, "images": images,
           "labels": torch.tensor([s.label for s in samples], dtype=torch.int64),
           "domains": torch.tensor([index[s.domain] for s in samples], dtype=torch.int64)}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    prefix = path.name.rsplit("-", 1)[0] + "-"  # same list and size, older key: stale, never reused
    for old in path.parent.glob(f"{prefix}*.pt"):
        if old != path:
            old.unlink(missing_ok=True)


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
