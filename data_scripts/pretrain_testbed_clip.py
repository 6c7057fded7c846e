"""Pretrain the testbed CLIP: a small open_clip ``CLIP`` trained contrastively on the PACS training lists.

    python data_scripts/pretrain_testbed_clip.py --root ../shared/datasets            # the committed model
    python data_scripts/pretrain_testbed_clip.py --root ../shared/datasets --steps 200 --out /tmp/trial --holdout 0.1

The paper's backbone (OpenAI's ViT-B/16) cannot be downloaded here, so the testbed tier uses a CLIP that this script
trains from scratch on 2 CPU cores. It keeps what ADU relies on: a plain open_clip ViT image tower (the prompted ViT
wraps it unchanged), a text tower with open_clip's tokenizer, class recognition across domains with the prompt
"a photo of a {class}.", and knowledge of the domains (style words in the captions).

Recipe (every value is a field of :class:`PretrainConfig`, written to the model card):

- images: the PACS train lists decoded once into a uint8 tensor cache (``adu_core.data.tensor_cache``, under the user
  cache dir) at ``cache_size`` px; each step takes a domain-balanced batch (``pipeline.balanced_batches``), applies a
  random resized crop + flip on the cached tensor (``pipeline.random_resized_crop_flip``) and resizes it to the model
  resolution with antialiasing, so crops keep the detail of the evaluation images.
- captions: every (domain, class) concept is captioned with a style word (``art_painting`` -> "painting", ...) through
  several templates ("a {style} of a {class}.", ...); class-only captions ("a {class}.", "a picture of a {class}.")
  and domain-only captions ("a {style}.") are added. All captions are encoded every step (about 200 short strings).
- loss (image -> text, over the caption set, per template group, so every single template is trained to work alone):
  concept CE over the domain x class captions of a template; class CE among the captions of one style word (for every
  style: the class must win whatever style the prompt names, as "a photo of a {class}." must on sketches); class CE
  over class-only captions; domain CE over domain-only captions; plus the text -> image direction (each caption picks
  its images in the batch, multi-positive: every image of that concept is a positive), making the loss symmetric.
- optimisation: AdamW, linear warm-up + cosine, bf16 autocast on CPUs that have bf16 units (fp32 master weights),
  fixed number of steps. Every random number comes from generators seeded by ``seed``, so a run is reproducible.
- output: a self-describing ``adu-clip/1`` checkpoint (fp16 weights; ``adu_core.backbones.save_checkpoint``), a model
  card (``card.json`` + ``README.md``) with the config, data manifest, code version, hardware, time and the held-out
  zero-shot accuracies (``ds.samples("test")``, i.e. the official crossval lists, never trained on).
"""

from __future__ import annotations

import os

# On a shared 2-core machine a spinning OpenMP thread that waits for its descheduled partner burns the CPU it needs:
# idle threads sleep instead (set before torch loads its OpenMP runtime; the arithmetic is unchanged).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import platform
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from adu_core.backbones import file_sha256, save_checkpoint
from adu_core.data.splits import samples_sha256
from adu_core.pipeline import balanced_batches, normalize, random_resized_crop_flip

MODEL_NAME = "adu-testbed"
MEAN = tuple(open_clip.OPENAI_DATASET_MEAN)
STD = tuple(open_clip.OPENAI_DATASET_STD)
EVAL_TEMPLATE = "a photo of a {}."
# Style words for PACS domains; other datasets fall back to their human-readable domain names.
STYLE_WORDS = {"art_painting": "painting", "cartoon": "cartoon", "photo": "photo", "sketch": "sketch"}
STYLE_TEMPLATES = ("a {s} of a {c}.", "a {s} of the {c}.", "a {s} of a {c}", "a {c} in a {s}.", "a {s} showing a {c}.")
CLASS_TEMPLATES = ("a {c}.", "a picture of a {c}.", "an image of a {c}.", "the {c}.")
DOMAIN_TEMPLATES = ("a {s}.", "a {s} of something.")
DOMAIN_EVAL_TEMPLATE = "a {s} of a {c}."


@dataclass
class PretrainConfig:
    """Everything that defines a pretraining run (saved in the model card)."""

    seed: int = 0
    # architecture (open_clip CLIP)
    embed_dim: int = 256
    image_size: int = 64
    patch_size: int = 8
    vision_width: int = 256
    vision_layers: int = 6
    vision_heads: int = 4
    text_width: int = 128
    text_layers: int = 3
    text_heads: int = 2
    context_length: int = 16
    # data
    cache_size: int = 96  # decoded training images; crops are resized from here to image_size
    crop_scale: tuple[float, float] = (0.35, 1.0)
    color_jitter: float = 0.4  # brightness/contrast/saturation factors drawn from [1 - j, 1 + j] per image (0: off)
    # Style augmentation: with this probability an image is re-rendered in another style (ops below). Its class
    # stays; its domain becomes unknown, so it trains the class terms only. Off in v2: in the recipe trials (card)
    # it moved neither the class/domain variance shares nor accuracy the right way.
    style_prob: float = 0.0
    style_ops: tuple[str, ...] = ("gray", "edges", "posterize", "recolor")
    patch_dropout: float = 0.0  # fraction of patch tokens dropped per image while training (open_clip's; 0: off)
    train_split: str = "pretrain"  # the dataset part the backbone trains on (PACS: adu-pacs-v2 "pretrain")
    holdout: float = 0.0  # fraction of each cell of the train part kept out for recipe trials (0 for the final model)
    # optimisation
    steps: int = 4000
    batch_size: int = 256
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 150
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    ema_decay: float = 0.998  # exponential moving average of the weights, evaluated and saved (0: off)
    bf16: str = "auto"  # auto: bf16 autocast where the CPU/GPU has bf16 units; "on" / "off"
    # loss weights
    w_concept: float = 1.0
    w_style_class: float = 1.0
    w_class: float = 1.0
    w_domain: float = 0.5
    w_t2i: float = 0.5
    eval_every: int = 500  # steps between held-out evaluations in the log only (0: none); weights do not depend on it
    threads: int = 2
    style_templates: tuple[str, ...] = STYLE_TEMPLATES
    class_templates: tuple[str, ...] = CLASS_TEMPLATES
    domain_templates: tuple[str, ...] = DOMAIN_TEMPLATES
    style_words: dict = field(default_factory=dict)  # filled from the dataset when empty

    def model_cfg(self) -> dict[str, Any]:
        """The open_clip model config (also committed as adu_core/model_configs/adu-testbed.json)."""
        return {
            "name": MODEL_NAME,
            "embed_dim": self.embed_dim,
            "quick_gelu": False,
            "vision_cfg": {"image_size": self.image_size, "layers": self.vision_layers, "width": self.vision_width,
                           "head_width": self.vision_width // self.vision_heads, "patch_size": self.patch_size},
            "text_cfg": {"context_length": self.context_length, "vocab_size": 49408, "width": self.text_width,
                         "heads": self.text_heads, "layers": self.text_layers},
        }


# ---------------------------------------------------------------------------------------------------------------
# captions


@dataclass
class Captions:
    texts: list[str]
    concept_idx: torch.Tensor  # [Js, D*C] caption index of (template, domain*C + class)
    style_class_idx: torch.Tensor  # [Js, D, C]
    class_idx: torch.Tensor  # [Jc, C]
    domain_idx: torch.Tensor  # [Jd, D]
    cap_domain: torch.Tensor  # [K] domain of caption or -1
    cap_class: torch.Tensor  # [K] class of caption or -1


def style_words_for(ds, given: dict | None = None) -> dict[str, str]:
    given = given or {}
    return {d: given.get(d) or STYLE_WORDS.get(d) or name for d, name in zip(ds.domains, ds.domain_names, strict=True)}


def build_captions(styles: Sequence[str], classnames: Sequence[str], cfg: PretrainConfig) -> Captions:
    texts: list[str] = []
    dom: list[int] = []
    cls: list[int] = []

    def add(text: str, d: int, c: int) -> int:
        texts.append(text)
        dom.append(d)
        cls.append(c)
        return len(texts) - 1

    D, C = len(styles), len(classnames)
    style_class = torch.tensor([[[add(t.format(s=s, c=c), d, k) for k, c in enumerate(classnames)]
                                 for d, s in enumerate(styles)] for t in cfg.style_templates], dtype=torch.long)
    class_only = torch.tensor([[add(t.format(c=c), -1, k) for k, c in enumerate(classnames)]
                               for t in cfg.class_templates], dtype=torch.long)
    domain_only = torch.tensor([[add(t.format(s=s), d, -1) for d, s in enumerate(styles)]
                                for t in cfg.domain_templates], dtype=torch.long)
    return Captions(texts, style_class.reshape(len(cfg.style_templates), D * C), style_class, class_only,
                    domain_only, torch.tensor(dom), torch.tensor(cls))


def clip_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor, labels: torch.Tensor,
              domains: torch.Tensor, caps: Captions, cfg: PretrainConfig,
              styled: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """All loss terms from normalised image [B, E] and caption [K, E] embeddings.

    ``styled`` [B] marks re-rendered images (:func:`stylize`): their domain is unknown, so they take part in the
    class terms only (no domain or domain x class target, and no caption that names a style sees them).
    """
    logits = scale * img @ txt.T  # [B, K]
    n_cls = caps.style_class_idx.shape[2]
    concept = domains * n_cls + labels
    known = torch.ones_like(labels, dtype=torch.bool) if styled is None else ~styled
    terms: dict[str, torch.Tensor] = {}

    def ce(group_logits: torch.Tensor, target: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        # group_logits [B, G..., n]; target [B] broadcast over the group dims; rows: which images count
        if rows is not None:
            if not bool(rows.any()):
                return group_logits.sum() * 0.0
            group_logits, target = group_logits[rows], target[rows]
        n = group_logits.shape[-1]
        flat = group_logits.reshape(group_logits.shape[0], -1, n)
        tgt = target[:, None].expand(-1, flat.shape[1])
        return F.cross_entropy(flat.reshape(-1, n), tgt.reshape(-1))

    terms["concept"] = ce(logits[:, caps.concept_idx], concept, known)
    terms["style_class"] = ce(logits[:, caps.style_class_idx], labels)
    terms["class"] = ce(logits[:, caps.class_idx], labels)
    terms["domain"] = ce(logits[:, caps.domain_idx], domains, known)
    # text -> image: every caption chooses among the batch's images; positives = images its text describes.
    # A caption that names a style does not see re-rendered images (their style is neither theirs nor another's).
    visible = known[:, None] | (caps.cap_domain[None] < 0)  # [B, K]
    pos = visible & ((caps.cap_domain[None] < 0) | (caps.cap_domain[None] == domains[:, None])) & \
        ((caps.cap_class[None] < 0) | (caps.cap_class[None] == labels[:, None]))  # [B, K]
    has = pos.any(0)
    lt = logits.T[has].masked_fill(~visible.T[has], float("-inf"))  # [K', B]
    pt = pos.T[has]
    terms["t2i"] = (torch.logsumexp(lt, -1) - torch.logsumexp(lt.masked_fill(~pt, float("-inf")), -1)).mean()
    terms["loss"] = (cfg.w_concept * terms["concept"] + cfg.w_style_class * terms["style_class"]
                     + cfg.w_class * terms["class"] + cfg.w_domain * terms["domain"] + cfg.w_t2i * terms["t2i"])
    return terms


# ---------------------------------------------------------------------------------------------------------------
# training


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def use_bf16(cfg: PretrainConfig, device: torch.device) -> bool:
    if cfg.bf16 in ("on", "off"):
        return cfg.bf16 == "on"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    flags = ""
    with contextlib.suppress(OSError):
        flags = Path("/proc/cpuinfo").read_text()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def build_model(cfg: PretrainConfig) -> open_clip.CLIP:
    """The model to train: ``model_cfg`` plus training-only patch dropout (inactive in eval mode, no weights)."""
    torch.manual_seed(cfg.seed)
    arch = {k: v for k, v in cfg.model_cfg().items() if k != "name"}
    if cfg.patch_dropout:
        arch["vision_cfg"] = {**arch["vision_cfg"], "patch_dropout": cfg.patch_dropout}
    return open_clip.CLIP(**arch)


def lr_at(step: int, cfg: PretrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t))


def make_optimizer(model: torch.nn.Module, cfg: PretrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        # weight decay on matrices only; not on gains, biases, embeddings, positional terms or the logit scale
        if p.ndim >= 2 and "embedding" not in name and "token" not in name:
            decay.append(p)
        else:
            no_decay.append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)


def color_jitter(x: torch.Tensor, gen: torch.Generator, strength: float) -> torch.Tensor:
    """Per-image brightness, contrast and saturation jitter on [0, 1] float images [B, 3, H, W]."""
    f = 1 + strength * (2 * torch.rand((x.shape[0], 3, 1, 1, 1), generator=gen, device=gen.device).to(x.device) - 1)
    x = x * f[:, 0]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * f[:, 1] + mean
    gray = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return ((x - gray) * f[:, 2] + gray).clamp(0, 1)


_LUMA = (0.299, 0.587, 0.114)


def _luma(x: torch.Tensor) -> torch.Tensor:
    return (x * torch.tensor(_LUMA, device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)


def _blur3(x: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([1.0, 2.0, 1.0], device=x.device)
    k = (k[:, None] * k[None]) / 16
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k.expand(x.shape[1], 1, 3, 3), groups=x.shape[1])


def style_gray(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A black-and-white photograph of the same picture."""
    return _luma(x).expand(-1, 3, -1, -1)


def style_edges(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A line drawing: dark Sobel edges of the smoothed luminance on white (what a sketch keeps of a picture)."""
    y = _blur3(_luma(x))
    sx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device)
    g = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), torch.stack([sx, sx.T])[:, None])
    mag = g.pow(2).sum(1, keepdim=True).sqrt()
    q = torch.quantile(mag.flatten(1), 0.95, dim=1).clamp(min=1e-3).view(-1, 1, 1, 1)
    return (1 - (mag / q).clamp(0, 1)).expand(-1, 3, -1, -1)


def style_posterize(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A flat-colour cartoon: smoothed, saturated, each channel quantised to 3-5 levels."""
    levels = torch.randint(3, 6, (x.shape[0], 1, 1, 1), generator=gen, device=gen.device).to(x.device).float() - 1
    y = _blur3(x)
    gray = _luma(y)
    y = ((y - gray) * 1.4 + gray).clamp(0, 1)
    return torch.round(y * levels) / levels


def style_recolor(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The picture in other colours: channels permuted and strongly jittered (paintings' palettes vary)."""
    perm = torch.stack([torch.randperm(3, generator=gen, device=gen.device) for _ in range(x.shape[0])]).to(x.device)
    y = torch.gather(x, 1, perm[:, :, None, None].expand_as(x))
    return color_jitter(y, gen, 0.6)


STYLE_OPS = {"gray": style_gray, "edges": style_edges, "posterize": style_posterize, "recolor": style_recolor}


def stylize(x: torch.Tensor, gen: torch.Generator, cfg: PretrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-render a ``style_prob`` share of the [0, 1] images [B, 3, H, W] with one of ``style_ops`` each; returns
    the images and the mask of re-rendered ones."""
    n = x.shape[0]
    u = torch.rand(n, generator=gen, device=gen.device).to(x.device)
    op = torch.randint(len(cfg.style_ops), (n,), generator=gen, device=gen.device).to(x.device)
    styled = u < cfg.style_prob
    if not cfg.style_ops or not cfg.style_prob:
        return x, torch.zeros(n, dtype=torch.bool, device=x.device)
    out = x.clone()
    for k, name in enumerate(cfg.style_ops):
        if name not in STYLE_OPS:
            raise ValueError(f"unknown style op {name!r}; valid: {', '.join(STYLE_OPS)}")
        idx = torch.nonzero(styled & (op == k)).flatten()
        if len(idx):
            out[idx] = STYLE_OPS[name](x[idx], gen)
    return out, styled


def augment(batch: torch.Tensor, gen: torch.Generator, cfg: PretrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 cached images -> (normalised model-size crops, mask of re-rendered images)."""
    x = batch.float() / 255.0
    if cfg.color_jitter:
        x = color_jitter(x, gen, cfg.color_jitter)
    x, styled = stylize(x, gen, cfg)
    x = random_resized_crop_flip(normalize(x, MEAN, STD), gen, tuple(cfg.crop_scale))
    if x.shape[-1] != cfg.image_size:
        x = F.interpolate(x, size=(cfg.image_size, cfg.image_size), mode="bilinear", antialias=True,
                          align_corners=False)
    return x, styled


def train(cfg: PretrainConfig, images: torch.Tensor, labels: torch.Tensor, domains: torch.Tensor,
          styles: Sequence[str], classnames: Sequence[str], device: str | torch.device = "cpu",
          progress: bool = True, eval_fn=None, log=print) -> tuple[open_clip.CLIP, list[dict[str, float]]]:
    """Train from scratch; returns the model (eval mode, fp32) and the per-interval loss history.

    ``images`` uint8 [N, 3, S, S] (S = ``cfg.cache_size``), ``labels`` class indices, ``domains`` domain indices.
    Deterministic for a fixed seed, thread count and device.
    """
    device = torch.device(device)
    seed_everything(cfg.seed)
    model = build_model(cfg).to(device).train()
    caps = build_captions(styles, classnames, cfg)
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=cfg.context_length)
    tokens = tokenizer(caps.texts).to(device)
    caps = Captions(caps.texts, *(getattr(caps, f.name).to(device) for f in dataclasses.fields(Captions)[1:]))
    opt = make_optimizer(model, cfg)
    ema = copy.deepcopy(model).eval().requires_grad_(False) if cfg.ema_decay else None
    bf16 = use_bf16(cfg, device)
    batch_gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 1)
    aug_gen = torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + 2)
    batches: list[torch.Tensor] = []
    history: list[dict[str, float]] = []
    sums: dict[str, float] = {}
    n_sum = 0
    t0, c0 = time.perf_counter(), time.process_time()
    bar = tqdm(range(cfg.steps), desc="pretrain", disable=not progress, mininterval=5)
    log_every = max(1, min(50, cfg.steps // 20))
    for step in bar:
        if not batches:
            batches = balanced_batches(domains, cfg.batch_size, batch_gen)[::-1]
        idx = batches.pop()
        lr = lr_at(step, cfg)
        for g in opt.param_groups:
            g["lr"] = lr
        x, styled = augment(images[idx].to(device), aug_gen, cfg)
        y, d = labels[idx].to(device), domains[idx].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            img = model.encode_image(x)
            txt = model.encode_text(tokens)
        scale = model.logit_scale.exp().clamp(max=100.0)
        terms = clip_loss(F.normalize(img.float(), dim=-1), F.normalize(txt.float(), dim=-1), scale, y, d, caps, cfg,
                          styled)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100.0))
            if ema is not None:  # warm-up: early averages forget the random initialisation quickly
                decay = min(cfg.ema_decay, (1 + step) / (10 + step))
                torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - decay)
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        n_sum += 1
        do_eval = eval_fn is not None and cfg.eval_every > 0 and (step + 1) % cfg.eval_every == 0
        if (step + 1) % log_every == 0 or step + 1 == cfg.steps or do_eval:
            rec = {k: v / n_sum for k, v in sums.items()}
            rec.update(step=step + 1, lr=lr, scale=float(scale.detach()), elapsed_s=time.perf_counter() - t0,
                       cpu_s=time.process_time() - c0)
            if do_eval:
                model.eval()
                rec.update(eval_fn(ema if ema is not None else model))
                model.train()
            history.append(rec)
            bar.set_postfix(loss=f"{rec['loss']:.3f}")
            log(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rec.items()}))
            sums, n_sum = {}, 0
    model.eval()
    return (ema if ema is not None else model), history


# ---------------------------------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def encode_texts(model, tokenizer, texts: Sequence[str], device) -> torch.Tensor:
    return F.normalize(model.encode_text(tokenizer(list(texts)).to(device)).float(), dim=-1)


@torch.no_grad()
def encode_images(model, images: torch.Tensor, device, batch: int = 512) -> torch.Tensor:
    out = []
    for i in range(0, len(images), batch):
        x = normalize(images[i:i + batch].to(device), MEAN, STD)
        out.append(F.normalize(model.encode_image(x).float(), dim=-1).cpu())
    return torch.cat(out)


@torch.no_grad()
def zero_shot_predictions(model, images: torch.Tensor, styles: Sequence[str], classnames: Sequence[str],
                          context_length: int, device="cpu") -> dict[str, torch.Tensor]:
    """Per-image zero-shot predictions (fp32, as the ADU runs use the model).

    ``class``: argmax over "a photo of a {class}."; ``domain_concept``: softmax over the D x C captions
    "a {style} of a {class}.", probabilities summed over classes, argmax domain; ``domain_style``: argmax over
    "a {style}."; ``joint``: argmax (domain * C + class) over the D x C captions.
    """
    tok = open_clip.tokenizer.SimpleTokenizer(context_length=context_length)
    feats = encode_images(model, images, device)
    scale = float(model.logit_scale.exp())
    cls_txt = encode_texts(model, tok, [EVAL_TEMPLATE.format(c) for c in classnames], device).cpu()
    conc_txt = encode_texts(model, tok, [DOMAIN_EVAL_TEMPLATE.format(s=s, c=c) for s in styles for c in classnames],
                            device).cpu()
    style_txt = encode_texts(model, tok, [f"a {s}." for s in styles], device).cpu()
    prob = (scale * feats @ conc_txt.T).softmax(-1).reshape(len(feats), len(styles), len(classnames))
    return {"class": (feats @ cls_txt.T).argmax(-1), "domain_concept": prob.sum(-1).argmax(-1),
            "domain_style": (feats @ style_txt.T).argmax(-1), "joint": prob.reshape(len(feats), -1).argmax(-1)}


def zero_shot_report(model, images: torch.Tensor, labels: torch.Tensor, domains: torch.Tensor,
                     domain_ids: Sequence[str], styles: Sequence[str], classnames: Sequence[str],
                     context_length: int, device="cpu") -> dict[str, Any]:
    """Held-out zero-shot accuracies (%): class per domain and their mean; domain classification (see
    :func:`zero_shot_predictions` for the prompts)."""
    p = zero_shot_predictions(model, images, styles, classnames, context_length, device)
    pred = p["class"]
    per_domain = {d: 100.0 * float((pred[domains == i] == labels[domains == i]).float().mean())
                  for i, d in enumerate(domain_ids)}
    return {
        "class_acc": {k: round(v, 2) for k, v in per_domain.items()},
        "class_acc_mean": round(float(np.mean(list(per_domain.values()))), 2),
        "class_acc_pooled": round(100.0 * float((pred == labels).float().mean()), 2),
        "domain_acc_concept": round(100.0 * float((p["domain_concept"] == domains).float().mean()), 2),
        "domain_acc_style": round(100.0 * float((p["domain_style"] == domains).float().mean()), 2),
        "joint_acc": round(100.0 * float((p["joint"] == domains * len(classnames) + labels).float().mean()), 2),
        "n_test": {d: int((domains == i).sum()) for i, d in enumerate(domain_ids)},
    }


CHECK_PER_DOMAIN = 48


def check_indices(domains: torch.Tensor, per_domain: int = CHECK_PER_DOMAIN) -> list[int]:
    """The fixed subset that the card's ``reproduce_check`` covers: the first ``per_domain`` test images of each
    domain, in list order (a fast test compares its predictions with the card)."""
    out: list[int] = []
    for d in sorted(set(domains.tolist())):
        out += torch.nonzero(domains == d).flatten()[:per_domain].tolist()
    return out


def reproduce_check(model, images: torch.Tensor, domains: torch.Tensor, styles: Sequence[str],
                    classnames: Sequence[str], context_length: int) -> dict[str, Any]:
    idx = check_indices(domains)
    p = zero_shot_predictions(model, images[idx], styles, classnames, context_length)
    return {"rule": f"first {CHECK_PER_DOMAIN} test images of each domain, in list order", "n": len(idx),
            "pred_class": p["class"].tolist(), "pred_domain_concept": p["domain_concept"].tolist()}


# ---------------------------------------------------------------------------------------------------------------
# backbone diagnostics: what a downstream ADU run relies on (the card prints them for v2 and, for comparison, v1)


def variance_shares(feats: torch.Tensor, labels: torch.Tensor, domains: torch.Tensor) -> dict[str, float]:
    """Share of the embedding's total variance explained by the class means and by the domain means (R^2 of a
    one-way grouping: between-group sum of squares / total sum of squares)."""
    centred = feats - feats.mean(0)
    total = float(centred.pow(2).sum())

    def between(groups: torch.Tensor) -> float:
        out = 0.0
        for g in torch.unique(groups):
            sel = centred[groups == g]
            out += len(sel) * float(sel.mean(0).pow(2).sum())
        return out / total

    return {"class": round(between(labels), 3), "domain": round(between(domains), 3)}


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor) -> float:
    """Top-1 % of a logistic-regression probe fitted on frozen embeddings (scikit-learn, L2, C=1)."""
    from sklearn.linear_model import LogisticRegression

    probe = LogisticRegression(C=1.0, max_iter=3000).fit(train_x.numpy(), train_y.numpy())
    return round(100.0 * float((torch.from_numpy(probe.predict(test_x.numpy())) == test_y).float().mean()), 2)


def _se_of_mean(rep: dict[str, Any]) -> float:
    """Standard error (points) of a mean over domains of per-domain accuracies (independent binomials)."""
    acc, n = rep["class_acc"], rep["n_test"]
    return 100 * math.sqrt(sum((a / 100) * (1 - a / 100) / n[d] for d, a in acc.items())) / len(acc)


def backbone_diagnostics(model, ds, styles: Sequence[str], context_length: int, size: int,
                         seeds: Sequence[int] = (1, 2, 3), shots: int = 8) -> dict[str, Any]:
    """Zero-shot accuracy on the downstream test set, on the whole few-shot pool and on each seed's K-shot set (the
    gap shows memorisation), linear probes fitted on the pool and tested on the test set (domain information must
    survive), class/domain variance shares of the test embeddings, and the learned logit scale."""
    test = tensors_for(ds, ds.samples("test"), size, f"{ds.name} test")
    pool = tensors_for(ds, ds.samples("train"), size, f"{ds.name} pool")
    out: dict[str, Any] = {"test": zero_shot_report(model, *test, ds.domains, styles, ds.classnames, context_length),
                           "pool": zero_shot_report(model, *pool, ds.domains, styles, ds.classnames, context_length)}
    few = {}
    for seed in seeds:
        images, labels, domains = tensors_for(ds, ds.few_shot(shots, seed), size, f"{ds.name} k{shots} s{seed}")
        few[str(seed)] = zero_shot_report(model, images, labels, domains, ds.domains, styles, ds.classnames,
                                          context_length)["class_acc_mean"]
    out["few_shot_class_acc_mean"] = few
    mean_few = float(np.mean(list(few.values())))
    out["memorisation_gap"] = {"pool_minus_test": round(out["pool"]["class_acc_mean"]
                                                        - out["test"]["class_acc_mean"], 2),
                               "pool_minus_test_ci95": round(1.96 * math.hypot(_se_of_mean(out["pool"]),
                                                                               _se_of_mean(out["test"])), 2),
                               f"{shots}shot_minus_test": round(mean_few - out["test"]["class_acc_mean"], 2)}
    f_test, f_pool = encode_images(model, test[0], "cpu"), encode_images(model, pool[0], "cpu")
    out["probe"] = {"domain": linear_probe(f_pool, pool[2], f_test, test[2]),
                    "class": linear_probe(f_pool, pool[1], f_test, test[1]),
                    "fit_on": f"few-shot pool ({len(f_pool)} images)", "tested_on": f"test ({len(f_test)} images)"}
    out["variance_share"] = variance_shares(f_test, test[1], test[2])
    out["logit_scale"] = round(float(model.logit_scale.detach().exp()), 2)
    return out


def summarize_trials(ds, trial_dirs: Sequence[Path], styles: Sequence[str]) -> list[dict[str, Any]]:
    """Per recipe trial (a ``--holdout`` run's output folder): its zero-shot accuracy on the holdout, the class and
    domain variance shares of the holdout embeddings, and a linear domain probe (fit on half the holdout, tested on
    the other half). Trials never look at the downstream parts."""
    from adu_core.backbones import load_clip

    rows = []
    for folder in trial_dirs:
        card = json.loads((Path(folder) / "card.json").read_text())
        cfg = card["training_config"]
        _, held = split_holdout(ds.samples(cfg.get("train_split", "train")), cfg["holdout"])
        images, labels, domains = tensors_for(ds, held, cfg["image_size"], f"{ds.name} holdout")
        model = load_clip(MODEL_NAME, pretrained=Path(folder) / "testbed_clip.pt").model
        feats = encode_images(model, images, "cpu")
        half = torch.arange(len(held)) % 2 == 0
        zs = zero_shot_report(model, images, labels, domains, ds.domains, styles, ds.classnames,
                              cfg["context_length"])
        rows.append({
            "name": Path(folder).name, "steps": cfg["steps"], "style_prob": cfg.get("style_prob", 0.0),
            "acc_mean": zs["class_acc_mean"], "class_acc": zs["class_acc"],
            "variance_share": variance_shares(feats, labels, domains),
            "probe_domain": linear_probe(feats[half], domains[half], feats[~half], domains[~half]),
            "n_holdout": len(held), "curve": [(h["step"], h["acc_mean"]) for h in card["history"] if "acc_mean" in h]})
    return rows


def disjointness(ds, parts: Sequence[str] = ("pretrain", "train", "test"),
                 threshold: float | None = None) -> dict[str, Any]:
    """Content overlap between the pretraining part and the downstream parts: sha256 of every file's bytes, and
    near-duplicate pairs (24x24 thumbnail correlation, the split rule's test) across the parts."""
    import numpy as np

    from adu_core.data.make_splits import NEAR_DUP_CORRELATION, _thumbnail
    from adu_core.data.verify import file_digest

    threshold = NEAR_DUP_CORRELATION if threshold is None else threshold
    samples = {p: ds.samples(p) for p in parts}
    digests = {p: {file_digest(ds.image_path(s)) for s in v} for p, v in samples.items()}
    pre, down = parts[0], parts[1:]
    shared = digests[pre] & set().union(*(digests[p] for p in down))
    a = np.stack([_thumbnail(ds.image_path(s)) for s in samples[pre]])
    down_samples = [s for p in down for s in samples[p]]
    b = np.stack([_thumbnail(ds.image_path(s)) for s in down_samples])
    i, j = np.nonzero(a @ b.T >= threshold)
    pairs = [(samples[pre][x].path, down_samples[y].path) for x, y in zip(i.tolist(), j.tolist(), strict=True)]
    same_cell = [pq for pq in pairs if pq[0].rsplit("/", 1)[0] == pq[1].rsplit("/", 1)[0]]
    return {"images": {p: len(v) for p, v in samples.items()},
            "shared_sha256": len(shared),
            "near_duplicate_threshold": threshold,
            "near_duplicate_pairs_across": len(pairs),
            "near_duplicate_pairs_across_same_cell": len(same_cell),
            "near_duplicate_examples": [list(pq) for pq in pairs[:5]]}


# ---------------------------------------------------------------------------------------------------------------
# data, card, main


def split_holdout(samples, fraction: float):
    """Deterministic per-domain hold-out by path hash (recipe trials only)."""
    if fraction <= 0:
        return list(samples), []
    keep, held = [], []
    for s in samples:
        h = int(hashlib.sha256(f"testbed-holdout|{s.path}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (held if h < fraction else keep).append(s)
    return keep, held


def tensors_for(ds, samples, size: int, desc: str):
    from adu_core.data.tensor_cache import cached_images

    images = cached_images(ds, samples, size, desc=desc)
    index = {d: i for i, d in enumerate(ds.domains)}
    labels = torch.tensor([s.label for s in samples], dtype=torch.long)
    domains = torch.tensor([index[s.domain] for s in samples], dtype=torch.long)
    return images, labels, domains


def hardware(device: torch.device) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"device": str(device), "cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "platform": platform.platform()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def code_version(script: Path) -> dict[str, Any]:
    from adu_core.results import git_version, package_versions

    return {**git_version(), "script_sha256": file_sha256(script), "packages": package_versions()}


def plot_curve(history: list[dict[str, float]], path: Path) -> str | None:
    """Zero-shot accuracy (mean and per domain) against steps, from the evaluated points of ``history``."""
    points = [h for h in history if "acc_mean" in h]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=110)
    steps = [h["step"] for h in points]
    for key in sorted(k for k in points[-1] if k.startswith("acc_") and k != "acc_mean"):
        ax.plot(steps, [h[key] for h in points], lw=1, alpha=0.7, label=key.removeprefix("acc_"))
    ax.plot(steps, [h["acc_mean"] for h in points], lw=2.5, color="black", label="mean")
    ax.set(xlabel="step", ylabel="zero-shot top-1 % (test)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=5, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path.name


def write_card(out: Path, card: dict[str, Any]) -> None:
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (out / "README.md").write_text(render_card(card))


def _acc_row(label: str, rep: dict[str, Any] | None, domains: Sequence[str]) -> str:
    if not rep:
        return f"| {label} |" + " – |" * (len(domains) + 1)
    return f"| {label} | " + " | ".join(f"{rep['class_acc'][d]:.2f}" for d in domains) + \
        f" | **{rep['class_acc_mean']:.2f}** |"


MEAN_TARGET, LANDING_FLOOR, DOMAIN_TARGET, GAP_LIMIT, DOMAIN_PROBE_MIN = 65.0, 60.0, 50.0, 3.0, 80.0
WEIGHTS_LIMIT_MB = 25


def target_checks(card: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(target, measured value, met?) for each rule of a testbed backbone (issue 14 / DESIGN.md)."""
    this = card["diagnostics"]["this"]
    acc = this["test"]["class_acc"]
    mean = this["test"]["class_acc_mean"]
    gap = this["memorisation_gap"]["pool_minus_test"]
    rows = [(f"mean zero-shot class accuracy on test >= {MEAN_TARGET:.0f} %", f"{mean:.2f}", mean >= MEAN_TARGET),
            (f"landing floor: mean >= {LANDING_FLOOR:.0f} %", f"{mean:.2f}", mean >= LANDING_FLOOR)]
    rows += [(f"{d} >= {DOMAIN_TARGET:.0f} %", f"{a:.2f}", a >= DOMAIN_TARGET) for d, a in acc.items()]
    rows += [(f"pool − test within ±{GAP_LIMIT:.0f} points (no memorisation)", f"{gap:+.2f}", abs(gap) <= GAP_LIMIT),
             (f"linear domain probe >= {DOMAIN_PROBE_MIN:.0f} %", f"{this['probe']['domain']:.2f}",
              this["probe"]["domain"] >= DOMAIN_PROBE_MIN),
             ("files shared by pretrain and the downstream parts (sha256) = 0",
              str(card["disjointness"]["shared_sha256"]), card["disjointness"]["shared_sha256"] == 0),
             (f"weights <= {WEIGHTS_LIMIT_MB} MB", f"{card['checkpoint']['bytes'] / 1e6:.1f} MB",
              card["checkpoint"]["bytes"] <= WEIGHTS_LIMIT_MB * 1e6)]
    return rows


def render_card(card: dict[str, Any]) -> str:
    cfg, ev, arch = card["training_config"], card["zero_shot"], card["architecture"]
    v, t = arch["vision_cfg"], arch["text_cfg"]
    hw, data = card["hardware"], card["data"]
    diag = card.get("diagnostics", {})
    new, old = diag.get("this"), diag.get("v1")
    domains = list(ev["class_acc"])
    head = "| model | " + " | ".join(domains) + " | mean |\n|---|" + "---|" * (len(domains) + 1)
    sections = [f"""# Testbed CLIP (`{MODEL_NAME}`), {card.get('version', 'v1')}

A small CLIP of open_clip architecture, trained from scratch by `data_scripts/pretrain_testbed_clip.py` on the
`{data['train_split']}` part of PACS, so that the offline `testbed` tier has a backbone without downloading anything.
It has never seen an image of the downstream parts (the few-shot pool `train` and the `test` set) that ADU runs
fine-tune and evaluate on. It is **not** a general-purpose model: it knows 7 classes and 4 styles.

    from adu_core.backbones import load_clip
    clip, train_tf, eval_tf, tokenizer = load_clip("{MODEL_NAME}", pretrained="models/testbed/testbed_clip.pt")
"""]
    dj = card.get("disjointness")
    if dj:
        ex = "; ".join(f"`{a}` ~ `{b}`" for a, b in dj["near_duplicate_examples"]) or "none"
        sections.append(f"""## Disjoint data
PACS is split by the committed rule `adu-pacs-v2` (`adu_core/splits/pacs/index.json`; per (domain, class): about
67 % pretrain, 20 images to the few-shot pool, the rest test; near-duplicates kept together):

| part | images | used for |
|---|---|---|
| pretrain | {dj['images']['pretrain']:,} | this model |
| train | {dj['images']['train']:,} | few-shot sets of the ADU runs (K <= 16 per class and domain) |
| test | {dj['images']['test']:,} | every metric of the ADU runs |

- **Files with identical bytes in pretrain and in train/test: {dj['shared_sha256']}** (sha256 of every file; a test
  recomputes it).
- Near-duplicate pairs across the parts (24x24 thumbnail correlation >= {dj['near_duplicate_threshold']}):
  {dj['near_duplicate_pairs_across']}, of which {dj['near_duplicate_pairs_across_same_cell']} in the same
  (domain, class): {ex}.
""")
    sections.append(f"""## Architecture
- image tower: plain open_clip ViT, {v['image_size']} px, patch {v['patch_size']} ({(v['image_size'] // v['patch_size']) ** 2} tokens + class token),
  width {v['width']}, {v['layers']} blocks, {v['width'] // v['head_width']} heads; embedding {arch['embed_dim']}
- text tower: open_clip text transformer, width {t['width']}, {t['layers']} blocks, {t['heads']} heads, context {t['context_length']},
  open_clip's tokenizer (vocabulary 49,408)
- `adu_core/model_configs/{MODEL_NAME}.json` holds the same config, so `{MODEL_NAME}` is an open_clip name too
- file: `testbed_clip.pt`, {card['checkpoint']['bytes'] / 1e6:.1f} MB (fp16 weights), sha256 `{card['checkpoint']['sha256']}`
- preprocessing: resize the shorter side to {v['image_size']} (bicubic), centre crop, OpenAI CLIP mean/std

## Training
- data: PACS `{data['train_split']}` ({data['n_train']:,} images, list sha256 `{data.get('train_list_sha256', '?')[:16]}…`)
- captions: style words {json.dumps(card['style_words'])}; templates {json.dumps(cfg['style_templates'])};
  class-only {json.dumps(cfg['class_templates'])}; domain-only {json.dumps(cfg['domain_templates'])}
- loss: image->text CE per template group (domain x class concept; class within each style word; class-only;
  domain-only) + {cfg['w_t2i']} x text->image multi-positive CE; weights concept {cfg['w_concept']}, style-class
  {cfg['w_style_class']}, class {cfg['w_class']}, domain {cfg['w_domain']}
- style augmentation: {cfg.get('style_prob', 0):.0%} of images re-rendered by one of {', '.join(cfg.get('style_ops', ())) or '–'}
  (they keep their class and lose their domain: class terms only)
- {cfg['steps']} steps x batch {cfg['batch_size']} (domain-balanced), AdamW lr {cfg['lr']} (warm-up {cfg['warmup_steps']},
  cosine to {cfg['min_lr']}), weight decay {cfg['weight_decay']}, grad clip {cfg['grad_clip']}, random resized crop
  {tuple(cfg['crop_scale'])} + flip from {cfg['cache_size']} px cached images, colour jitter {cfg.get('color_jitter', 0)},
  EMA of the weights {cfg.get('ema_decay', 0)} (the saved model), bf16 autocast: {card['bf16']}, seed {cfg['seed']}
- cost: {hw['cpu']} ({hw['torch_threads']} threads, device {hw['device']}); training {card['timings']['train_s'] / 60:.1f} min
  wall clock ({(card['timings'].get('train_cpu_s') or 0) / 60:.0f} CPU-minutes), total {card['timings']['total_s'] / 60:.1f} min
{''.join(f'- note: {n}' + chr(10) for n in card.get('notes', []))}- code: git commit `{card['code']['commit']}`, script sha256 `{card['code']['script_sha256']}`;
  full config and the learning curve (`history`) in `card.json`
""")
    sections.append(f"""## Zero-shot class accuracy on the downstream test set
Prompt `"{EVAL_TEMPLATE}"`, argmax over the 7 classes, top-1 % (chance 14.3 %), fp32, on the
{sum(ev['n_test'].values()):,} `test` images ({', '.join(f'{d} {n}' for d, n in ev['n_test'].items())}):

{head}
{_acc_row(f"this model ({card.get('version', 'v1')})", new["test"] if new else ev, domains)}
{_acc_row("v1 (previous testbed)", old["test"] if old else None, domains) if old else ''}
""")
    if old and old.get("note"):
        sections.append(f"v1 note: {old['note']}\n")
    if new:
        gap = new["memorisation_gap"]
        few = new["few_shot_class_acc_mean"]
        rows = [("zero-shot class accuracy, test (mean over domains)", "test", lambda d: f"{d['test']['class_acc_mean']:.2f}"),
                ("zero-shot class accuracy, whole few-shot pool", "pool", lambda d: f"{d['pool']['class_acc_mean']:.2f}"),
                ("zero-shot class accuracy, 8-shot sets (seeds 1, 2, 3)", "few",
                 lambda d: ", ".join(f"{x:.1f}" for x in d["few_shot_class_acc_mean"].values())),
                ("pool − test (memorisation gap)", "gap", lambda d: f"{d['memorisation_gap']['pool_minus_test']:+.2f}"),
                ("linear domain probe, % (fit on the pool, tested on test)", "dp", lambda d: f"{d['probe']['domain']:.2f}"),
                ("linear class probe, %", "cp", lambda d: f"{d['probe']['class']:.2f}"),
                ("class share of the embedding's variance", "cs", lambda d: f"{d['variance_share']['class']:.3f}"),
                ("domain share of the embedding's variance", "ds", lambda d: f"{d['variance_share']['domain']:.3f}"),
                ("learned logit scale", "ls", lambda d: f"{d['logit_scale']:.1f}")]
        table = "\n".join(f"| {name} | {fn(new)} | {fn(old) if old else '–'} |" for name, _, fn in rows)
        sections.append(f"""## What a downstream run relies on
Measured on the downstream parts, by the same code for both models (`backbone_diagnostics`):

| | {card.get('version', 'v1')} | v1 |
|---|---|---|
{table}

- **No memorisation**: the pool's zero-shot accuracy is {gap['pool_minus_test']:+.2f} points from the test set's
  (95 % sampling interval of that difference: ±{gap['pool_minus_test_ci95']:.2f}, from {sum(new['pool']['n_test'].values())}
  pool and {sum(new['test']['n_test'].values()):,} test images); the 8-shot sets of seeds {', '.join(few)} differ by
  {gap['8shot_minus_test']:+.2f} on average.
- Variance shares: between-class (between-domain) sum of squares over the total, on the L2-normalised test embeddings.
""")
        checks = "\n".join(f"| {t} | {v} | {'met' if ok else '**missed**'} |" for t, v, ok in target_checks(card))
        sections.append(f"""## Against the testbed's targets
| target | this model | |
|---|---|---|
{checks}

The landing floor is a mean of {LANDING_FLOOR:.0f} %; a domain below {DOMAIN_TARGET:.0f} % is named here and stays visible
in every per-domain figure of the book (a low zero-shot accuracy leaves less to forget there).
""")
    trials = card.get("recipe_trials")
    if trials:
        lines = "\n".join(f"| {r['name']} | {r['what']} | {r['acc_mean']:.2f} | {r['variance_share']['class']:.3f} | "
                          f"{r['variance_share']['domain']:.3f} | {r['probe_domain']:.1f} |" for r in trials["runs"])
        sections.append(f"""## What moved them: recipe trials
{trials['setup']}

| trial | recipe | zero-shot acc. (holdout) | class share | domain share | domain probe |
|---|---|---|---|---|---|
{lines}

{trials.get('reading', '')}
""")
    if card.get("curve_png"):
        sections.append(f"![learning curve]({card['curve_png']})\n\nZero-shot accuracy of the saved (EMA) weights "
                        "on the downstream test set during training.\n")
    sections.append(f"""Zero-shot domain classification on test (chance 25 %): {ev['domain_acc_concept']:.2f} % (softmax over the
28 captions `"{DOMAIN_EVAL_TEMPLATE}"`, summed over classes); `"a {{style}}."` prompts: {ev['domain_acc_style']:.2f} %.

Reproduce: `python data_scripts/pretrain_testbed_clip.py --root ../shared/datasets --compare-with <v1 checkpoint>`
(deterministic for the seed, thread count and CPU type; another CPU may differ in the last bits of bf16 arithmetic).
""")
    return "\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="pacs")
    p.add_argument("--root", default=None, help="data root (default $ADU_DATA_ROOT)")
    p.add_argument("--out", default=None, help="output folder (default models/testbed of the project)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a PretrainConfig field (JSON values), e.g. --set steps=300")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--holdout", type=float, default=None,
                   help="recipe trials: keep this fraction of the train part out and evaluate on it")
    p.add_argument("--compare-with", default=None, metavar="CKPT",
                   help="an earlier testbed checkpoint (e.g. v1 from git history) measured beside the new one")
    p.add_argument("--trials", default=None, metavar="JSON", help="recipe-trial summary to print in the card")
    p.add_argument("--version", default="v2", help="the testbed version named in the card")
    p.add_argument("--summarize-trials", nargs="+", default=None, metavar="DIR",
                   help="instead of training: measure recipe-trial folders and print their summary as JSON")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    from adu_core.data import get_dataset
    from adu_core.paths import project_root

    if args.summarize_trials:
        ds = get_dataset(args.dataset, root=args.root)
        styles_map = style_words_for(ds, {})
        rows = summarize_trials(ds, [Path(d) for d in args.summarize_trials], [styles_map[d] for d in ds.domains])
        print(json.dumps(rows, indent=1))
        return 0

    t_start = time.perf_counter()
    cfg = PretrainConfig()
    types = {f.name: f for f in dataclasses.fields(PretrainConfig)}
    for item in args.overrides:
        key, _, text = item.partition("=")
        if key not in types:
            p.error(f"unknown field {key!r}; valid: {', '.join(types)}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        setattr(cfg, key, tuple(value) if isinstance(value, list) else value)
    if args.steps is not None:
        cfg.steps = args.steps
    if args.holdout is not None:
        cfg.holdout = args.holdout
    torch.set_num_threads(cfg.threads)
    device = torch.device(args.device)
    out = Path(args.out) if args.out else project_root() / "models" / "testbed"
    out.mkdir(parents=True, exist_ok=True)

    ds = get_dataset(args.dataset, root=args.root)
    styles_map = style_words_for(ds, cfg.style_words)
    cfg.style_words = styles_map
    styles = [styles_map[d] for d in ds.domains]
    train_samples, held = split_holdout(ds.samples(cfg.train_split), cfg.holdout)
    eval_samples = held if held else ds.samples("test")
    eval_name = f"holdout of the {cfg.train_split} part" if held else "downstream test"
    images, labels, domains = tensors_for(ds, train_samples, cfg.cache_size, f"{ds.name} train {cfg.cache_size}px")
    ev_images, ev_labels, ev_domains = tensors_for(ds, eval_samples, cfg.image_size, f"{ds.name} eval")
    print(f"train {len(train_samples)} images, eval on {eval_name}: {len(eval_samples)}; bf16 {use_bf16(cfg, device)}",
          flush=True)

    def eval_fn(model):
        r = zero_shot_report(model, ev_images, ev_labels, ev_domains, ds.domains, styles, ds.classnames,
                             cfg.context_length, device)
        return {"acc_mean": r["class_acc_mean"], **{f"acc_{k}": v for k, v in r["class_acc"].items()},
                "dom": r["domain_acc_concept"]}

    t_train = time.perf_counter()
    model, history = train(cfg, images, labels, domains, styles, ds.classnames, device,
                           progress=not args.no_progress, eval_fn=eval_fn, log=lambda s: print(s, flush=True))
    train_s = time.perf_counter() - t_train
    model = model.float().cpu()
    ckpt = out / "testbed_clip.pt"
    sha = save_checkpoint(model, cfg.model_cfg(), ckpt, half=True, mean=MEAN, std=STD,
                          extra={"script": "data_scripts/pretrain_testbed_clip.py", "seed": cfg.seed})
    # evaluate what was saved: reload through the project loader (fp16 weights cast back to fp32)
    from adu_core.backbones import load_clip

    loaded = load_clip(MODEL_NAME, pretrained=ckpt).model
    report = zero_shot_report(loaded, ev_images, ev_labels, ev_domains, ds.domains, styles, ds.classnames,
                              cfg.context_length, "cpu")
    card: dict[str, Any] = {
        "format": "adu-testbed-card/2",
        "model": MODEL_NAME,
        "version": args.version,
        "checkpoint": {"file": ckpt.name, "sha256": sha, "bytes": ckpt.stat().st_size,
                       "parameters": sum(p.numel() for p in model.parameters())},
        "architecture": cfg.model_cfg(),
        "training_config": json.loads(json.dumps(asdict(cfg))),
        "style_words": styles_map,
        "bf16": use_bf16(cfg, device),
        "data": {"dataset": ds.name, "manifest_sha256": ds.manifest_sha256(), "n_train": len(train_samples),
                 "train_split": cfg.train_split + (f" minus a {cfg.holdout} holdout" if held else ""),
                 "train_list_sha256": samples_sha256(train_samples),
                 "eval_split": eval_name, "n_eval": len(eval_samples)},
        "zero_shot": {"prompt": EVAL_TEMPLATE, "domain_prompt": DOMAIN_EVAL_TEMPLATE, "split": eval_name, **report},
        "reproduce_check": reproduce_check(loaded, ev_images, ev_domains, styles, ds.classnames, cfg.context_length),
        "code": code_version(Path(__file__).resolve()),
        "hardware": hardware(device),
        "timings": {"train_s": round(train_s, 1), "s_per_step": round(train_s / max(1, cfg.steps), 3),
                    "train_cpu_s": round(history[-1]["cpu_s"], 1) if history else None,
                    "load_average_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "history": history,
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
    }
    if not held:  # the final model: everything the card promises about the downstream parts
        print("diagnostics ...", flush=True)
        diag = {"this": backbone_diagnostics(loaded, ds, styles, cfg.context_length, cfg.image_size)}
        if args.compare_with:
            from adu_core.backbones import file_sha256

            old = load_clip(MODEL_NAME, pretrained=args.compare_with).model
            diag["v1"] = {**backbone_diagnostics(old, ds, styles, cfg.context_length, cfg.image_size),
                          "sha256": file_sha256(Path(args.compare_with)),
                          "note": "v1 was pretrained on the official train lists, which hold most of today's test images "
                                  "(its test numbers are therefore optimistic)"}
        card["diagnostics"] = diag
        card["disjointness"] = disjointness(ds)
        card["curve_png"] = plot_curve(history, out / "curve.png")
    if args.trials:
        card["recipe_trials"] = json.loads(Path(args.trials).read_text())
    card["timings"]["total_s"] = round(time.perf_counter() - t_start, 1)
    card["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_card(out, card)
    print(json.dumps({"zero_shot": report, "sha256": sha, "bytes": ckpt.stat().st_size,
                      "train_min": round(train_s / 60, 1)}, indent=1), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
