"""Run one experiment: data, backbone, method, training (checkpointed, resumable), evaluation, run.json.

``run_experiment(cfg, out_dir)`` is the one entry point the CLI, the notebooks and the benchmarks share. A run whose
``run.json`` exists is returned as is unless ``force``; an interrupted run resumes from its last epoch checkpoint.
``run_folder(root, cfg)`` is where a run lives in a results store (the layout of :func:`adu_core.results.run_dir`).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from . import evaluate as ev
from .backbones import load_clip
from .config import RunConfig
from .data import get_dataset
from .data.tensor_cache import cached_images
from .device import resolve_device
from .full_image import decode_full, random_resized_crop_full
from .methods import RunEnv, get_method
from .methods.base import make_options
from .pipeline import balanced_batches, normalize, random_batches, random_resized_crop_flip
from .pseudo_labels import assign_domains
from .results import SCHEMA, overrides_of, provenance, read_run, run_dir, write_json_atomic
from .text import text_features


class ConfigError(ValueError):
    """A run that cannot be set up as asked (bad domain, method, option or device)."""


@dataclass
class TrainData:
    images: torch.Tensor  # uint8 [N, 3, S, S], on the training device when it fits
    labels: torch.Tensor
    domains: torch.Tensor  # domain index per image used in training (pseudo-labels where labels are scarce)
    true_domains: torch.Tensor  # the real domain index (evaluation only)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    full_images: torch.Tensor | None = None  # uint8 [N, 3, L, L] whole pictures (augment="full_image")
    full_valid: torch.Tensor | None = None  # [N, 2] their heights and widths in the canvas


def resolve_config(cfg: RunConfig) -> RunConfig:
    """Validate names and ranges and apply the switches the method implies, so run.json records what actually ran.

    A forget name that is an alias (``painting`` on PACS) is accepted and reported once on stderr with the domain it
    means, so nobody forgets another domain than the one they think.
    """
    try:
        cfg.validate()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    try:
        method = get_method(cfg.method)
    except KeyError as err:
        raise ConfigError(err.args[0]) from None
    try:
        make_options(method, cfg.method_options)  # names and ranges of the method's own options, before any work
    except (TypeError, ValueError) as err:
        raise ConfigError(str(err)) from None
    try:
        ds = get_dataset(cfg.dataset, root=cfg.data_root)
    except KeyError as err:
        raise ConfigError(err.args[0]) from None
    if cfg.sampler == "balanced" and cfg.batch_size < len(ds.domains):
        raise ConfigError(f"batch_size={cfg.batch_size} is out of range: at least {len(ds.domains)} for "
                          f"{cfg.dataset} (domain-balanced batches hold every domain)")
    if cfg.warmup_epochs > cfg.epochs:
        raise ConfigError(f"warmup_epochs={cfg.warmup_epochs} is out of range: at most epochs ({cfg.epochs})")
    if cfg.instapg_layers is not None and any(not -cfg.prompt_depth <= i < cfg.prompt_depth
                                              for i in cfg.instapg_layers):
        raise ConfigError(f"instapg_layers={list(cfg.instapg_layers)} is out of range: layer indices within "
                          f"-{cfg.prompt_depth}..{cfg.prompt_depth - 1} (prompt_depth is {cfg.prompt_depth})")
    forget = tuple(ds.check_domains(cfg.forget))
    _note_aliases(cfg.forget, forget, cfg.dataset)
    if not forget:
        raise ConfigError(f"nothing to forget: pass --forget with one or more of {', '.join(ds.domains)}")
    if set(forget) == set(ds.domains):
        raise ConfigError(f"cannot forget every domain of {cfg.dataset} ({', '.join(ds.domains)}): "
                          "keep at least one, since Mem is measured on the kept domains")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda was asked for but no CUDA GPU is visible; use --set device=cpu or auto")
    if cfg.precision not in ("auto", "bf16", "fp16", "fp32"):
        raise ConfigError(f"precision must be auto, bf16, fp16 or fp32, not {cfg.precision!r}")
    if cfg.precision == "fp16" and not torch.cuda.is_available():
        raise ConfigError("precision=fp16 needs a CUDA GPU (it uses loss scaling); use bf16 or fp32 on the CPU")
    return replace(cfg, forget=tuple(sorted(forget)), **method.config_overrides)


def _note_aliases(given: tuple[str, ...], canonical: tuple[str, ...], dataset: str) -> None:
    from .data.base import canonical_id

    if len(given) == len(canonical):
        renamed = [f"{g!r} means domain {c!r}" for g, c in zip(given, canonical, strict=True)
                   if canonical_id(g) != c]
        if renamed:
            print(f"adu: note: on {dataset}, " + "; ".join(renamed), file=sys.stderr)


def run_folder(root: str | os.PathLike, cfg: RunConfig) -> Path:
    """The folder of ``cfg``'s run under the results store ``root`` (``adu run``'s layout): the switches its method
    implies (e.g. the Baseline's ``ddl=False``) are part of the method, not overrides of the tier's defaults."""
    return run_dir(root, cfg, get_method(cfg.method).config_overrides)


def run_experiment(cfg: RunConfig, out_dir: str | os.PathLike, force: bool = False,
                   progress: bool = True) -> dict[str, Any]:
    cfg = resolve_config(cfg)
    out = Path(out_dir)
    result_path = out / "run.json"
    if result_path.exists() and not force:
        return read_run(result_path)
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out):  # parallel workers on one results store: the second waits, then finds run.json
        if result_path.exists() and not force:
            return read_run(result_path)
        return _run_locked(cfg, out, force, progress)


# Run folders whose lock this thread holds, with their nesting depth: a group of runs locks every member before
# training them together, and the members' own run_experiment calls then re-enter (a second flock on a new open
# file of the same folder would wait for ever on the first).
_held_locks: dict[tuple[int, str], int] = {}


@contextlib.contextmanager
def run_lock(out: Path):
    """Exclusive lock on a run folder (POSIX flock; released if the process dies), re-entrant within a thread.

    Processes and threads exclude one another, on one machine or on a shared filesystem with flock support (NFSv4,
    Lustre mounted with ``-o flock``), whatever engine started them.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking, runs are still atomic
        yield
        return
    key = (threading.get_ident(), os.path.realpath(out))
    if key in _held_locks:
        _held_locks[key] += 1
        try:
            yield
        finally:
            _held_locks[key] -= 1
        return
    with open(out / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        _held_locks[key] = 1
        try:
            yield
        finally:
            del _held_locks[key]
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_locked(cfg: RunConfig, out: Path, force: bool, progress: bool,
                timings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train (or resume) and evaluate one run under its lock; ``timings`` replace the measured ones in run.json (a
    run trained in a group records the group's). run.json is written once: readers that skip the lock see it whole."""
    result_path = out / "run.json"
    ckpt_path = out / "checkpoint.pt"
    if force:
        ckpt_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    ds, env = build_env(cfg, device)
    clip = env.clip
    data, train_samples, pseudo_report = build_train_data(cfg, ds, env, progress)
    test_samples = ev.test_subset(ds.samples("test"), cfg.max_test_per_domain)
    test_imgs = cached_images(ds, test_samples, env.image_size, desc="decode test", progress=progress)
    torch.manual_seed(cfg.seed)
    try:
        method = get_method(cfg.method)(env).to(device)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    trainer = Trainer(cfg, env, data, ckpt_path, progress)
    t_setup = time.perf_counter()
    method.fit(trainer)
    t_train = time.perf_counter()
    metrics = ev.evaluate(method, env, data, test_imgs, test_samples, cfg)
    if pseudo_report:
        metrics["pseudo_labels"] = pseudo_report
    t_eval = time.perf_counter()
    from .device import precision_note

    result = {
        "schema": SCHEMA,
        "config": cfg.to_dict(),
        "overrides": overrides_of(cfg, method.config_overrides),
        "metrics": metrics,
        "history": trainer.history,
        "n_train": len(train_samples),
        "n_test": len(test_samples),
        "data": ds.data_record(len(test_samples)),  # layout read, split protocol (the authors' or ours), test size
        "timings": {"setup_s": t_setup - t0, "train_s": t_train - t_setup, "eval_s": t_eval - t_train,
                    "total_s": t_eval - t0, "resumed_from_epoch": trainer.resumed_from, **(timings or {})},
        "provenance": {**provenance(str(device), clip.adu_weights, ds.manifest_sha256()),
                       "precision": precision_name(env.autocast_dtype),
                       "precision_note": precision_note(cfg.precision, env.autocast_dtype, device)},
    }
    if method.trains:  # before run.json, which marks the run finished: a killed run never lacks its state
        save_atomic(method.trainable_state(), out / "trained.pt")
    write_json_atomic(result_path, result)
    ckpt_path.unlink(missing_ok=True)
    return result


def build_env(cfg: RunConfig, device: torch.device) -> tuple[Any, RunEnv]:
    """Dataset and run environment (frozen CLIP, class text features, domain layout) for a resolved config.

    Seeds first: a randomly initialised backbone is then the same model in every process that builds this config.
    """
    _seed_everything(cfg.seed)
    ds = get_dataset(cfg.dataset, root=cfg.data_root)
    clip, _, _, tokenizer = load_clip(cfg.backbone, cfg.pretrained, device=device)
    clip.requires_grad_(False)
    mean, std = _norm_stats(cfg, clip)
    dom_index = {d: i for i, d in enumerate(ds.domains)}
    env = RunEnv(
        cfg=cfg, clip=clip, tokenizer=tokenizer, classnames=tuple(ds.classnames),
        text_features=text_features(clip, tokenizer, ds.classnames, cfg.templates, device),
        domains=tuple(ds.domains), forget_idx=tuple(dom_index[d] for d in cfg.forget), device=device,
        autocast_dtype=autocast_dtype(cfg, device), mean=mean, std=std,
        image_size=int(clip.visual.image_size[0]), domain_names=tuple(ds.domain_names),
    )
    return ds, env


def build_train_data(cfg: RunConfig, ds, env: RunEnv, progress: bool = True) -> tuple[TrainData, list, dict]:
    """A run's few-shot training set (decoded once; on the device when it fits), its samples and the pseudo-label
    report. Shared by :func:`run_experiment` and the multi-run trainer (:mod:`adu_core.multirun`)."""
    device = env.device
    train_samples = ds.few_shot(cfg.shots, cfg.seed)
    train_imgs = cached_images(ds, train_samples, env.image_size, desc=f"decode few-shot k{cfg.shots}",
                               progress=progress)
    dom_index = {d: i for i, d in enumerate(ds.domains)}
    true_domains = torch.tensor([dom_index[s.domain] for s in train_samples], device=device)
    train_domains, pseudo_report = assign_domains(cfg, env.clip, env.tokenizer, train_imgs, true_domains, env.mean,
                                                  env.std, ds.domain_names, ds.classnames, device)
    full = (None, None)
    if cfg.augment == "full_image":  # the released code's crops are taken from the whole picture
        full = decode_full(ds, train_samples, env.image_size)
    data = TrainData(
        images=_maybe_to(train_imgs, device),
        labels=torch.tensor([s.label for s in train_samples], device=device),
        domains=train_domains, true_domains=true_domains, mean=env.mean, std=env.std,
        full_images=None if full[0] is None else _maybe_to(full[0], device), full_valid=full[1],
    )
    return data, train_samples, pseudo_report


def load_trained(run_dir: str | os.PathLike, device: str | None = None) -> tuple[Any, Any, dict]:
    """Rebuild the method of a finished run with its trained state: (method, dataset, run.json)."""
    run_dir = Path(run_dir)
    run = read_run(run_dir / "run.json")
    cfg = RunConfig.from_dict(run["config"])
    if device is not None:
        cfg = replace(cfg, device=device)
    ds, env = build_env(cfg, resolve_device(cfg.device))
    torch.manual_seed(cfg.seed)
    method = get_method(cfg.method)(env).to(env.device)
    state = run_dir / "trained.pt"
    if method.trains:
        if not state.exists():
            raise FileNotFoundError(f"{state} is missing: rerun this run with --force to keep its trained state")
        method.load_trainable_state(torch.load(state, map_location=env.device, weights_only=True))
    return method.eval(), ds, run


class Trainer:
    """The shared gradient loop: SGD, warm-up + cosine per epoch, domain-balanced (or random) batches, device
    augmentation.

    Every random number of an epoch comes from generators seeded by (seed, epoch), so a run resumed from its
    epoch checkpoint finishes with exactly the metrics of an uninterrupted one.
    """

    def __init__(self, cfg: RunConfig, env: RunEnv, data: TrainData, ckpt_path: Path, progress: bool) -> None:
        self.cfg, self.env, self.data, self.ckpt_path, self.progress = cfg, env, data, ckpt_path, progress
        self.history: list[dict[str, float]] = []
        self.resumed_from: int | None = None

    def lr_at(self, epoch: int) -> float:
        cfg = self.cfg
        if epoch < cfg.warmup_epochs:
            return cfg.warmup_lr
        if cfg.scheduler == "constant":
            return cfg.lr
        if cfg.scheduler != "cosine":
            raise ConfigError(f"scheduler must be cosine or constant, not {cfg.scheduler!r}")
        span = max(1, cfg.epochs - cfg.warmup_epochs)
        return 0.5 * cfg.lr * (1 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / span))

    def epoch_generator(self, epoch: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)

    def fit_gradient(self, method) -> None:
        cfg, env = self.cfg, self.env
        params = [p for p in method.parameters() if p.requires_grad]
        if not params:
            raise ConfigError(f"method {cfg.method!r} has no trainable parameters")
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        # fp16 (GPUs without bf16, e.g. T4) needs loss scaling; bf16 and fp32 do not.
        scaler = torch.amp.GradScaler(env.device.type, enabled=env.autocast_dtype == torch.float16)
        start = self._resume(method, opt)
        last_save = time.monotonic()
        device_gen = torch.Generator(device=env.device)
        bar = tqdm(range(start, cfg.epochs), desc=f"{cfg.method} {'+'.join(cfg.forget)} s{cfg.seed}",
                   disable=not self.progress, initial=start, total=cfg.epochs, leave=False)
        for epoch in bar:
            for group in opt.param_groups:
                group["lr"] = self.lr_at(epoch)
            batches = self.epoch_batches(epoch, device_gen)
            method.train()
            sums: dict[str, torch.Tensor] = {}
            for idx in batches:
                terms = self.step(method, opt, idx, device_gen, scaler)
                for k, v in terms.items():  # accumulate on the device: no host sync inside the epoch
                    sums[k] = sums.get(k, 0) + v.detach().float()
            record = {k: float(v) / len(batches) for k, v in sums.items()}
            record.update(epoch=epoch + 1, lr=self.lr_at(epoch))
            self.history.append(record)
            bar.set_postfix(loss=f"{record['loss']:.3f}")
            due = time.monotonic() - last_save >= cfg.checkpoint_interval_s
            if due and epoch + 1 < cfg.epochs:  # the last epoch's state goes straight into run.json/trained.pt
                self._save(method, opt, epoch + 1)
                last_save = time.monotonic()

    def epoch_batches(self, epoch: int, device_gen: torch.Generator) -> list[torch.Tensor]:
        """The epoch's batches of indices (domain-balanced, or from a random permutation: ``cfg.sampler``), already on
        the images' device (one copy per epoch), and ``device_gen`` reseeded for the epoch's augmentation. Shared by
        :meth:`fit_gradient` and the multi-run trainer (:mod:`adu_core.multirun`), so both draw the same batches."""
        device_gen.manual_seed(self.cfg.seed * 1_000_003 + epoch)
        if self.cfg.sampler == "random":
            batches = random_batches(len(self.data.labels), self.cfg.batch_size, self.epoch_generator(epoch))
        else:
            batches = balanced_batches(self.data.domains.cpu(), self.cfg.batch_size, self.epoch_generator(epoch))
        return list(torch.stack(batches).to(self.data.images.device).unbind())

    def step(self, method, opt: torch.optim.Optimizer, idx: torch.Tensor, device_gen: torch.Generator,
             scaler: torch.amp.GradScaler | None = None) -> dict[str, torch.Tensor]:
        """One optimisation step on the batch ``idx``; returns the loss terms (still on the device)."""
        images, labels, domains = self.batch(idx, device_gen)
        with self.env.autocast():
            out = method(images)
        terms = method.loss(out, labels, domains)
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            terms["loss"].backward()
            opt.step()
        else:
            scaler.scale(terms["loss"]).backward()
            scaler.step(opt)
            scaler.update()
        return terms

    def batch(self, idx: torch.Tensor, device_gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images (normalised, augmented on the device), labels and domains of one batch of indices."""
        data = self.data
        if self.cfg.augment == "full_image":
            if data.full_images is None:
                raise ConfigError("augment=full_image needs the whole training pictures (build_train_data decodes "
                                  "them for this setting); rebuild the training data with it")
            canvas = data.full_images[idx].to(self.env.device, non_blocking=True).float() / 255.0
            crops = random_resized_crop_full(canvas, data.full_valid[idx.cpu()], device_gen,
                                             data.images.shape[-1], self.cfg.crop_scale)
            images = normalize(crops, data.mean, data.std)
        else:
            images = normalize(data.images[idx].to(self.env.device, non_blocking=True), data.mean, data.std)
            images = random_resized_crop_flip(images, device_gen, self.cfg.crop_scale)
        return images, data.labels[idx], data.domains[idx]

    def _save(self, method, opt, epochs_done: int) -> None:
        save_atomic({"config_key": self.cfg.key(), "epochs_done": epochs_done, "state": method.trainable_state(),
                     "optimizer": opt.state_dict(), "history": self.history}, self.ckpt_path)

    def _resume(self, method, opt) -> int:
        if not self.ckpt_path.exists():
            return 0
        try:
            ckpt = torch.load(self.ckpt_path, map_location=self.env.device, weights_only=True)
        except Exception as err:  # noqa: BLE001 - e.g. a file that is not a checkpoint: name it and the way out
            raise ConfigError(f"{self.ckpt_path} is not a readable checkpoint ({type(err).__name__}); "
                              "delete it or rerun with --force") from err
        if ckpt.get("config_key") != self.cfg.key():
            raise ConfigError(f"{self.ckpt_path} was written by a different configuration; "
                              "delete it or rerun with --force to start over")
        try:
            method.load_trainable_state(ckpt["state"])
        except ValueError as err:
            raise ConfigError(f"{self.ckpt_path}: {err}; delete it or rerun with --force") from None
        opt.load_state_dict(ckpt["optimizer"])
        self.history = list(ckpt["history"])
        self.resumed_from = int(ckpt["epochs_done"])
        return self.resumed_from


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temporary file beside ``path``, then rename: ``path`` is whole or absent, never half-written."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic units (AVX512-BF16 or AMX), where bf16 autocast runs faster than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def precision_name(dtype: torch.dtype | None) -> str:
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")


def autocast_dtype(cfg: RunConfig, device: torch.device) -> torch.dtype | None:
    """The mixed-precision dtype of ``cfg.precision`` on ``device`` (None: fp32). ``auto`` is bf16 on a GPU that
    computes it natively (compute capability 8.0 on; ``torch.cuda.is_bf16_supported()`` also counts emulation, e.g.
    on a T4), fp16 with loss scaling below that, and bf16 on a CPU with bf16 units, else fp32."""
    from .device import native_bf16

    if cfg.precision == "auto" and device.type == "cuda":
        return torch.bfloat16 if native_bf16(device) else torch.float16
    if cfg.precision == "auto" and device.type == "cpu":
        return torch.bfloat16 if cpu_has_bf16() else None
    if cfg.precision == "bf16":
        return torch.bfloat16
    if cfg.precision == "fp16":
        if device.type != "cuda":
            raise ConfigError("precision=fp16 needs a CUDA GPU; use bf16 or fp32 on the CPU")
        return torch.float16
    return None


def _norm_stats(cfg: RunConfig, clip) -> tuple[tuple[float, ...], tuple[float, ...]]:
    norm = getattr(clip.visual, "preprocess_cfg", None) or {}
    return tuple(norm.get("mean", ev.CLIP_MEAN)), tuple(norm.get("std", ev.CLIP_STD))


def _maybe_to(images: torch.Tensor, device: torch.device, budget: float = 0.25) -> torch.Tensor:
    """Keep the decoded training set on the GPU when it takes under ``budget`` of its memory."""
    if device.type != "cuda":
        return images
    free, _ = torch.cuda.mem_get_info(device)
    return images.to(device) if images.numel() < budget * free else images.pin_memory()


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
