"""Frozen CLIP image features, computed once and kept on disk under a key that cannot go stale.

Methods that train on top of a frozen image encoder (LP++, BBF) need the features of the few-shot images only once.
The key hashes everything the numbers depend on:

- the weights: ``clip.adu_weights["sha256"]`` (a file hash or a fixed release tag), or a hash of the image tower's
  tensors for random weights, which have no identity of their own;
- the input: the exact uint8 image tensor (so the dataset content and manifest, the sample list and its order, the
  image size and the decoding), plus the normalisation mean/std;
- the views: how many, the crop-scale range and the seed of the augmentation that made them;
- the numerics: autocast dtype, device type, and the torch/open_clip versions.

Hashing the decoded images costs ~1 s per GB, a small fraction of encoding them. Files are written atomically; a
file that cannot be read back is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F

from .pipeline import normalize, random_resized_crop_flip

FORMAT = "adu-features/1"  # bump when what is stored changes


def weights_identity(clip: torch.nn.Module) -> str:
    sha = (getattr(clip, "adu_weights", None) or {}).get("sha256")
    if sha:
        return str(sha)
    h = hashlib.sha256()
    for name, tensor in clip.visual.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return "state:" + h.hexdigest()


def tensor_digest(x: torch.Tensor) -> str:
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{tuple(x.shape)}{x.dtype}".encode())
    h.update(x.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def features_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    from .data.locations import cache_dir as default_cache_dir

    return default_cache_dir(cache_dir) / "features"


@torch.no_grad()
def encode_views(clip: torch.nn.Module, images: torch.Tensor, mean: Sequence[float], std: Sequence[float], *,
                 views: int, crop_scale: tuple[float, float], seed: int, device: torch.device,
                 autocast_dtype: torch.dtype | None, batch_size: int = 256) -> torch.Tensor:
    """L2-normalised features [V, N, E] (float32, CPU). ``views=0``: one un-augmented (centre-crop) view."""
    clip.eval()
    out = []
    for view in range(max(views, 1)):
        gen = torch.Generator(device=device).manual_seed(seed * 1_000_003 + view)
        feats = []
        for start in range(0, len(images), batch_size):
            x = normalize(images[start:start + batch_size].to(device), mean, std)
            if views > 0:
                x = random_resized_crop_flip(x, gen, crop_scale)
            with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                                enabled=autocast_dtype is not None):
                feats.append(F.normalize(clip.encode_image(x).float(), dim=-1).cpu())
        out.append(torch.cat(feats))
    return torch.stack(out)


def cached_features(clip: torch.nn.Module, images: torch.Tensor, mean: Sequence[float], std: Sequence[float], *,
                    views: int = 0, crop_scale: tuple[float, float] = (0.5, 1.0), seed: int = 0,
                    device: torch.device | str = "cpu", autocast_dtype: torch.dtype | None = None,
                    batch_size: int = 256, cache_dir: str | os.PathLike | None = None,
                    use_cache: bool = True) -> torch.Tensor:
    """:func:`encode_views` through the disk cache (``<cache dir>/features/<key>.pt``)."""
    device = torch.device(device)
    if views == 0:  # un-augmented: the augmentation settings do not enter the numbers
        crop_scale, seed = (1.0, 1.0), 0
    key_parts = {
        "format": FORMAT, "weights": weights_identity(clip), "images": tensor_digest(images),
        "mean": [float(m) for m in mean], "std": [float(s) for s in std], "views": int(views),
        "crop_scale": [float(c) for c in crop_scale], "seed": int(seed), "autocast": str(autocast_dtype),
        "device": device.type, "torch": str(torch.__version__), "open_clip": str(open_clip.__version__),
    }
    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()[:32]
    path = features_dir(cache_dir) / f"{key}.pt"
    if use_cache and path.is_file():
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            if stored.get("key_parts") == key_parts:
                return stored["features"]
        except Exception:  # noqa: BLE001 - a truncated or foreign file is simply recomputed
            pass
    feats = encode_views(clip, images, mean, std, views=views, crop_scale=crop_scale, seed=seed, device=device,
                         autocast_dtype=autocast_dtype, batch_size=batch_size)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save({"key_parts": key_parts, "features": feats}, tmp)
        os.replace(tmp, path)
    return feats
