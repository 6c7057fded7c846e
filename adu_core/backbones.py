"""CLIP backbones through open_clip: one factory returning model, transforms and tokenizer.

``pretrained`` is ``None`` (random init), an open_clip tag (``"openai"``), or a path to a local checkpoint:
either an open_clip state dict for a named architecture, or a self-describing ``adu-clip`` checkpoint
(architecture + weights + preprocessing in one file, as the testbed pretraining script writes).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import os
import socket
from pathlib import Path
from typing import Any, NamedTuple

import open_clip
import torch
from torch import nn
from torchvision import transforms as T

from .paths import resolve_path

CHECKPOINT_FORMAT = "adu-clip/1"
_CONFIG_DIR = Path(__file__).parent / "model_configs"
open_clip.add_model_config(_CONFIG_DIR)  # project configs (adu-tiny, ...) become open_clip names


class BackboneError(RuntimeError):
    """Unknown model/tag, weights that cannot be obtained offline, or a checkpoint that does not fit."""


class LoadedCLIP(NamedTuple):
    model: open_clip.CLIP
    train_transform: T.Compose
    eval_transform: T.Compose
    tokenizer: Any


def load_clip(
    name: str,
    pretrained: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    cache_dir: str | None = None,
    train_crop_scale: tuple[float, float] = (0.08, 1.0),
) -> LoadedCLIP:
    """Build a CLIP model and its transforms.

    ``name`` is any open_clip architecture (``ViT-B-16``) or a project config (``adu-tiny``); it is ignored for
    self-describing ``adu-clip`` checkpoints. The frozen model is returned in eval mode; ``model.adu_weights``
    records what was loaded (name, pretrained, sha256) for run provenance.
    ``train_crop_scale``: RandomResizedCrop scale; (0.08, 1) is Dassl's default, which CoOp-family trainers use.
    """
    path = resolve_path(pretrained) if pretrained is not None and looks_like_path(pretrained) else None
    if path is not None:
        model, mean, std, context_length, name = _load_checkpoint(name, path)
        sha = file_sha256(path)
    else:
        model, mean, std, context_length = _create(name, pretrained, cache_dir)
        # Random weights are identified by their content (they depend on the torch seed at creation).
        sha = state_sha256(model) if pretrained is None else _tag_sha256(name, str(pretrained), cache_dir)
    model = model.to(device).eval()
    model.visual.preprocess_cfg = {**getattr(model.visual, "preprocess_cfg", {}), "mean": tuple(mean), "std": tuple(std)}
    model.adu_weights = {"name": name, "pretrained": None if pretrained is None else str(pretrained), "sha256": sha}
    size = _image_size(model)
    normalize = T.Normalize(mean, std)
    train_tf = T.Compose([
        T.RandomResizedCrop(size, scale=train_crop_scale, interpolation=T.InterpolationMode.BICUBIC),
        T.RandomHorizontalFlip(),
        T.Lambda(_to_rgb),
        T.ToTensor(),
        normalize,
    ])
    eval_tf = T.Compose([
        T.Resize(size, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(size),
        T.Lambda(_to_rgb),
        T.ToTensor(),
        normalize,
    ])
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=context_length)
    return LoadedCLIP(model, train_tf, eval_tf, tokenizer)


def save_checkpoint(model: open_clip.CLIP, model_cfg: dict, path: str | os.PathLike, *, half: bool = True,
                    mean: tuple[float, ...] = open_clip.OPENAI_DATASET_MEAN,
                    std: tuple[float, ...] = open_clip.OPENAI_DATASET_STD, extra: dict | None = None) -> str:
    """Write a self-describing ``adu-clip`` checkpoint atomically; returns its sha256.

    ``half`` stores fp16 weights (the loader casts back to fp32), halving the file for committed testbed models.
    """
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    payload = {"format": CHECKPOINT_FORMAT, "model_cfg": model_cfg, "state_dict": state,
               "image_mean": list(mean), "image_std": list(std), "extra": extra or {}}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return file_sha256(path)


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def state_sha256(model: nn.Module) -> str:
    h = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def model_config(name: str) -> dict:
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise BackboneError(f"unknown architecture {name!r}; open_clip knows: {', '.join(open_clip.list_models())}")
    return copy.deepcopy(cfg)


# ---------------------------------------------------------------------------------------------------------------


def looks_like_path(pretrained: str | os.PathLike) -> bool:
    """True when ``pretrained`` names a checkpoint file rather than an open_clip tag such as ``openai``."""
    s = str(pretrained)
    return isinstance(pretrained, os.PathLike) or os.sep in s or s.endswith((".pt", ".pth", ".bin", ".safetensors"))


def _to_rgb(img):
    return img.convert("RGB") if hasattr(img, "convert") else img


def _image_size(model: open_clip.CLIP) -> int:
    size = model.visual.image_size
    return int(size[0] if isinstance(size, tuple | list) else size)


def _create(name: str, tag: str | None, cache_dir: str | None) -> tuple[nn.Module, Any, Any, int]:
    cfg = model_config(name)
    force_quick_gelu = False
    if tag is not None:
        tag_cfg = open_clip.get_pretrained_cfg(name, tag)
        if not tag_cfg:
            known = open_clip.list_pretrained_tags_by_model(name)
            raise BackboneError(
                f"unknown pretrained tag {tag!r} for {name!r}; known tags: {', '.join(known) or 'none'} "
                "(or pass the path of a local checkpoint)")
        # OpenAI's weights were trained with QuickGELU; open_clip's plain configs use nn.GELU.
        force_quick_gelu = bool(tag_cfg.get("quick_gelu", False)) and not cfg.get("quick_gelu", False)
        if not _tag_cached(tag_cfg, cache_dir) and not _hub_reachable():
            raise BackboneError(
                f"pretrained weights {name}/{tag} are not in the local cache and the hub cannot be reached "
                "(offline?). Download them once on a machine with internet, e.g. "
                f"`python -c \"import open_clip; open_clip.create_model('{name}', pretrained='{tag}')\"`, and copy "
                "~/.cache/huggingface (or ~/.cache/clip) here, or pass a local checkpoint path as `pretrained`.")
    try:
        with _quiet_open_clip():  # random init is intended here, not worth open_clip's warning
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=tag, force_quick_gelu=force_quick_gelu, cache_dir=cache_dir)
    except RuntimeError as err:
        raise BackboneError(f"could not create {name!r} with pretrained={tag!r}: {err}") from err
    norm = next(t for t in preprocess.transforms if isinstance(t, T.Normalize))
    return model, tuple(norm.mean), tuple(norm.std), cfg["text_cfg"].get("context_length", 77)


@contextlib.contextmanager
def _quiet_open_clip():
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def _load_checkpoint(name: str, path: Path) -> tuple[nn.Module, Any, Any, int, str]:
    if not path.is_file():
        raise BackboneError(f"checkpoint {path} does not exist; pass an open_clip tag or an existing file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise BackboneError(f"{path} is not a readable torch checkpoint ({err})") from err
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        cfg = payload["model_cfg"]
        model = open_clip.CLIP(**{k: v for k, v in cfg.items() if k != "name"})
        state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
        _load_state(model, state, path, cfg.get("name", "adu-clip checkpoint"))
        return (model, tuple(payload["image_mean"]), tuple(payload["image_std"]),
                cfg["text_cfg"].get("context_length", 77), cfg.get("name", path.stem))
    cfg = model_config(name)
    with _quiet_open_clip():
        model = open_clip.create_model(name, pretrained=None, force_quick_gelu=cfg.get("quick_gelu", False))
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else payload
    state = {k.removeprefix("module."): v for k, v in state.items()}
    _load_state(model, state, path, name)
    return model, open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD, cfg["text_cfg"].get(
        "context_length", 77), name


def _load_state(model: nn.Module, state: dict, path: Path, name: str) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        details = "; ".join(filter(None, [
            f"missing {len(missing)} keys (e.g. {missing[:3]})" if missing else "",
            f"unexpected {len(unexpected)} keys (e.g. {unexpected[:3]})" if unexpected else "",
            f"shape mismatch: {wrong[:3]}" if wrong else "",
        ]))
        raise BackboneError(f"checkpoint {path} does not match architecture {name!r}: {details}. "
                            "Pass the architecture the checkpoint was trained with.")
    model.load_state_dict(state)


def _tag_cached(tag_cfg: dict, cache_dir: str | None) -> bool:
    hub = tag_cfg.get("hf_hub", "")
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return False
        repo_id = "/".join(hub.rstrip("/").split("/")[:2])
        for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
            if isinstance(try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir), str):
                return True
    url = tag_cfg.get("url", "")
    if url:
        target = Path(cache_dir or Path.home() / ".cache" / "clip") / os.path.basename(url)
        return target.is_file()
    return False


def _tag_sha256(name: str, tag: str, cache_dir: str | None) -> str:
    # The tag names fixed, checksummed release weights; hashing GBs at every load is not worth it.
    return f"tag:{name}/{tag}"


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except Exception:  # noqa: BLE001 - DNS failure, refusal, timeout, or a test's network guard
        return False
