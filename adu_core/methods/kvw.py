"""Knowledge-vector weakening (KVW) for domains: a training-free edit of the image encoder's MLP value vectors.

KVW (Kim et al., arXiv 2601.21794, 2026) unlearns without gradients: it finds the feed-forward "knowledge vectors"
that are active when the model answers on the forget set and weakens their contributions, round by round. Here it
is applied to CLIP's image encoder and to domains (not in the ADU paper; our adaptation, every choice below is [G]):

* **Units and value vectors.** Each hidden unit u of an MLP block (after the activation, before ``c_proj``) writes
  ``a_u(x) · v_u`` into the residual stream, with ``v_u`` the u-th column of ``mlp.c_proj.weight``. Weakening a unit
  multiplies its column by ``factor``; a unit chosen in k rounds carries ``factor**k`` (its *gain*).
* **Pooling.** A unit's activation on an image is its mean over all tokens (``pool=mean``): below the last block, what
  a unit writes on any token can reach the class token through later attention, so the class token alone (``cls``)
  would miss most of a unit's use.
* **Contrast** (the paper's "activated on the forget set" leaves open against what). The default ``mean_diff`` scores
  a unit by how much more it writes on the forgotten domains' few-shot images than on the kept domains':
  ``(mean_forgotten a_u − mean_kept a_u) · gain_u · ‖v_u‖``, the difference of the norms of its contributions to the
  residual stream. It is in the stream's units, so units of different blocks compete on one scale, and it falls as a
  unit is weakened, so a unit is chosen again only while it still stands out. A contrast, not the forget-set
  activation alone, because a unit that fires on every domain carries the classes, which the kept domains need
  (``forget_mean`` is that alone, for comparison); ``standardised`` divides the difference of means by the pooled
  standard deviation (scale-free, then times the gain). Only units that fire on the forgotten images (mean
  activation > 0) with a positive score are candidates, so a unit silent on them is never weakened. Ties break by
  (block, unit) index.
* **Rounds and stopping.** Each round weakens the ``unit_share`` top-scoring units over all chosen blocks, then
  re-scores on the edited model (weakening a block changes the activations of later ones). It stops when the
  forgotten-domain accuracy on the few-shot pool is at most chance + ``stop_forget_acc`` points, or after
  ``max_rounds``; a round after which the kept-domain pool accuracy has fallen more than ``stop_mem_drop`` points below
  its start is undone and ends the edit, so the margin holds for the edit that is kept.
* **Data.** The run's few-shot pool (seed-chosen) with its training domain labels (pseudo-labels where the run
  makes them), centre view, no augmentation: the edit is deterministic for a seed.
* **State and record.** The method owns a deep copy of the image encoder (the run's CLIP is shared and stays
  untouched); the gains of the chosen blocks are its whole state (``trained.pt``). Each round's pool Mem/For/H goes to
  ``history``, and a last record ``{"kvw_edit": ...}`` gives, per block, the weakened units and their gains, the
  number of rounds and the stopping reason (:func:`edit_of` reads it from a run.json).
* **Relearning** (:mod:`adu_core.recovery`): the gains are fine-tuned on the forgotten domains at the shared loop's
  rate, from the edit (unlearned) and from 1 (original). Weakening leaves each value vector's direction intact, so
  this asks directly whether the domain is gone or only dimmed: whether turning the same vectors back up restores it.

Defaults were chosen on a validation part of the few-shot pool (testbed, PACS, seed 1; never the test set) by
``data_scripts/choose_kvw_defaults.py``: every block, 4 % of their units per round, factor 0 (the units are switched
off), at most 5 rounds, stop at chance or on a 10-point kept-accuracy drop; validation H 54.9 (Mem 57.4, For 52.7)
against zero-shot CLIP's 47.6, averaged over the 4 one-domain forget sets. The grid, every point's validation numbers
and the rule are in ``models/testbed/kvw_defaults.json``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..metrics import h_score
from ..pipeline import normalize
from . import register
from .base import Method, Outputs, RunEnv, normalized

LAYER_SETS = ("all", "early", "late")
SCORES = ("mean_diff", "standardised", "forget_mean")
POOLS = ("mean", "cls")
STOP_REASONS = ("forget_at_chance", "mem_drop", "max_rounds", "no_candidates", "observer")


@dataclass
class KVWOptions:
    layers: str | tuple[int, ...] = field(default="all", metadata={
        "doc": "MLP blocks of the image encoder to edit: all, early (first half), late (second half), or block "
               "indices such as [3,4,5]"})
    unit_share: float = field(default=0.04, metadata={"above": 0, "below": 1,
        "doc": "share of the chosen blocks' hidden units weakened per round (at least 1 unit)"})
    factor: float = field(default=0.0, metadata={"min": 0,
        "doc": "multiplier of a unit's value vector (its column of c_proj) each round it is chosen, within [0, 1]"})
    max_rounds: int = field(default=5, metadata={"min": 1, "doc": "most weakening rounds"})
    score: str = field(default="mean_diff", metadata={"choices": SCORES,
        "doc": "unit contrast: mean_diff (forgotten minus kept mean write to the residual stream), standardised "
               "(difference of mean activations over their pooled std), forget_mean (forgotten images only)"})
    pool: str = field(default="mean", metadata={"choices": POOLS,
        "doc": "a unit's activation on an image: mean over all tokens, or the class token's"})
    stop_forget_acc: float | None = field(default=0.0, metadata={"min": 0, "none_ok": True,
        "doc": "stop once forgotten-domain pool accuracy <= chance + this many points (none: never)"})
    stop_mem_drop: float | None = field(default=10.0, metadata={"min": 0, "none_ok": True,
        "doc": "undo the round that drops kept-domain pool accuracy more than this many points below its start, "
               "and stop (none: no limit)"})

    def __post_init__(self) -> None:
        # Forms the metadata cannot say: a closed [0, 1], whole rounds, and a layer set or a list of indices.
        if isinstance(self.layers, list):
            self.layers = tuple(self.layers)
        if isinstance(self.layers, tuple):
            if not self.layers or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0
                                          for i in self.layers):
                raise ValueError(f"method.layers={list(self.layers)!r} is out of range for kvw: one of "
                                 f"{', '.join(LAYER_SETS)}, or a non-empty list of block indices >= 0")
        elif self.layers not in LAYER_SETS:
            raise ValueError(f"method.layers={self.layers!r} is out of range for kvw: one of "
                             f"{', '.join(LAYER_SETS)}, or a non-empty list of block indices >= 0")
        if _is_number(self.factor) and not 0 <= self.factor <= 1:
            raise ValueError(f"method.factor={self.factor!r} is out of range for kvw: a number within [0, 1]")
        if not (isinstance(self.max_rounds, int) and not isinstance(self.max_rounds, bool)):
            raise ValueError(f"method.max_rounds={self.max_rounds!r} is out of range for kvw: a whole number >= 1")


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def resolve_layers(spec: str | tuple[int, ...], n_blocks: int) -> tuple[int, ...]:
    """Block indices of a ``layers`` option for an encoder of ``n_blocks`` blocks (errors name the valid range)."""
    if spec == "all":
        return tuple(range(n_blocks))
    if spec == "early":
        return tuple(range(max(1, n_blocks // 2)))
    if spec == "late":
        return tuple(range(n_blocks // 2, n_blocks))
    bad = [i for i in spec if not 0 <= i < n_blocks]
    if bad:
        raise ValueError(f"method.layers={list(spec)!r} is out of range for kvw: the image encoder has {n_blocks} "
                         f"MLP blocks, so indices within 0..{n_blocks - 1} (or all, early, late)")
    return tuple(sorted(set(spec)))


class ScaledValues(nn.Module):
    """An MLP block's ``c_proj`` with one gain per hidden unit: weight = W · diag(gain), i.e. each value vector
    (column) scaled by its unit's gain. With every gain at 1 it computes exactly what ``c_proj`` computed."""

    def __init__(self, proj: nn.Linear, pool: str) -> None:
        super().__init__()
        self.weight = proj.weight  # the copy's own frozen tensors
        self.bias = proj.bias
        self.gain = nn.Parameter(torch.ones(proj.in_features, dtype=proj.weight.dtype, device=proj.weight.device))
        self.pool = pool
        self.captured: list[torch.Tensor] | None = None  # pooled activations, while a scoring pass records them

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.captured is not None:  # [B, T, H] (open_clip runs its blocks batch-first)
            pooled = hidden.float().mean(1) if self.pool == "mean" else hidden[:, 0].float()
            self.captured.append(pooled)
        return F.linear(hidden, self.weight * self.gain, self.bias)


@register
class KVW(Method):
    """Knowledge-vector weakening: training-free edit that scales down the MLP value vectors firing on forgotten domains."""

    name = "kvw"
    options_cls = KVWOptions
    gradient_free = True  # fitted without gradients ...
    relearnable = True  # ... but its state (the gains) is a tensor that relearning can fine-tune (adu_core.recovery)

    def __init__(self, env: RunEnv) -> None:
        super().__init__(env)
        opt = self.options
        # Never the shared model: other methods of the process (the recovery's "original") use env.clip.
        self.visual = copy.deepcopy(env.clip.visual)
        self.visual.requires_grad_(False)
        self.visual.eval()
        blocks = getattr(getattr(self.visual, "transformer", None), "resblocks", None)
        if blocks is None:
            raise ValueError("kvw needs an open_clip VisionTransformer image encoder (transformer.resblocks); "
                             f"{type(self.visual).__name__} has none")
        if not getattr(self.visual.transformer, "batch_first", True):
            raise ValueError("kvw expects open_clip's batch-first transformer blocks")
        if opt.pool == "cls" and getattr(self.visual, "pool_type", "tok") != "tok":
            raise ValueError(f"method.pool='cls' needs an encoder pooled by its class token; this one pools "
                             f"{self.visual.pool_type!r}: use method.pool=mean")
        self.layers = resolve_layers(opt.layers, len(blocks))
        # A plain dict, not a ModuleDict: the modules live (and are saved) once, inside self.visual.
        self.values: dict[str, ScaledValues] = {}
        for i in self.layers:
            proj = getattr(getattr(blocks[i], "mlp", None), "c_proj", None)
            if not isinstance(proj, nn.Linear):
                raise ValueError(f"kvw: block {i} of the image encoder has no mlp.c_proj linear layer")
            scaled = ScaledValues(proj, opt.pool)
            blocks[i].mlp.c_proj = scaled
            self.values[str(i)] = scaled  # the same module: its gain is reachable by block index
        self.n_classes = len(env.classnames)

    def train(self, mode: bool = True) -> KVW:
        super().train(mode)
        self.visual.eval()  # an edited frozen encoder: no dropout, even while its gains relearn
        return self

    def forward(self, images: torch.Tensor) -> Outputs:
        feats = normalized(self.visual(images))
        return Outputs(self.class_logits(feats), feats)

    # --- the edit -----------------------------------------------------------------------------------------------
    def gains(self) -> dict[int, torch.Tensor]:
        return {i: self.values[str(i)].gain.detach() for i in self.layers}

    def set_gains(self, gains: dict[int, torch.Tensor]) -> None:
        with torch.no_grad():
            for i, g in gains.items():
                self.values[str(i)].gain.copy_(g)

    def total_units(self) -> int:
        return sum(m.gain.numel() for m in self.values.values())

    def units_per_round(self) -> int:
        return max(1, round(self.options.unit_share * self.total_units()))

    @torch.no_grad()
    def pool_pass(self, images: torch.Tensor, mean: Sequence[float], std: Sequence[float], capture: bool = True
                  ) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        """Pooled hidden activations of the chosen blocks ([N, H] per block, float32, or {} without ``capture``)
        and the class predictions of uint8 ``images`` (centre view)."""
        env = self.env
        self.eval()
        for m in self.values.values():
            m.captured = [] if capture else None
        preds = []
        try:
            for start in range(0, len(images), self.cfg.eval_batch_size):
                x = normalize(images[start:start + self.cfg.eval_batch_size].to(env.device), mean, std)
                with env.autocast():
                    preds.append(self(x).logits.argmax(-1).cpu())
            acts = {i: torch.cat(self.values[str(i)].captured).cpu() for i in self.layers} if capture else {}
        finally:
            for m in self.values.values():
                m.captured = None
        return acts, torch.cat(preds)

    def scores(self, acts: dict[int, torch.Tensor], forget: torch.Tensor) -> dict[int, torch.Tensor]:
        """Each chosen block's unit scores (-inf for non-candidates: silent on the forgotten images, score <= 0, or
        already weakened to 0)."""
        kind = self.options.score
        out = {}
        for i, a in acts.items():
            module = self.values[str(i)]
            gain = module.gain.detach().float().cpu()
            norm = self.env.clip.visual.transformer.resblocks[i].mlp.c_proj.weight.detach().float().norm(dim=0).cpu()
            f_mean, k_mean = a[forget].mean(0), a[~forget].mean(0)
            if kind == "mean_diff":
                s = (f_mean - k_mean) * gain * norm
            elif kind == "standardised":
                pooled_sd = ((a[forget].var(0, unbiased=False) + a[~forget].var(0, unbiased=False)) / 2).sqrt()
                s = (f_mean - k_mean) / pooled_sd.clamp_min(1e-12) * gain
            else:  # forget_mean
                s = f_mean * gain * norm
            candidate = (f_mean > 0) & (s > 0) & (gain > 0)
            out[i] = torch.where(candidate, s, torch.full_like(s, -torch.inf))
        return out

    def choose(self, scores: dict[int, torch.Tensor], n: int) -> list[tuple[int, int]]:
        """The ``n`` best candidates as (block, unit), best first; ties by (block, unit) index."""
        flat = torch.cat([scores[i] for i in self.layers])
        owner = torch.cat([torch.full((scores[i].numel(),), i) for i in self.layers])
        unit = torch.cat([torch.arange(scores[i].numel()) for i in self.layers])
        order = torch.sort(flat, descending=True, stable=True).indices  # stable: equal scores keep index order
        order = order[torch.isfinite(flat[order])][:n]
        return [(int(owner[k]), int(unit[k])) for k in order]

    def accuracies(self, pred: torch.Tensor, labels: torch.Tensor, forget: torch.Tensor) -> dict[str, float]:
        """Mem, For and H (%) of class predictions, with ``forget`` marking the forgotten-domain images."""
        correct = (pred == labels).double()
        mem = float(correct[~forget].mean()) * 100.0
        fgt = 100.0 - float(correct[forget].mean()) * 100.0
        return {"mem": mem, "for": fgt, "h": h_score(mem, fgt)}

    def weaken(self, images: torch.Tensor, labels: torch.Tensor, domains: torch.Tensor, mean: Sequence[float],
               std: Sequence[float],
               observe: Callable[[int, KVW, dict], bool] | None = None) -> tuple[list[dict], dict]:
        """Run the rounds on a few-shot pool from the unedited encoder; returns (per-round records, edit record).

        ``observe(round, self, record)`` is called after each kept round (round 0 = before any edit); returning True
        stops the edit there (reason ``observer``; used to evaluate a validation part while choosing defaults).
        """
        opt = self.options
        t0 = time.perf_counter()
        labels, domains = labels.cpu(), domains.cpu()
        forget = torch.isin(domains, torch.tensor(self.env.forget_idx))
        if not forget.any() or forget.all():
            raise ValueError("kvw needs few-shot images of both forgotten and kept domains to score units")
        self.set_gains({i: torch.ones_like(g) for i, g in self.gains().items()})
        chance = 100.0 / self.n_classes
        n_units = self.units_per_round()

        def at_chance(acc: dict) -> bool:
            return opt.stop_forget_acc is not None and 100.0 - acc["for"] <= chance + opt.stop_forget_acc

        acts, pred = self.pool_pass(images, mean, std)
        start = self.accuracies(pred, labels, forget)
        records = [{"round": 0, **start, "weakened": 0, "new": 0}]
        reason = "forget_at_chance" if at_chance(start) else None
        if reason is None and observe is not None and observe(0, self, records[-1]):
            reason = "observer"
        rounds = 0
        while reason is None:
            if rounds == opt.max_rounds:
                reason = "max_rounds"
                break
            chosen = self.choose(self.scores(acts, forget), n_units)
            if not chosen:
                reason = "no_candidates"
                break
            before = {i: g.clone() for i, g in self.gains().items()}
            with torch.no_grad():
                for i, u in chosen:
                    self.values[str(i)].gain[u] *= opt.factor
            acts_new, pred = self.pool_pass(images, mean, std)
            acc = self.accuracies(pred, labels, forget)
            if opt.stop_mem_drop is not None and start["mem"] - acc["mem"] > opt.stop_mem_drop:
                self.set_gains(before)  # the margin holds for the edit that is kept
                records.append({"round": rounds + 1, **acc, "weakened": self._n_weakened(), "new": len(chosen),
                                "undone": True})
                reason = "mem_drop"
                break
            rounds += 1
            acts = acts_new
            records.append({"round": rounds, **acc, "weakened": self._n_weakened(), "new": len(chosen)})
            if at_chance(acc):
                reason = "forget_at_chance"
            elif observe is not None and observe(rounds, self, records[-1]):
                reason = "observer"
        assert reason in STOP_REASONS
        kept = [r for r in records if not r.get("undone")][-1]
        edit = {**self.edit_record(), "rounds": rounds, "stop": reason, "units_per_round": n_units,
                "chance": chance, "pool_start": start, "pool_end": {k: kept[k] for k in ("mem", "for", "h")},
                "seconds": round(time.perf_counter() - t0, 3)}
        return records, edit

    def _n_weakened(self) -> int:
        return int(sum(int((g != 1).sum()) for g in self.gains().values()))

    def edit_record(self) -> dict[str, Any]:
        """Which units of which blocks are weakened and their gains (cumulative factors), from the current state."""
        weakened, counts = {}, {}
        for i, g in self.gains().items():
            idx = torch.nonzero(g != 1).flatten()
            weakened[str(i)] = {"units": idx.tolist(), "gains": [float(v) for v in g[idx].float()]}
            counts[str(i)] = int(idx.numel())
        return {"blocks": list(self.layers), "hidden": {str(i): int(g.numel()) for i, g in self.gains().items()},
                "weakened": weakened, "count_per_block": counts, "n_weakened": int(sum(counts.values()))}

    def fit(self, trainer) -> None:
        data = trainer.data
        records, edit = self.weaken(data.images, data.labels, data.domains, data.mean, data.std)
        trainer.history.extend(records)
        trainer.history.append({"kvw_edit": edit})

    def export_visual(self) -> nn.Module:
        """A plain open_clip image encoder with the edit baked into its c_proj weights (no gains, no hooks): what
        someone holding the edited weights would have."""
        visual = copy.deepcopy(self.env.clip.visual)
        with torch.no_grad():
            for i in self.layers:
                proj = visual.transformer.resblocks[i].mlp.c_proj
                proj.weight.copy_(proj.weight * self.values[str(i)].gain.detach())
        return visual


def edit_of(run: dict) -> dict:
    """The ``kvw_edit`` record of a kvw run.json (KeyError naming the run's method when it has none)."""
    for record in reversed(run.get("history") or []):
        if "kvw_edit" in record:
            return record["kvw_edit"]
    raise KeyError(f"run of method {run.get('config', {}).get('method')!r} has no kvw_edit record in its history")


__all__ = ["KVW", "KVWOptions", "edit_of", "resolve_layers"]
