"""A training-free baseline: zero-shot CLIP behind a domain gate (not in the paper; a question its readers ask).

Each image's domain is predicted from the frozen model; an image the gate puts in a forgotten domain gets a class
drawn uniformly at random, every other image is answered by zero-shot CLIP. Nothing is unlearned: the model is
untouched, so the knowledge is all still there. If such a gate matches ADU's H, the forgetting ADU learns is no more
than a domain detector in front of CLIP.

Domain detectors (``method.detector``):

* ``zeroshot`` — CLIP's own domain prompts: cos(image, mean over classes of text("a {domain} of a {class}.")),
  argmax over domains; uses no labels at all.
* ``probe`` — a logistic-regression probe on the frozen image features of the few-shot training images and their
  domain labels (pseudo-labels where the run makes them), the same data every trained method gets.

The detector's test accuracy is reported as ``domain_acc_head`` (its domain logits are the method's domain output).

A detector can be *degraded* to a chosen accuracy (``method.detector_accuracy``: a fraction between chance, 1/|D|,
and 1), to check the gate's closed form (:mod:`adu_book.gate_model`) at accuracies other than the detector's own.
How: the detector's accuracy a₀ is measured on the few-shot training images (never on the test set); then each
image's detected domain is kept with probability 1 − p and replaced, with probability p = (a₀ − a)/(a₀ − 1/|D|), by
a domain drawn uniformly from all |D| (so the expected accuracy is (1 − p)·a₀ + p/|D| = a where a₀ holds). The
draws come from a generator seeded by the run's seed, so a run is repeatable. Replacing uniformly keeps a symmetric
error pattern symmetric, the closed form's own assumption. The test accuracy reached is ``domain_acc_head``, as
for every detector; a₀ and p are in the run's history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..pseudo_labels import frozen_features
from ..text import text_features
from . import register
from .base import Method, Outputs, RunEnv, normalized

DETECTORS = ("zeroshot", "probe")
ANSWERS = ("random", "uniform")


@dataclass
class GateOptions:
    detector: str = field(default="zeroshot", metadata={"choices": DETECTORS,
        "doc": "domain detector: zeroshot (CLIP's domain prompts, no labels) or probe (logistic regression on the "
               "frozen features of the few-shot images)"})
    answer: str = field(default="random", metadata={"choices": ANSWERS,
        "doc": "what a gated image gets: random (one class drawn uniformly; accuracy at chance) or uniform (flat "
               "logits; argmax then picks the first class)"})
    domain_template: str = field(default="a {domain} of a {}.", metadata={
        "doc": "zeroshot detector prompt; {domain} is the domain's name, {} the class"})
    detector_accuracy: float | None = field(default=None, metadata={
        "none_ok": True, "above": 0.0, "below": 1.0,
        "doc": "None: the detector as it is; a fraction a (at least chance, 1/|D|): the detector degraded to "
               "accuracy a by replacing its answer with a uniformly drawn domain at a rate set on the training "
               "images (seeded; a measuring device for the gate's closed form, not a method)"})


@register
class DomainGate(Method):
    """Training-free domain gate: zero-shot CLIP, but a random class for images detected as a forgotten domain."""

    name = "gate"
    gradient_free = True
    options_cls = GateOptions

    def __init__(self, env: RunEnv) -> None:
        super().__init__(env)
        opt = self.options
        if "{domain}" not in opt.domain_template or "{}" not in opt.domain_template:
            raise ValueError("gate: domain_template needs a {domain} and a {} placeholder")
        dim = env.text_features.shape[1]
        # The probe's weights are the gate's whole fitted state (saved like any method's trainable state).
        self.probe = nn.Linear(dim, len(env.domains))
        nn.init.zeros_(self.probe.weight)
        nn.init.zeros_(self.probe.bias)
        names = env.domain_names or env.domains
        self.register_buffer("domain_text", self._domain_text(names) if opt.detector == "zeroshot"
                             else torch.zeros(len(env.domains), dim), persistent=False)
        self.register_buffer("forget_idx", torch.tensor(env.forget_idx, dtype=torch.long), persistent=False)
        self.answers = torch.Generator().manual_seed(env.cfg.seed * 1_000_003 + 7)
        target = opt.detector_accuracy
        if target is not None:
            chance = 1.0 / len(env.domains)
            if target < chance:
                raise ValueError(f"method.detector_accuracy={target!r} is out of range for gate: a fraction from "
                                 f"chance (1/{len(env.domains)} = {chance:.3f}) to below 1")
            # The replacement rate is fitted state (set in fit, saved with the probe): a rebuilt gate degrades alike.
            self.replace_prob = nn.Parameter(torch.zeros(()))
            self.replacements = torch.Generator().manual_seed(env.cfg.seed * 1_000_003 + 11)

    def _domain_text(self, names) -> torch.Tensor:
        env = self.env
        template = self.options.domain_template
        per_domain = []
        for name in names:
            t = text_features(env.clip, env.tokenizer, env.classnames, (template.replace("{domain}", name),),
                              env.device)
            per_domain.append(F.normalize(t.mean(0), dim=0))
        return torch.stack(per_domain)

    def detect(self, feats: torch.Tensor) -> torch.Tensor:
        """Domain logits [B, |D|] of L2-normalised image features."""
        if self.options.detector == "zeroshot":
            return self.env.logit_scale * feats @ self.domain_text.to(feats.dtype).T
        return self.probe(feats)

    def gate(self, class_logits: torch.Tensor, domain_pred: torch.Tensor) -> torch.Tensor:
        """Class logits with every row whose predicted domain is a forgotten one replaced by the gate's answer."""
        gated = torch.isin(domain_pred, self.forget_idx.to(domain_pred.device))
        flat = torch.zeros_like(class_logits)
        if self.options.answer == "random":
            pick = torch.randint(class_logits.shape[1], (class_logits.shape[0],), generator=self.answers)
            flat = flat.scatter(1, pick.to(flat.device)[:, None], 1.0)
        return torch.where(gated[:, None], flat, class_logits)

    def degrade(self, domain_pred: torch.Tensor) -> torch.Tensor:
        """Each detected domain replaced, with probability ``replace_prob``, by one drawn uniformly from all |D|."""
        n = domain_pred.shape[0]
        swap = torch.rand(n, generator=self.replacements) < float(self.replace_prob)
        drawn = torch.randint(len(self.env.domains), (n,), generator=self.replacements)
        return torch.where(swap.to(domain_pred.device), drawn.to(domain_pred.device), domain_pred)

    def forward(self, images: torch.Tensor) -> Outputs:
        with torch.no_grad():
            feats = normalized(self.env.clip.encode_image(images))
            domain_logits = self.detect(feats)
            domain_pred = domain_logits.argmax(-1)
            if self.options.detector_accuracy is not None:
                domain_pred = self.degrade(domain_pred)
                domain_logits = F.one_hot(domain_pred, len(self.env.domains)).to(domain_logits.dtype)
            logits = self.gate(self.class_logits(feats), domain_pred)
        return Outputs(logits, feats, domain_logits)

    def fit(self, trainer) -> None:
        """Nothing to train; the probe detector is fitted on the frozen features of the training images, and a
        degraded detector's replacement rate is set from its accuracy on those images."""
        env, data = self.env, trainer.data
        if self.options.detector == "probe":
            self._fit_probe(trainer)
        target = self.options.detector_accuracy
        if target is None:
            return
        feats = frozen_features(env.clip, data.images, data.mean, data.std, env.device).to(env.device)
        with torch.no_grad():
            own = 100.0 * float((self.detect(feats).argmax(-1).cpu() == data.domains.cpu()).float().mean())
        chance = 1.0 / len(env.domains)
        rate = min(max((own / 100.0 - target) / max(own / 100.0 - chance, 1e-9), 0.0), 1.0)
        with torch.no_grad():
            self.replace_prob.fill_(rate)
        trainer.history.append({"epoch": 1, "detector_train_acc": own, "detector_target": 100.0 * target,
                                "replace_prob": rate})

    def _fit_probe(self, trainer) -> None:
        from sklearn.linear_model import LogisticRegression

        env, data = self.env, trainer.data
        feats = frozen_features(env.clip, data.images, data.mean, data.std, env.device)
        domains = data.domains.cpu().numpy()
        probe = LogisticRegression(max_iter=3000).fit(feats.numpy(), domains)
        weight = torch.zeros_like(self.probe.weight)
        bias = torch.zeros_like(self.probe.bias)
        classes = torch.as_tensor(probe.classes_)
        if len(classes) == 2:  # scikit-learn's binary form: one row for the second class
            weight[classes[1]] = torch.as_tensor(probe.coef_[0], dtype=weight.dtype)
            bias[classes[1]] = float(probe.intercept_[0])
        else:
            weight[classes] = torch.as_tensor(probe.coef_, dtype=weight.dtype)
            bias[classes] = torch.as_tensor(probe.intercept_, dtype=bias.dtype)
        with torch.no_grad():
            self.probe.weight.copy_(weight.to(self.probe.weight.device))
            self.probe.bias.copy_(bias.to(self.probe.bias.device))
        trainer.history.append({"epoch": 1, "probe_train_acc": 100.0 * float(probe.score(feats.numpy(), domains))})
