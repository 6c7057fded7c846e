"""What every unlearning method shares: the run environment, its outputs, and the method interface."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..config import RunConfig


@dataclass
class RunEnv:
    """Everything a method may use: the config, the frozen CLIP, class text features and the domain layout."""

    cfg: RunConfig
    clip: nn.Module
    tokenizer: Any
    classnames: tuple[str, ...]
    text_features: torch.Tensor  # [C, E], L2-normalised, frozen
    domains: tuple[str, ...]  # domain ids; domain index = position here
    forget_idx: tuple[int, ...]  # indices into `domains`
    device: torch.device
    autocast_dtype: torch.dtype | None  # None = fp32
    mean: tuple[float, ...] = (0.48145466, 0.4578275, 0.40821073)  # image normalisation of the backbone
    std: tuple[float, ...] = (0.26862954, 0.26130258, 0.27577711)
    image_size: int = 224
    domain_names: tuple[str, ...] = ()  # human text of each domain, for prompts ("art painting"); default: the ids

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale.detach().exp()

    def autocast(self):
        if self.autocast_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


@dataclass
class Outputs:
    logits: torch.Tensor  # [B, C] class logits
    features: torch.Tensor  # [B, E] L2-normalised image features
    domain_logits: torch.Tensor | None = None  # [B, |D|] (|D|·|C| for the released code's) with a domain classifier
    ddl_features: torch.Tensor | None = None  # what DDL's MMD reads when it is not ``features`` (ddl_feature)


@dataclass
class NoOptions:
    """This method has no hyperparameters of its own."""


class Method(nn.Module):
    """Base class. Gradient methods implement ``forward`` and ``loss``; others override ``fit``.

    The module's trainable parameters (requires_grad) are its whole learnt state: checkpoints save only those.
    """

    name: ClassVar[str] = ""
    options_cls: ClassVar[type] = NoOptions
    config_overrides: ClassVar[dict[str, Any]] = {}  # config switches the method implies (recorded in run.json)
    trains: ClassVar[bool] = True
    gradient_free: ClassVar[bool] = False  # fitted without gradients (no relearning curve: adu_core.recovery)

    def __init__(self, env: RunEnv) -> None:
        super().__init__()
        self.env = env
        self.cfg = env.cfg
        self.options = make_options(type(self), env.cfg.method_options)

    def forward(self, images: torch.Tensor) -> Outputs:
        raise NotImplementedError

    def loss(self, out: Outputs, labels: torch.Tensor, domains: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def fit(self, trainer) -> None:
        """Train on ``trainer.data``; the default is the shared gradient loop (checkpointed, resumable)."""
        trainer.fit_gradient(self)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {k: v.detach().clone() for k, v in self.state_dict().items() if k in names}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        own = self.trainable_state()
        if set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
            raise ValueError("checkpoint does not match this method's parameters (different method or config)")
        self.load_state_dict(state, strict=False)

    def relearn_optimizer(self, history: list[dict[str, Any]]) -> torch.optim.Optimizer:
        """The optimiser that relearns this method's parameters (:mod:`adu_core.recovery`): the step size the method
        itself trained with, so that relearning is neither slowed nor sped up by a foreign step. The default is the
        shared gradient loop's SGD at its peak rate (``cfg.lr``); ``history`` is the run's training history."""
        cfg = self.cfg
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)

    # helpers shared by CLIP-style methods
    def class_text(self) -> torch.Tensor:
        """[C, E] L2-normalised class text features the logits read (the frozen templates' unless a method learns
        its own)."""
        return self.env.text_features

    def class_logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.env.logit_scale * features @ self.class_text().to(features.dtype).T

    def unlearning_loss(self, logits: torch.Tensor, labels: torch.Tensor,
                        domains: torch.Tensor) -> dict[str, torch.Tensor]:
        """L_memorize on kept-domain samples + L_forget on forgotten-domain samples."""
        from ..losses import forget_loss, memorize_loss

        # Masks, not boolean indexing: the selection sizes stay on the device (no host sync in the step).
        forget_idx = torch.tensor(self.env.forget_idx, device=domains.device)
        forget = (domains[:, None] == forget_idx).any(dim=1)
        mem = memorize_loss(logits, labels, mask=~forget)
        kind = self.cfg.forget_loss
        fgt = mem * 0.0 if kind == "none" else forget_loss(logits, mask=forget, kind=kind)
        return {"loss": mem + fgt, "memorize": mem.detach(), "forget": fgt.detach()}


def make_options(method_cls: type[Method], given: dict) -> Any:
    """The method's options from ``given`` (unknown names and out-of-range values are errors naming the option)."""
    cls = method_cls.options_cls
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = set(given) - valid
    if unknown:
        raise ValueError(f"method {method_cls.name!r} has no option(s) {sorted(unknown)}; "
                         f"valid: {', '.join(sorted(valid)) or 'none'}")
    options = cls(**given)
    for f in dataclasses.fields(cls):
        problem = _out_of_range(getattr(options, f.name), f.metadata)
        if problem:
            raise ValueError(f"method.{f.name}={getattr(options, f.name)!r} is out of range for {method_cls.name}: "
                             f"{problem}")
    return options


def _out_of_range(value: Any, meta: Any) -> str | None:
    """What is wrong with an option's value by its field's metadata (``min``, ``above``, ``below``, ``choices``,
    ``none_ok``), or None. Booleans are not numbers here."""
    if value is None:
        return None if meta.get("none_ok") else "a value is required"
    if "choices" in meta:
        return None if value in meta["choices"] else f"one of {', '.join(map(str, meta['choices']))}"
    number = isinstance(value, int | float) and not isinstance(value, bool)
    bounds = [(k, meta[k]) for k in ("min", "above", "below") if k in meta]
    if not bounds:
        return None
    allowed = ", ".join({"min": ">= {}", "above": "> {}", "below": "< {}"}[k].format(v) for k, v in bounds)
    allowed = ("none or " if meta.get("none_ok") else "") + "a number " + allowed
    if not number or value != value:
        return allowed
    ok = all((value >= v) if k == "min" else (value > v) if k == "above" else (value < v) for k, v in bounds)
    return None if ok else allowed


def normalized(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.float(), dim=-1)
