"""Several runs of one grid trained in one forward pass over the shared frozen backbone.

The backbone is frozen and identical for every run of a grid cell family (same dataset, backbone, protocol), and it
treats every image independently, so R runs can share one pass: the batch is the R runs' own batches stacked
(rows ``r*B:(r+1)*B`` are run r's), and before each prompted layer every run inserts its own prompts (and InstaPG
output) into its own rows. Everything that makes a run what it is stays per run: its few-shot set and seed, its
batches and augmentation (the very generators :class:`adu_core.train.Trainer` uses), its initialisation, its
optimizer and learning-rate schedule, its forget set and loss. The loss of the pass is the sum of the runs' losses;
since the runs share no trainable parameter, each run's gradient is exactly its own loss's gradient. So a grouped
run ends where the same run trained alone ends, up to floating-point summation order in the larger matrix products
(tested in ``tests/test_multirun.py``).

Why it pays: a paper-tier step (ViT-B/16, batch 32) is too small to keep a large GPU busy and spends much of its
time launching kernels; R runs per pass multiply the work per launch by R without changing any run's batch size.

:func:`run_group` writes each run's ``run.json`` through the code path of a run trained alone
(:func:`adu_core.train.run_experiment`'s locked body): the joint trainer leaves every run with a final epoch
checkpoint (the trainer's resume format), which that path resumes, evaluates and records, with the group's timings,
in one write. An interrupted group resumes from the runs'
checkpoints (written at most every ``checkpoint_every_s`` seconds, and at the end).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .device import resolve_device, synchronize
from .methods.base import Outputs
from .prompting import PromptedViT

# Fields in which the runs of one group may differ: each is applied per run (data and seed, forget set, loss
# switches and weights, InstaPG on/off and layers). Everything else (backbone, data set, shots, epochs, batch size,
# schedule, prompt size, precision, ...) must be equal.
PER_RUN_FIELDS = frozenset({
    "seed", "forget", "method", "instapg", "instapg_layers", "ddl", "ddl_ce", "ddl_mmd", "gamma", "lam",
    "mmd_kernel", "mmd_bandwidths",
})
GROUP_METHODS = frozenset({"adu", "baseline"})


class MultiPromptedViT(PromptedViT):
    """R :class:`PromptedViT` members sharing one frozen encoder, run as one: rows ``r*B:(r+1)*B`` use member r.

    The block loop is PromptedViT's own (inherited ``forward``); only the prompts entering each prompted layer are
    the members' own, computed by the members' own ``_layer_prompts`` on their rows.
    """

    def __init__(self, members: Sequence[PromptedViT]) -> None:
        nn.Module.__init__(self)  # PromptedViT.__init__ would create prompts of its own
        if not members:
            raise ValueError("MultiPromptedViT needs at least one member")
        first = members[0]
        if any(m.visual is not first.visual for m in members):
            raise ValueError("all members must wrap the same frozen encoder object")
        if any((m.n_ctx, m.depth) != (first.n_ctx, first.depth) for m in members):
            raise ValueError("all members must have the same prompt length and depth (the token count is shared)")
        self.visual = first.visual
        self.members = nn.ModuleList(members)
        self.n_ctx, self.depth = first.n_ctx, first.depth
        self.grad_checkpointing = any(m.grad_checkpointing for m in members)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[0] % len(self.members):
            raise ValueError(f"batch of {images.shape[0]} does not split into {len(self.members)} equal runs")
        return super().encode(images)

    def _layer_prompts(self, i: int, patches: torch.Tensor) -> torch.Tensor:
        chunks = patches.chunk(len(self.members))
        return torch.cat([m._layer_prompts(i, c) for m, c in zip(self.members, chunks, strict=True)])


class RunGroup(nn.Module):
    """R prompt methods (ADU/Baseline) evaluated in one pass: ``forward`` returns each run's :class:`Outputs`."""

    def __init__(self, methods: Sequence[nn.Module]) -> None:
        super().__init__()
        self.methods = nn.ModuleList(methods)
        self.encoder = MultiPromptedViT([m.encoder for m in methods])

    def forward(self, images: torch.Tensor) -> list[Outputs]:
        embeddings, pooled = (t.chunk(len(self.methods)) for t in self.encoder.encode(images))
        return [m.heads(e, p) for m, e, p in zip(self.methods, embeddings, pooled, strict=True)]


def fit_group(group: RunGroup, trainers: Sequence[Any], checkpoint_every_s: float = 60.0,
              progress: bool = False) -> int:
    """Train the group's runs jointly; ``trainers[r]`` is run r's :class:`adu_core.train.Trainer`.

    Each run keeps its trainer's batches, augmentation generator, optimizer, schedule, history and checkpoint file.
    Returns the epoch the group started from (after resuming).
    """
    from tqdm.auto import tqdm

    from .train import ConfigError

    methods = list(group.methods)
    if len(methods) != len(trainers):
        raise ValueError("one trainer per run")
    env = trainers[0].env
    opts = []
    for m, tr in zip(methods, trainers, strict=True):
        cfg = tr.cfg
        params = [p for p in m.parameters() if p.requires_grad]
        opts.append(torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay))
    starts = {tr._resume(m, opt) for m, tr, opt in zip(methods, trainers, opts, strict=True)}
    if len(starts) != 1:
        raise ConfigError(f"the runs of a group resume from different epochs {sorted(starts)}; group them by epoch")
    start = starts.pop()
    epochs = trainers[0].cfg.epochs
    gens = [torch.Generator(device=env.device) for _ in trainers]
    last_save = time.monotonic()
    for epoch in tqdm(range(start, epochs), desc=f"group of {len(trainers)}", disable=not progress,
                      initial=start, total=epochs, leave=False):
        for tr, opt in zip(trainers, opts, strict=True):
            for pg in opt.param_groups:
                pg["lr"] = tr.lr_at(epoch)
        batches = [tr.epoch_batches(epoch, g) for tr, g in zip(trainers, gens, strict=True)]
        n_batches = {len(b) for b in batches}
        if len(n_batches) != 1:
            raise ConfigError("the runs of a group have different numbers of batches per epoch "
                              "(different few-shot set sizes); group them by training-set size")
        group.train()
        sums: list[dict[str, torch.Tensor]] = [{} for _ in trainers]
        for step in range(n_batches.pop()):
            parts = [tr.batch(b[step], g) for tr, b, g in zip(trainers, batches, gens, strict=True)]
            with env.autocast():
                outs = group(torch.cat([p[0] for p in parts]))
            terms = [m.loss(o, p[1], p[2]) for m, o, p in zip(methods, outs, parts, strict=True)]
            for opt in opts:
                opt.zero_grad(set_to_none=True)
            torch.stack([t["loss"] for t in terms]).sum().backward()
            for opt in opts:
                opt.step()
            for run_sums, run_terms in zip(sums, terms, strict=True):
                for k, v in run_terms.items():
                    run_sums[k] = run_sums.get(k, 0) + v.detach().float()
        n = len(batches[0])
        for tr, run_sums in zip(trainers, sums, strict=True):
            record = {k: float(v) / n for k, v in run_sums.items()}
            record.update(epoch=epoch + 1, lr=tr.lr_at(epoch))
            tr.history.append(record)
        if epoch + 1 == epochs or time.monotonic() - last_save >= checkpoint_every_s:
            for m, tr, opt in zip(methods, trainers, opts, strict=True):
                tr._save(m, opt, epoch + 1)
            last_save = time.monotonic()
    return start


# --------------------------------------------------------------------------------------------------------------
# grids of run_experiment runs


def group_key(cfg) -> str:
    """Runs with equal keys can share a pass. Random-weight backbones depend on the seed, so the seed joins then."""
    d = cfg.to_dict()
    shared = {k: v for k, v in d.items() if k not in PER_RUN_FIELDS}
    if cfg.pretrained is None:
        shared["seed"] = cfg.seed
    return json.dumps(shared, sort_keys=True)


def plan_groups(cfgs: Sequence[Any], max_runs: int) -> list[list[int]]:
    """Indices of ``cfgs`` partitioned into groups of compatible runs, at most ``max_runs`` each, in input order."""
    from .methods import get_method
    from .methods.prompt import ADU

    by_key: dict[str, list[int]] = {}
    for i, cfg in enumerate(cfgs):
        alone = cfg.method not in GROUP_METHODS or not issubclass(get_method(cfg.method), ADU)
        key = f"alone:{i}" if alone else group_key(cfg)
        by_key.setdefault(key, []).append(i)
    groups = []
    for idx in by_key.values():
        groups += [idx[j:j + max_runs] for j in range(0, len(idx), max(1, max_runs))]
    return groups


def _epochs_done(ckpt: Path, cfg) -> int:
    if not ckpt.exists():
        return 0
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - an unreadable checkpoint is the single-run trainer's error to report
        return -1
    return int(state.get("epochs_done", 0)) if state.get("config_key") == cfg.key() else -1


def run_grid(cfgs: Sequence[Any], out_dirs: Sequence[str | os.PathLike], *, max_runs: int = 8,
             force: bool = False, progress: bool = True, checkpoint_every_s: float = 60.0) -> list[dict[str, Any]]:
    """Every run of ``cfgs``: compatible prompt runs trained ``max_runs`` at a time in one pass, others alone.

    Returns the runs' results (run.json contents) in input order. Runs whose run.json exists are skipped unless
    ``force``; an interrupted grid resumes.
    """
    from .train import resolve_config, run_experiment, run_lock

    if len(cfgs) != len(out_dirs):
        raise ValueError("one output folder per config")
    cfgs = [resolve_config(c) for c in cfgs]
    outs = [Path(o) for o in out_dirs]
    if force:
        for out in outs:
            (out / "run.json").unlink(missing_ok=True)
            (out / "checkpoint.pt").unlink(missing_ok=True)
    todo = [i for i, o in enumerate(outs) if not (o / "run.json").exists()]
    results: dict[int, dict[str, Any]] = {}
    # group by compatibility and by the epoch each run's checkpoint reached
    keyed = [(i, _epochs_done(outs[i] / "checkpoint.pt", cfgs[i])) for i in todo]
    for epoch in sorted({e for _, e in keyed}):
        idx = [i for i, e in keyed if e == epoch]
        for g in plan_groups([cfgs[i] for i in idx], max_runs if epoch >= 0 else 1):
            members = [idx[j] for j in g]
            if len(members) == 1:
                i = members[0]
                results[i] = run_experiment(cfgs[i], outs[i], progress=progress)
                continue
            # Another worker (engine, grid) may be training some of these runs: hold every member's run lock (in
            # path order, so that two groups never wait on each other), then train together only the runs that are
            # still missing and still at the same epoch; run_experiment re-enters the locks for the others.
            with contextlib.ExitStack() as locks:
                for i in sorted(members, key=lambda i: str(outs[i])):
                    outs[i].mkdir(parents=True, exist_ok=True)
                    locks.enter_context(run_lock(outs[i]))
                left = [i for i in members if not (outs[i] / "run.json").exists()
                        and _epochs_done(outs[i] / "checkpoint.pt", cfgs[i]) == epoch]
                if len(left) > 1:
                    for i, r in zip(left, run_group([cfgs[i] for i in left], [outs[i] for i in left],
                                                    progress=progress, checkpoint_every_s=checkpoint_every_s),
                                    strict=True):
                        results[i] = r
                for i in members:
                    if i not in results:
                        results[i] = run_experiment(cfgs[i], outs[i], progress=progress)
    for i, out in enumerate(outs):
        if i not in results:
            results[i] = json.loads((out / "run.json").read_text())
    return [results[i] for i in range(len(outs))]


def run_group(cfgs: Sequence[Any], out_dirs: Sequence[str | os.PathLike], *, progress: bool = True,
              checkpoint_every_s: float = 60.0) -> list[dict[str, Any]]:
    """Train compatible runs (see :func:`group_key`) in one pass, then evaluate and record each as a single run."""
    from .methods import get_method
    from .train import ConfigError, Trainer, _run_locked, build_env, build_train_data, resolve_config, run_lock

    cfgs = [resolve_config(c) for c in cfgs]
    outs = [Path(o) for o in out_dirs]
    if len({group_key(c) for c in cfgs}) != 1:
        raise ConfigError("these runs cannot share a pass: they differ in more than "
                          f"{', '.join(sorted(PER_RUN_FIELDS))} (or in seed, with a random-weight backbone)")
    t0 = time.perf_counter()
    device = resolve_device(cfgs[0].device)
    ds, env0 = build_env(cfgs[0], device)  # one frozen backbone and text classifier for the whole group
    data_by_seed: dict[int, Any] = {}
    trainers, methods = [], []
    for cfg, out in zip(cfgs, outs, strict=True):
        env = dataclasses.replace(env0, cfg=cfg, forget_idx=tuple(ds.domains.index(d) for d in cfg.forget))
        if cfg.seed not in data_by_seed:
            data_by_seed[cfg.seed] = build_train_data(cfg, ds, env, progress)[0]
        torch.manual_seed(cfg.seed)  # as run_experiment: the initialisation depends on the seed only
        methods.append(get_method(cfg.method)(env).to(device))
        out.mkdir(parents=True, exist_ok=True)
        trainers.append(Trainer(cfg, env, data_by_seed[cfg.seed], out / "checkpoint.pt", progress=False))
    group = RunGroup(methods)
    t_setup = time.perf_counter()
    start = fit_group(group, trainers, checkpoint_every_s=checkpoint_every_s, progress=progress)
    synchronize(device)
    train_s = time.perf_counter() - t_setup
    del group, methods, trainers, data_by_seed, env0, env
    if device.type == "cuda":
        torch.cuda.empty_cache()
    timings = {"train_s": train_s / len(cfgs), "resumed_from_epoch": start or None,
               "multirun": {"runs": len(cfgs), "group_train_s": train_s, "group_setup_s": t_setup - t0}}
    results = []
    for cfg, out in zip(cfgs, outs, strict=True):
        # Evaluation only (the final checkpoint is resumed). run.json gets the group's timings in its one write:
        # another engine's worker reads it without the lock the moment it exists.
        with run_lock(out):
            results.append(_run_locked(cfg, out, False, progress, timings=timings))
    return results
