"""One dataclass per run. Every field has a default and a one-line doc; [G] marks a choice where the paper is silent.

Tiers only choose defaults (see :data:`TIERS`); every field can be overridden (CLI ``--set key=value``, papermill
parameters). Method-specific hyperparameters live in ``method_options`` and are validated by the method's own
options dataclass (see :mod:`adu_core.methods`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any


def _f(default: Any, doc: str, **kw: Any) -> Any:
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata={"doc": doc}, **kw)
    return field(default=default, metadata={"doc": doc}, **kw)


@dataclass
class RunConfig:
    # --- what to run -------------------------------------------------------------------------------------------
    dataset: str = _f("synthetic", "dataset name from the registry (`adu data list`)")
    forget: tuple[str, ...] = _f((), "domains to forget (at least one, not all)")
    method: str = _f("adu", "method name from the registry (`adu methods`)")
    seed: int = _f(1, "seed of the few-shot subset, initialisation, sampling and augmentation")
    tier: str = _f("smoke", "protocol preset that chose the defaults: paper, testbed or smoke")
    recipe: str = _f("paper", "preset of the recipe switches below: paper (the paper's text) or authors_code (the "
                              "authors' released code at 50a43db; see RECIPES); the switches are recorded as set")
    # --- backbone ----------------------------------------------------------------------------------------------
    backbone: str = _f("adu-tiny", "open_clip architecture (paper: ViT-B-16); ignored for self-describing checkpoints")
    pretrained: str | None = _f(None, "open_clip tag (paper: openai), a checkpoint path, or None for random weights")
    templates: tuple[str, ...] = _f(("a photo of a {}.",), "text templates; class text features are their mean")
    text_ctx: int = _f(0, "learnable text prompt tokens (0: the frozen templates, the paper's text; n > 0: n tokens "
                          "in place of the template's words, starting N(0, 0.02^2), as the authors' code trains)")
    text_prompt_depth: int | None = _f(None, "first text-encoder layers with fresh text prompts (None: prompt_depth, "
                                             "capped at the text encoder's layers; authors' code: 9)")
    # --- data --------------------------------------------------------------------------------------------------
    data_root: str | None = _f(None, "data root (default: $ADU_DATA_ROOT or the user cache)")
    shots: int = _f(8, "training images per class per domain (paper: 8 [G: per class per domain])")
    domain_label_fraction: float = _f(1.0, "fraction of training images that keep their domain label; the rest "
                                      "get pseudo-labels (label-scarce setting, appendix) [G]")
    pseudo_labeler: str = _f("kmeans", "pseudo-labels for unlabelled images: kmeans (semi-supervised, frozen "
                                       "features) or zeroshot (CLIP domain prompts) [G]")
    max_test_per_domain: int | None = _f(None, "cap on test images per domain, drawn by seed 0 (None: all)")
    # --- vision prompts and InstaPG ------------------------------------------------------------------------------
    n_ctx: int = _f(8, "vision prompt tokens per layer (paper: 8)")
    prompt_depth: int = _f(9, "first layers that receive fresh prompts (paper: 9)")
    prompt_init_std: float = _f(0.02, "prompts start as N(0, std^2) [G: IVLP/PromptSRC]")
    instapg: bool = _f(True, "use InstaPG (Table 2 switch)")
    instapg_layers: tuple[int, ...] | None = _f(
        None, "prompted layers with InstaPG; None = every prompted layer after the first [G]; negative indices "
              "count from the last prompted layer (-1: the last; the authors' code: the 9th of 9)")
    instapg_heads: int = _f(0, "InstaPG heads; 0 = the encoder's own head count [G]")
    instapg_norm: bool = _f(True, "LayerNorm on InstaPG queries and keys/values [G]")
    instapg_residual: bool = _f(True, "InstaPG output added to the learnable prompts (zero-initialised) [G]")
    instapg_form: str = _f("paper", "InstaPG block: paper (cross-attention only, as instapg_norm/instapg_residual say) "
                                    "or authors (the released block: LayerNorm on queries and keys/values, attention "
                                    "with a residual onto the normalised queries, post-LayerNorm, FFN x4 with a "
                                    "residual; its output replaces the prompts)")
    # --- losses --------------------------------------------------------------------------------------------------
    forget_loss: str = _f("uniform_ce", "L_forget: uniform_ce (cross-entropy to the uniform distribution, the paper's "
                                        "text), neg_entropy (minus the softmax entropy, the authors' code) or none "
                                        "(off: prompt tuning on the kept domains only)")
    ddl: bool = _f(True, "use the Domain Disentangling Loss (Table 2 switch)")
    ddl_ce: bool = _f(True, "DDL's domain-classification CE term (Table 3 switch)")
    ddl_mmd: bool = _f(True, "DDL's MMD term (Table 3 switch)")
    gamma: float = _f(30.0, "weight γ of the domain CE (paper: 30)")
    lam: float = _f(10.0, "weight λ of the MMD² term (paper: 10)")
    mmd_kernel: str = _f("gaussian", "MMD kernel: gaussian (multi-bandwidth), linear or laplacian [G]")
    mmd_bandwidths: tuple[float, ...] = _f((0.25, 0.5, 1.0, 2.0, 4.0),
                                           "bandwidth multipliers of the median heuristic [G: DAN-style]")
    ddl_feature: str = _f("embedding", "what DDL's classifier and MMD read: embedding (the L2-normalised image "
                                       "embedding the class logits use) or pre_projection (the class token before "
                                       "the projection, L2-normalised) [G: the paper says 'latent feature']")
    mmd_on: str = _f("feature", "what the MMD compares: feature (the ddl_feature) or domain_logits (the domain "
                                "classifier's outputs, as the authors' code does)")
    mmd_median: str = _f("batch", "median heuristic of the kernel scale: batch (median squared distance over the "
                                  "whole batch) or pair (over the two domains' cross pairs, per pair, as the "
                                  "authors' code; with mmd_bandwidths (2,) it is their exp(-d^2 / 2 median_d^2))")
    domain_head: str = _f("domains", "domain classifier outputs: domains (|D|, the paper's 'confidence scores' over "
                                     "domains) or domains_x_classes (|D|*|C| outputs trained with the domain index "
                                     "as target, as the authors' code builds it)")
    # --- optimisation ----------------------------------------------------------------------------------------------
    epochs: int = _f(50, "training epochs (paper: 50)")
    batch_size: int = _f(32, "batch size [G: PromptSRC's 4 is too small for MMD over 4 domains; authors' code: 128]")
    sampler: str = _f("balanced", "training batches: balanced (every domain equally in every batch, ceil(N/B) per "
                                  "epoch) or random (a random permutation, floor(N/B) batches: Dassl's RandomSampler "
                                  "with drop_last, as the authors' code)")
    lr: float = _f(0.0025, "SGD learning rate (paper: 0.0025)")
    momentum: float = _f(0.9, "SGD momentum [G: Dassl]")
    weight_decay: float = _f(5e-4, "SGD weight decay [G: Dassl]")
    scheduler: str = _f("cosine", "per-epoch schedule after warm-up: cosine or constant [G: Dassl]")
    warmup_epochs: int = _f(1, "constant warm-up epochs [G: Dassl/PromptSRC]")
    warmup_lr: float = _f(1e-5, "learning rate during warm-up [G: Dassl/PromptSRC]")
    crop_scale: tuple[float, float] = _f((0.08, 1.0), "random-resized-crop scale range, plus flips [G: Dassl]")
    augment: str = _f("centre_crop", "what the random-resized crop is taken from: centre_crop (the centred square "
                                     "the test transform sees, bilinear) or full_image (the whole image up to a 4:3 "
                                     "side ratio, bicubic, as Dassl's transform in the authors' code)")
    # --- runtime -------------------------------------------------------------------------------------------------
    device: str = _f("auto", "cuda, cpu or auto")
    precision: str = _f("auto", "bf16, fp16 (CUDA, loss-scaled) or fp32; auto = bf16 autocast on CUDA (fp16 where "
                                "the GPU lacks bf16, e.g. T4) and on CPUs with bf16 units (AVX512-BF16/AMX), else "
                                "fp32; run.json records what ran (provenance.precision)")
    checkpoint_interval_s: float = _f(0.0, "least seconds between epoch checkpoints (0 = every epoch)")
    grad_checkpointing: bool = _f(False, "recompute encoder activations in backward to save memory")
    eval_batch_size: int = _f(256, "test batch size (inference mode)")
    method_options: dict = _f({}, "method-specific hyperparameters (validated by the method)")

    def __post_init__(self) -> None:
        if isinstance(self.forget, str):
            self.forget = tuple(d for d in self.forget.split(",") if d)
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                setattr(self, f.name, tuple(value))

    def validate(self) -> None:
        """Range-check every field; the first bad one raises ValueError naming the key, the value and what is allowed.

        Names (dataset, method, domains) are checked against their registries by ``train.resolve_config``.
        """
        for f in fields(self):
            rule = RULES.get(f.name)
            if rule is None:
                continue
            check, allowed = rule
            value = getattr(self, f.name)
            try:
                ok = bool(check(value))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"{f.name}={value!r} is out of range: {allowed}")

    # -----------------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; valid keys: {', '.join(field_names())}")
        return cls(**data)

    def key(self) -> str:
        """Short hash of everything that defines the run, used in result paths."""
        blob = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and x == x  # not NaN


def _int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


FORGET_LOSSES = ("uniform_ce", "neg_entropy", "none")

# Recipe presets: the switches in which the authors' released code (commit 50a43db) differs from the paper's text,
# each its own config field so any one can be turned on alone (``adu_book.authors_code`` lists every difference,
# with the file and history behind it). "@n_ctx" takes the run's own vision prompt length (8 at the paper tier).
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {},
    "authors_code": {
        "text_ctx": "@n_ctx",
        "instapg_form": "authors", "instapg_layers": (-1,),
        "forget_loss": "neg_entropy",
        "lam": 0.5, "mmd_on": "domain_logits", "mmd_median": "pair", "mmd_bandwidths": (2.0,),
        "domain_head": "domains_x_classes",
        "batch_size": 128, "sampler": "random",
        "augment": "full_image",
    },
}

# Per field: (check, what is allowed). Every numeric, choice and container field has one (a test checks that).
RULES: dict[str, tuple[Any, str]] = {
    "seed": (lambda v: _int(v) and v >= 0, "a whole number >= 0"),
    "tier": (lambda v: v in TIERS, "one of paper, testbed, smoke"),
    "recipe": (lambda v: v in RECIPES, "one of " + ", ".join(RECIPES)),
    "text_ctx": (lambda v: _int(v) and v >= 0, "a whole number >= 0 (0: frozen templates)"),
    "text_prompt_depth": (lambda v: v is None or (_int(v) and v >= 1), "none (prompt_depth) or a whole number >= 1"),
    "instapg_form": (lambda v: v in ("paper", "authors"), "paper or authors"),
    "forget_loss": (lambda v: v in FORGET_LOSSES, "uniform_ce, neg_entropy or none"),
    "mmd_on": (lambda v: v in ("feature", "domain_logits"), "feature or domain_logits"),
    "mmd_median": (lambda v: v in ("batch", "pair"), "batch or pair"),
    "domain_head": (lambda v: v in ("domains", "domains_x_classes"), "domains or domains_x_classes"),
    "sampler": (lambda v: v in ("balanced", "random"), "balanced or random"),
    "augment": (lambda v: v in ("centre_crop", "full_image"), "centre_crop or full_image"),
    "templates": (lambda v: len(v) > 0 and all(isinstance(t, str) and "{}" in t for t in v),
                  "one or more texts, each with a {} where the class name goes"),
    "shots": (lambda v: _int(v) and v >= 1, "a whole number >= 1 (images per class per domain)"),
    "domain_label_fraction": (lambda v: _num(v) and 0 <= v <= 1, "a fraction within [0, 1]"),
    "pseudo_labeler": (lambda v: v in ("kmeans", "zeroshot"), "kmeans or zeroshot"),
    "max_test_per_domain": (lambda v: v is None or (_int(v) and v >= 1), "none (all) or a whole number >= 1"),
    "n_ctx": (lambda v: _int(v) and v >= 1, "a whole number >= 1 (prompt tokens per layer)"),
    "prompt_depth": (lambda v: _int(v) and v >= 0, "a whole number >= 0 (at most the encoder's layers)"),
    "prompt_init_std": (lambda v: _num(v) and v >= 0, "a number >= 0"),
    "instapg_layers": (lambda v: v is None or all(_int(i) for i in v),
                       "none (every prompted layer after the first) or layer indices within -prompt_depth.."
                       "prompt_depth-1"),
    "instapg_heads": (lambda v: _int(v) and v >= 0, "a whole number >= 0 (0: the encoder's head count)"),
    "gamma": (lambda v: _num(v) and v >= 0, "a number >= 0"),
    "lam": (lambda v: _num(v) and v >= 0, "a number >= 0"),
    "mmd_kernel": (lambda v: v in ("gaussian", "linear", "laplacian"), "gaussian, linear or laplacian"),
    "mmd_bandwidths": (lambda v: len(v) > 0 and all(_num(b) and b > 0 for b in v), "one or more numbers > 0"),
    "ddl_feature": (lambda v: v in ("embedding", "pre_projection"), "embedding or pre_projection"),
    "epochs": (lambda v: _int(v) and v >= 1, "a whole number >= 1"),
    "batch_size": (lambda v: _int(v) and v >= 1, "a whole number >= 1 (at least one image per domain)"),
    "lr": (lambda v: _num(v) and v > 0, "a number > 0"),
    "momentum": (lambda v: _num(v) and 0 <= v < 1, "a number within [0, 1)"),
    "weight_decay": (lambda v: _num(v) and v >= 0, "a number >= 0"),
    "scheduler": (lambda v: v in ("cosine", "constant"), "cosine or constant"),
    "warmup_epochs": (lambda v: _int(v) and v >= 0, "a whole number >= 0 (below epochs)"),
    "warmup_lr": (lambda v: _num(v) and v >= 0, "a number >= 0"),
    "crop_scale": (lambda v: len(v) == 2 and all(_num(x) for x in v) and 0 < v[0] <= v[1] <= 1,
                   "two numbers lo,hi with 0 < lo <= hi <= 1"),
    "device": (lambda v: v in ("auto", "cpu", "cuda") or str(v).startswith("cuda:"), "auto, cpu, cuda or cuda:N"),
    "precision": (lambda v: v in ("auto", "bf16", "fp16", "fp32"), "auto, bf16, fp16 or fp32"),
    "checkpoint_interval_s": (lambda v: _num(v) and v >= 0, "a number of seconds >= 0"),
    "eval_batch_size": (lambda v: _int(v) and v >= 1, "a whole number >= 1"),
    "method_options": (lambda v: isinstance(v, dict), "a JSON object of method options"),
    **{k: (lambda v: isinstance(v, bool), "true or false") for k in (
        "instapg", "instapg_norm", "instapg_residual", "ddl", "ddl_ce", "ddl_mmd", "grad_checkpointing")},
}


def field_names() -> list[str]:
    return [f.name for f in fields(RunConfig)]


def field_docs() -> dict[str, str]:
    return {f.name: f.metadata.get("doc", "") for f in fields(RunConfig)}


_FIELD_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(RunConfig)
                                   if f.default is not dataclasses.MISSING}

TESTBED_CHECKPOINT = "models/testbed/testbed_clip.pt"  # relative to the project root (``paths.resolve_path``)


def testbed_checkpoint() -> str:
    """The testbed CLIP, as configs record it: project-relative, so run.json names no machine's folders."""
    return TESTBED_CHECKPOINT


# Tier presets. `paper` is the paper's protocol; `testbed` is the same protocol scaled to 2 CPU cores with the
# project's own PACS-pretrained CLIP; `smoke` is a seconds-long run of a tiny random model for tests and examples.
TIERS: dict[str, dict[str, Any]] = {
    "paper": {"backbone": "ViT-B-16", "pretrained": "openai"},
    # testbed v2: the paper's 50 epochs (224 few-shot images, batch 32: 350 steps), prompts in 4 of the 6 layers.
    # Not cut to 20: For at 50 − at 20 epochs was +7.9 (95 % CI +1.8 to +14.0) for ADU and +9.9 (+5.6 to +14.3)
    # for the Baseline (seed 1, the 4 one-domain sets, paired; the sensitivity page's epochs sweep holds those
    # runs): forgetting has not reached its plateau at 20 (H: no measurable difference, +2.7 / +1.3).
    "testbed": {
        "backbone": "adu-testbed", "pretrained": "@testbed", "prompt_depth": 4, "n_ctx": 4, "eval_batch_size": 512,
    },
    "smoke": {
        "backbone": "adu-tiny", "pretrained": None, "epochs": 2, "shots": 4, "n_ctx": 2, "prompt_depth": 3,
        "batch_size": 16, "warmup_epochs": 0, "lr": 0.01, "precision": "fp32",
    },
}
# Per-method options a tier implies (e.g. fewer CMA-ES iterations for smoke runs); explicit options win.
TIER_METHOD_OPTIONS: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {"bbf": {"iterations": 50}},
}
DEFAULT_TIER = {"synthetic": "smoke", "pacs": "testbed"}


def default_tier(dataset: str) -> str:
    return DEFAULT_TIER.get(dataset, "paper")


def make_config(dataset: str, tier: str | None = None, **overrides: Any) -> RunConfig:
    """RunConfig from a tier's defaults, then a recipe's switches (``recipe=...``, :data:`RECIPES`), then explicit
    overrides (unknown keys are an error)."""
    tier = tier or default_tier(dataset)
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")
    recipe = overrides.get("recipe", "paper")
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    values: dict[str, Any] = {**TIERS[tier], **RECIPES[recipe], **overrides, "dataset": dataset, "tier": tier}
    for key, value in values.items():  # "@field": that field's value in this config (a recipe follows the tier)
        if isinstance(value, str) and value.startswith("@") and value[1:] in _FIELD_DEFAULTS:
            values[key] = values.get(value[1:], _FIELD_DEFAULTS[value[1:]])
    implied = TIER_METHOD_OPTIONS.get(tier, {}).get(values.get("method", "adu"), {})
    if implied:
        values["method_options"] = {**implied, **values.get("method_options", {})}
    if values.get("pretrained") == "@testbed":
        values["pretrained"] = testbed_checkpoint()
    return RunConfig.from_dict(values)


def parse_override(key: str, text: str) -> Any:
    """Parse a `--set key=value` string by the field's declared type (JSON for containers, `none` for None)."""
    if key.startswith("method."):
        return None if text.lower() in ("none", "null") else _parse_json_or_str(text)
    hints = typing.get_type_hints(RunConfig)
    if key not in hints:
        raise ValueError(f"unknown config key {key!r}; valid keys: {', '.join(field_names())} (or method.NAME)")
    hint = hints[key]
    if text.lower() in ("none", "null") and type(None) in typing.get_args(hint):
        return None
    is_union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    base = next(a for a in typing.get_args(hint) if a is not type(None)) if is_union else hint
    origin = typing.get_origin(base) or base
    if origin is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{key} expects true/false, got {text!r}")
    if origin in (int, float, str):
        try:
            return origin(text)
        except ValueError as err:
            raise ValueError(f"{key} expects {origin.__name__}, got {text!r}") from err
    if origin is tuple:
        value = _parse_json_or_str(text)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, list):
            value = [value]
        inner = typing.get_args(base)[0] if typing.get_args(base) else str
        return tuple(inner(v) for v in value)
    return _parse_json_or_str(text)


def _parse_json_or_str(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
