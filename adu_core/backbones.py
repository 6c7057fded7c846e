"""CLIP backbones through open_clip: one factory returning model, transforms and tokenizer.

``pretrained`` is ``None`` or ``"random"`` (random init: a plumbing check, recorded as ``random`` in run.json), an
open_clip tag (``"openai"``), or a path to a local checkpoint: OpenAI's own release file (TorchScript), an open_clip
state dict for a named architecture, or a self-describing ``adu-clip`` checkpoint (architecture + weights +
preprocessing in one file, as the testbed pretraining script writes).

**Activation of a local checkpoint.** OpenAI's CLIP weights (and MetaCLIP's, DFN's) were trained with QuickGELU;
open_clip's plain configs (``ViT-B-16``) build GELU, and LAION's or DataComp's weights need GELU. The tag path gets
this from open_clip's table; a file does not say it, and the wrong activation runs without any error. So a file's
activation is taken, in this order, from: the name asked for (``ViT-B-16-quickgelu``, or ``ViT-B-16-gelu``, a
spelling of this project for GELU); OpenAI's release format (a TorchScript archive, or a state dict with OpenAI's
``input_resolution``/``context_length``/``vocab_size`` entries); the file's sha256 matching the checksum in a release
URL of open_clip's table; a Hugging Face cache path naming a repository of that table; an ``open_clip_config.json``
beside the file. If none of these tells, and open_clip knows releases of that architecture with both activations,
loading stops with one line that says how to name it. ``model.adu_weights`` records the architecture really built
(layers, width, patch, activation) and where its activation came from.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import os
import socket
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import open_clip
import torch
from torch import nn
from torchvision import transforms as T

from .paths import resolve_path

CHECKPOINT_FORMAT = "adu-clip/1"
RANDOM = "random"  # pretrained="random": random weights, named so that a run's record cannot hide it
GELU_SUFFIX = "-gelu"  # ViT-B-16-gelu: this project's spelling of "GELU, whatever the weights file"
OPENAI_STATE_KEYS = ("input_resolution", "context_length", "vocab_size")  # entries only OpenAI's model state has
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
    records what was loaded (the architecture built, pretrained, sha256, random or not) for run provenance.
    ``train_crop_scale``: RandomResizedCrop scale; (0.08, 1) is Dassl's default, which CoOp-family trainers use.
    """
    random_init = pretrained is None or str(pretrained) == RANDOM
    path = resolve_path(pretrained) if not random_init and looks_like_path(pretrained) else None
    asked = name
    activation_source = "the architecture's config"
    if path is not None:
        if not path.is_file():
            raise BackboneError(f"checkpoint {path} does not exist; pass an open_clip tag or an existing file")
        sha = file_sha256(path)
        model, mean, std, context_length, name, activation_source = _load_checkpoint(name, path, sha)
    else:
        tag = None if random_init else str(pretrained)
        model, mean, std, context_length = _create(name, tag, cache_dir)
        # Random weights are identified by their content (they depend on the torch seed at creation).
        sha = state_sha256(model) if random_init else _tag_sha256(name, tag, cache_dir)
        if tag is not None:
            activation_source = f"open_clip's table for {name}/{tag}"
    model = model.to(device).eval()
    model.visual.preprocess_cfg = {**getattr(model.visual, "preprocess_cfg", {}), "mean": tuple(mean), "std": tuple(std)}
    model.adu_weights = {"name": name, "pretrained": None if pretrained is None else str(pretrained), "sha256": sha,
                         "random": random_init, "architecture": describe_architecture(model),
                         "activation_source": activation_source}
    if name != asked:
        model.adu_weights["asked"] = asked
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


def split_activation(name: str) -> tuple[str, bool | None]:
    """(the open_clip config to build, QuickGELU forced on/off by the name or None): ``<arch>-quickgelu`` and
    ``<arch>-gelu`` name ``<arch>`` with that activation where open_clip has no config of that exact name."""
    if open_clip.get_model_config(name) is not None:
        return name, None
    for suffix, quick in (("-quickgelu", True), (GELU_SUFFIX, False)):
        base = name.removesuffix(suffix)
        if base != name and open_clip.get_model_config(base) is not None:
            return base, quick
    return name, None


def model_config(name: str) -> dict:
    """open_clip's config of ``name``, with the activation its suffix names (:func:`split_activation`)."""
    base, quick = split_activation(name)
    cfg = open_clip.get_model_config(base)
    if cfg is None:
        raise BackboneError(f"unknown architecture {name!r}; open_clip knows: {', '.join(open_clip.list_models())}")
    cfg = copy.deepcopy(cfg)
    if quick is not None:
        cfg["quick_gelu"] = quick
    return cfg


def describe_architecture(model: nn.Module) -> dict[str, Any]:
    """What was built, read from the model itself: run.json names this, not the name that was asked for."""
    visual = model.visual
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    out: dict[str, Any] = {"image_size": _image_size(model)}
    if blocks is not None:
        conv = getattr(visual, "conv1", None)
        out.update(vision_layers=len(blocks), vision_width=int(visual.transformer.width),
                   patch_size=int(conv.kernel_size[0]) if conv is not None else None)
        act = getattr(getattr(blocks[0], "mlp", None), "gelu", None)
        out["activation"] = {"QuickGELU": "quick_gelu", "GELU": "gelu"}.get(type(act).__name__,
                                                                             type(act).__name__)
    text = getattr(getattr(model, "transformer", None), "resblocks", None)
    if text is not None:
        out["text_layers"] = len(text)
    projection = getattr(model, "text_projection", None)
    out["embed_dim"] = int(projection.shape[-1]) if projection is not None else None
    return out


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
    name, forced = split_activation(name)  # open_clip's own name; the activation the suffix asked for
    force_quick_gelu = bool(forced)
    if tag is not None:
        tag_cfg = open_clip.get_pretrained_cfg(name, tag)
        if not tag_cfg:
            known = open_clip.list_pretrained_tags_by_model(name)
            raise BackboneError(
                f"unknown pretrained tag {tag!r} for {name!r}; known tags: {', '.join(known) or 'none'} "
                "(or pass the path of a local checkpoint)")
        # OpenAI's weights were trained with QuickGELU; open_clip's plain configs use nn.GELU.
        if forced is None:
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


def _load_checkpoint(name: str, path: Path, sha256: str) -> tuple[nn.Module, Any, Any, int, str, str]:
    """(model, mean, std, context length, the architecture built, where its activation came from) of a file."""
    if not path.is_file():
        raise BackboneError(f"checkpoint {path} does not exist; pass an open_clip tag or an existing file")
    torchscript = _is_torchscript(path)
    try:
        if torchscript:  # OpenAI's release files (ViT-B-16.pt from openaipublic, ~/.cache/clip) are TorchScript
            with warnings.catch_warnings():  # torch deprecates TorchScript; reading its weights still works
                warnings.simplefilter("ignore", FutureWarning)
                payload = torch.jit.load(str(path), map_location="cpu").state_dict()
        else:
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise BackboneError(f"{path} is not a readable torch checkpoint ({err})") from err
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        cfg = payload["model_cfg"]
        model = open_clip.CLIP(**{k: v for k, v in cfg.items() if k != "name"})
        state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
        _load_state(model, state, path, cfg.get("name", "adu-clip checkpoint"))
        return (model, tuple(payload["image_mean"]), tuple(payload["image_std"]),
                cfg["text_cfg"].get("context_length", 77), cfg.get("name", path.stem), "the adu-clip checkpoint")
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else payload
    state = {k.removeprefix("module."): v for k, v in state.items()}
    quick, source = checkpoint_activation(name, path, state, torchscript, sha256)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items() if k not in OPENAI_STATE_KEYS}
    base = split_activation(name)[0].removesuffix("-quickgelu")
    built = f"{base}-quickgelu" if quick else base  # open_clip's spelling of the two activations
    cfg = model_config(name)
    with _quiet_open_clip():
        model = open_clip.create_model(base, pretrained=None, force_quick_gelu=quick)
    _load_state(model, state, path, name)
    return model, open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD, cfg["text_cfg"].get(
        "context_length", 77), built, source


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive (a zip with compiled code and constants), as OpenAI publishes CLIP's weights."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in zf.namelist())


def _releases(base: str) -> dict[str, tuple[bool, str, str]]:
    """open_clip's releases of architecture ``base``: tag -> (QuickGELU?, url, Hugging Face repository)."""
    out = {}
    for arch in (base, f"{base}-quickgelu"):
        if open_clip.get_model_config(arch) is None:
            continue
        for tag in open_clip.list_pretrained_tags_by_model(arch):
            cfg = open_clip.get_pretrained_cfg(arch, tag) or {}
            quick = bool(cfg.get("quick_gelu", False)) or arch.endswith("-quickgelu")
            out.setdefault(tag, (quick, cfg.get("url", ""), cfg.get("hf_hub", "").strip("/")))
    return out


def _url_checksums(url: str) -> list[str]:
    """The sha256 a release URL carries: OpenAI's ``.../<sha256>/ViT-B-16.pt``, or the first 8 hex digits in
    open_clip's own ``...-00efa78f.pt``."""
    import re

    found = [part for part in url.split("/") if re.fullmatch(r"[0-9a-f]{64}", part)]
    short = re.search(r"-([0-9a-f]{8})\.(?:pt|pth|bin)$", url)
    return found + ([short.group(1)] if short else [])


def checkpoint_activation(name: str, path: Path, state: dict, torchscript: bool = False,
                          sha256: str | None = None) -> tuple[bool, str]:
    """(QuickGELU?, why) for the weights file ``path`` asked for as architecture ``name`` (see the module doc)."""
    import json

    if name.endswith(("-quickgelu", GELU_SUFFIX)):
        return name.endswith("-quickgelu"), f"the name asked for ({name})"
    if model_config(name).get("quick_gelu"):
        return True, f"the architecture's config ({name})"
    if torchscript:
        return True, "OpenAI's release format (a TorchScript archive)"
    if any(k in state for k in OPENAI_STATE_KEYS):
        return True, "OpenAI's state dict (it holds input_resolution/context_length/vocab_size)"
    releases = _releases(name)
    sha = sha256 or file_sha256(path)
    for tag, (quick, url, _) in releases.items():
        if any(sha.startswith(h) for h in _url_checksums(url)):
            return quick, f"its sha256 is the checksum of open_clip's {name}/{tag} release"
    for part in path.resolve().parts:  # a Hugging Face cache: .../models--timm--vit_base_patch16_clip_224.openai/...
        if part.startswith("models--"):
            repo = part.removeprefix("models--").replace("--", "/")
            for tag, (quick, _, hub) in releases.items():
                if hub and hub == repo:
                    return quick, f"its Hugging Face repository {repo} is open_clip's {name}/{tag}"
    beside = path.parent / "open_clip_config.json"
    if beside.is_file():
        try:
            model_cfg = json.loads(beside.read_text()).get("model_cfg", {})
        except (OSError, ValueError):
            model_cfg = {}
        if "quick_gelu" in model_cfg:
            return bool(model_cfg["quick_gelu"]), f"{beside.name} beside the file"
    kinds = {quick for quick, _, _ in releases.values()}
    if len(kinds) == 2:
        def some(quick: bool) -> str:
            tags = [t for t, (q, _, _) in releases.items() if q == quick]
            return ", ".join(tags[:3]) + (f" and {len(tags) - 3} more" if len(tags) > 3 else "")

        raise BackboneError(
            f"cannot tell which activation the {name} weights in {path} need (QuickGELU for {some(True)}; GELU for "
            f"{some(False)}): name it, backbone '{name}-quickgelu' for OpenAI's weights, '{name}{GELU_SUFFIX}' for "
            "GELU ones")
    return False, f"the architecture's config ({name})"


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
