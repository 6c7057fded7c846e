"""`python -m benchmarks.bench`: training and evaluation throughput of the project's path against a naive reference
loop.

Both paths train the same ADU model (deep prompts + InstaPG + DDL, paper settings clamped to the model's depth) in
one process, interleaved, repeated; the figures are medians over the repeats.

* **naive** is written the way the public prompt-learning code (Dassl/CoOp/PromptSRC family) trains: fp32, batch 4,
  every image decoded from a JPEG file at every step (PIL open + torchvision RandomResizedCrop/flip/normalise in a
  ``DataLoader`` with Dassl's 4 workers), attention in explicit matrix products (PyTorch's ``math`` SDPA backend,
  what those code bases ran before fused attention existed), ``.item()`` on every loss term and the batch accuracy
  at every step. Evaluation: batches of 100 decoded from files, fp32, ``no_grad``.
* **ours** is the project's own trainer, :meth:`adu_core.train.Trainer.fit_gradient`, timed over whole epochs
  (checkpoint save included): images decoded once into uint8 tensors that live on the device, augmentation on the
  device, bf16 autocast on CUDA, fused scaled-dot-product attention, large domain-balanced batches, no host
  synchronisation inside the step, optionally ``torch.compile``. Evaluation: :func:`adu_core.evaluate.predict`
  (large inference-mode batches from the uint8 tensor).

On a GPU the default model is ViT-B/16 at 224 px (random weights: speed does not depend on their values) and the
report adds the achieved TFLOP/s against the device's bf16 peak. FLOPs are counted by PyTorch's FlopCounterMode on
the real step (forward, plus the backward pass autograd actually runs: gradients of activations through the frozen
backbone and of the trainable prompt/InstaPG/head weights; attention is counted through the math backend because
the counter does not know every fused kernel). On CPU the default model is the tiny ``adu-tiny`` (ratio only).

This module imports the library (``adu_core``) and is never imported by it; run it from the repository root
(``python -m benchmarks.bench --help``, or ``python benchmarks/bench.py --help``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from adu_core.backbones import load_clip
from adu_core.config import RunConfig
from adu_core.data.synthetic import SyntheticDataset
from adu_core.device import resolve_device, synchronize
from adu_core.evaluate import predict
from adu_core.methods import RunEnv, get_method
from adu_core.multirun import RunGroup, fit_group
from adu_core.train import TrainData, Trainer, autocast_dtype

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets; matched on the device name in
# order, first match wins. T4 and V100 have no bf16 tensor cores: their fp16 peak is given, and bf16 runs slowly.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.4), ("H200", 989.4), ("H20", 148.0),
    ("GH200", 989.4), ("B200", 2250.0), ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("L40", 181.0),
    ("L4", 121.0), ("A10G", 70.0), ("A10", 125.0), ("A6000", 154.8), ("RTX 4090", 165.2), ("RTX 3090", 71.0),
    ("T4", 65.0), ("V100", 125.0),
)

# ATen ops that make the host wait for the device on CUDA (a value or a data-dependent shape must come back).
SYNC_OPS = frozenset({
    "aten._local_scalar_dense", "aten.nonzero", "aten.nonzero_numpy", "aten.masked_select", "aten._unique",
    "aten._unique2", "aten.unique_dim", "aten.unique_consecutive", "aten.unique_dim_consecutive", "aten.is_nonzero",
    "aten.equal", "aten.allclose",
})


class HostSyncCounter(TorchDispatchMode):
    """Records the ops that would stall a CUDA stream waiting for the host, on any device (so tests run on CPU).

    Flags :data:`SYNC_OPS`, boolean-mask indexing (``x[mask]``, which computes ``nonzero``),
    ``repeat_interleave`` without ``output_size``, and copies from an accelerator to the CPU.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func.overloadpacket).replace("aten::", "aten.")
        if not name.startswith("aten."):
            name = f"aten.{func.overloadpacket.__name__}"
        if name in SYNC_OPS:
            self.ops.append(name)
        elif name in ("aten.index", "aten.index_put", "aten.index_put_", "aten._index_put_impl_"):
            indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
            if any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices or ()):
                self.ops.append(f"{name}[bool mask]")
        elif name == "aten.repeat_interleave" and kwargs.get("output_size") is None and len(args) < 4:
            self.ops.append(name)
        elif name in ("aten._to_copy", "aten.copy_"):
            src = args[1] if name == "aten.copy_" else args[0]
            dst_dev = kwargs.get("device") if name == "aten._to_copy" else args[0].device
            if isinstance(src, torch.Tensor) and src.device.type != "cpu" and dst_dev is not None \
                    and torch.device(dst_dev).type == "cpu":
                self.ops.append(f"{name}[device->cpu]")
        return func(*args, **kwargs)

class LiveMemoryTracker(TorchDispatchMode):
    """Peak bytes of tensor storages allocated while active and still alive: ``max_memory_allocated`` on any device.

    Every op's outputs are recorded by storage (views count once) with a weak reference, so freed tensors drop out;
    the peak is taken after every op. Not counted: storages that existed before (weights, the data set), kernels'
    private workspaces, the caching allocator's rounding and the CUDA context.
    """

    def __init__(self) -> None:
        super().__init__()
        from torch.multiprocessing.reductions import StorageWeakRef

        self._ref = StorageWeakRef
        self._preexisting: set[int] = set()
        self.live: dict[int, tuple[Any, int]] = {}
        self.current = 0
        self.peak = 0

    def ignore(self, tensors: Sequence[torch.Tensor]) -> LiveMemoryTracker:
        """Storages alive before the measured region (they are not allocations of it)."""
        self._preexisting |= {t.untyped_storage().data_ptr() for t in tensors}
        return self

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        flat = out if isinstance(out, tuple | list) else (out,)
        for t in flat:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                storage = t.untyped_storage()
                ptr, nbytes = storage.data_ptr(), storage.nbytes()
                if nbytes and ptr not in self._preexisting:
                    known = self.live.get(ptr)
                    if known is None or known[0].expired():
                        self.live[ptr] = (self._ref(storage), nbytes)
        dead = [k for k, (ref, _) in self.live.items() if ref.expired()]
        for k in dead:
            del self.live[k]
        self.current = sum(n for _, n in self.live.values())
        self.peak = max(self.peak, self.current)
        return out


def peak_bf16_tflops(device: torch.device) -> tuple[float | None, str]:
    """(dense bf16 peak TFLOP/s, device name); None when unknown (CPU, or a GPU not in the table)."""
    if device.type != "cuda":
        return None, _cpu_name()
    name = torch.cuda.get_device_name(device)
    for key, peak in PEAK_BF16_TFLOPS:
        if key in name:
            return peak, name
    return None, name


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({torch.get_num_threads()} threads)"
    return f"cpu ({torch.get_num_threads()} threads)"


# --------------------------------------------------------------------------------------------------------------
# set-up shared by both paths


@dataclass
class BenchOptions:
    """What the benchmark measures; every field is a command-line flag."""

    model: str = "auto"  # open_clip architecture; auto = ViT-B-16 on CUDA, adu-tiny on CPU
    device: str = "auto"
    batch: int = 32  # our domain-balanced batch (the paper tier's batch_size)
    steps: int = 65  # our steps per timed epoch (Office-Home: 2,080 few-shot images / 32 = 65)
    naive_batch: int = 4
    naive_steps: int = 60  # naive steps per timed repeat
    repeats: int = 3
    workers: int = -1  # naive DataLoader workers; -1 = Dassl's default 4, capped by the CPU count
    file_px: int = 0  # side of the naive path's JPEG files; 0 = 1.5 x the model's input size (at least 64)
    compile: bool = False
    precision: str = "auto"  # auto = bf16 on CUDA, fp32 on CPU (as the trainer)
    eval_images: int = 0  # 0 = 4 eval batches
    eval_batch: int = 256
    eval: bool = True
    runs: int = 0  # >1: also time R runs trained in one pass against R runs one after another
    n_classes: int = 65  # Office-Home
    seed: int = 0
    peak_tflops: float | None = None  # override the device's bf16 peak


def bench_config(model: str, layers: int, batch: int, precision: str = "auto", **overrides: Any):
    """The paper tier's ADU settings (8 prompt tokens, InstaPG, DDL), prompt depth clamped to the encoder."""
    return RunConfig(dataset="synthetic", forget=("d1",), method="adu", backbone=model, batch_size=batch,
                     epochs=1, warmup_epochs=0, prompt_depth=min(9, layers - 1), precision=precision, **overrides)


def bench_env(clip, tokenizer, cfg, device: torch.device, n_classes: int, n_domains: int = 4, seed: int = 0):
    """A RunEnv over ``n_classes`` random unit text features and ``n_domains`` domains (speed ignores values)."""
    gen = torch.Generator().manual_seed(seed)
    text = torch.nn.functional.normalize(torch.randn(n_classes, clip.text_projection.shape[1], generator=gen), dim=-1)
    return RunEnv(cfg=cfg, clip=clip, tokenizer=tokenizer, classnames=tuple(f"c{i}" for i in range(n_classes)),
                  text_features=text.to(device), domains=tuple(f"d{i}" for i in range(n_domains)),
                  forget_idx=tuple(sorted(int(d[1:]) for d in cfg.forget)),
                  device=device, autocast_dtype=autocast_dtype(cfg, device),
                  mean=tuple(clip.visual.preprocess_cfg["mean"]), std=tuple(clip.visual.preprocess_cfg["std"]),
                  image_size=int(clip.visual.image_size[0]))


def make_method(env, seed: int = 0):
    torch.manual_seed(seed)
    return get_method(env.cfg.method)(env).to(env.device)


def synthetic_train_data(n: int, size: int, n_domains: int, n_classes: int, device: torch.device, seed: int = 0,
                         mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.25, 0.25, 0.25)):
    """uint8 images on ``device`` with balanced domains and random labels (content does not change speed)."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)
    domains = (torch.arange(n) % n_domains).to(device)
    return TrainData(images=images.to(device), labels=torch.randint(0, n_classes, (n,), generator=gen).to(device),
                     domains=domains, true_domains=domains, mean=tuple(mean), std=tuple(std))


def write_image_files(folder: Path, n: int, px: int, seed: int = 0) -> list[Path]:
    """``n`` JPEG files of ``px`` x ``px`` (textured synthetic renders, JPEG quality 90), like a dataset on disk."""
    ds = SyntheticDataset(image_size=px, seed=seed, n_train=max(1, math.ceil(n / 24)))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, sample in enumerate(ds.samples("train")[:n]):
        path = folder / f"{i:05d}.jpg"
        ds.open_image(sample).save(path, quality=90)
        paths.append(path)
    return paths


class FileImages:
    """Dassl-style dataset: ``(transform(PIL.open(path)), label, domain)``, decoded at every access."""

    def __init__(self, paths: Sequence[Path], length: int, n_classes: int, n_domains: int, transform: Callable):
        self.paths, self.length, self.transform = list(paths), length, transform
        self.n_classes, self.n_domains = n_classes, n_domains

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        from PIL import Image

        with Image.open(self.paths[i % len(self.paths)]) as im:
            image = im.convert("RGB")
        return self.transform(image), (i * 7) % self.n_classes, i % self.n_domains


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak(device: torch.device) -> int | None:
    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None


@contextlib.contextmanager
def math_attention() -> Iterator[None]:
    """Attention as explicit matrix products (no fused kernel), as in pre-SDPA code."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel([SDPBackend.MATH]):
        yield


# --------------------------------------------------------------------------------------------------------------
# the two training paths


def ours_epoch(method, env, data, cfg, ckpt_dir: Path) -> float:
    """Seconds of one epoch of the project's trainer (``cfg.epochs`` must be 1)."""
    ckpt = ckpt_dir / "checkpoint.pt"
    ckpt.unlink(missing_ok=True)
    trainer = Trainer(cfg, env, data, ckpt, progress=False)
    synchronize(env.device)
    t0 = time.perf_counter()
    trainer.fit_gradient(method)
    synchronize(env.device)
    elapsed = time.perf_counter() - t0
    ckpt.unlink(missing_ok=True)
    return elapsed


class NaiveTrainer:
    """The reference loop: file decoding in a DataLoader, fp32, math attention, ``.item()`` every step."""

    def __init__(self, method, env, loader: torch.utils.data.DataLoader, lr: float = 0.0025) -> None:
        self.method, self.env = method, env
        params = [p for p in method.parameters() if p.requires_grad]
        self.opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)
        self.loader = loader
        self.it = iter(loader)
        self.meters: dict[str, list[float]] = {}

    def _next(self):
        try:
            return next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            return next(self.it)

    def steps(self, n: int) -> tuple[float, int]:
        """Run ``n`` steps; returns (seconds, images)."""
        device, method, images_done = self.env.device, self.method, 0
        method.train()
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(n):
            images, labels, domains = self._next()
            images, labels, domains = images.to(device), labels.to(device), domains.to(device)
            with math_attention():
                out = method(images)
                terms = method.loss(out, labels, domains)
                self.opt.zero_grad()
                terms["loss"].backward()
                self.opt.step()
            summary = {k: v.item() for k, v in terms.items()}  # Dassl's loss_summary
            summary["acc"] = (out.logits.argmax(-1) == labels).float().mean().item() * 100
            for k, v in summary.items():
                self.meters.setdefault(k, []).append(v)
            images_done += len(images)
        synchronize(device)
        return time.perf_counter() - t0, images_done


def naive_eval(method, env, loader) -> tuple[float, int]:
    device = env.device
    method.eval()
    synchronize(device)
    t0 = time.perf_counter()
    n, correct = 0, 0
    with torch.no_grad(), math_attention():
        for images, labels, _ in loader:
            out = method(images.to(device))
            pred = out.logits.cpu().argmax(-1)
            correct += int((pred == labels).sum().item())
            n += len(images)
    synchronize(device)
    return time.perf_counter() - t0, n


# --------------------------------------------------------------------------------------------------------------
# several runs in one pass


def bench_group(clip, tokenizer, cfg, device: torch.device, runs: int, data, n_classes: int, repeats: int,
                tmp: Path, seed: int = 0) -> dict[str, Any]:
    """Images/s of ``runs`` runs trained one after another vs in one pass (epochs of ``data``, interleaved): the
    grouped trainer of :mod:`adu_core.multirun` against the single-run trainer."""
    forgets = [(f"d{r % 4}",) for r in range(runs)]
    cfgs = [replace(cfg, forget=f, seed=seed + r) for r, f in enumerate(forgets)]
    envs = [bench_env(clip, tokenizer, c, device, n_classes, seed=seed) for c in cfgs]
    single = [make_method(e, c.seed) for e, c in zip(envs, cfgs, strict=True)]
    grouped = RunGroup([make_method(e, c.seed) for e, c in zip(envs, cfgs, strict=True)])

    def one_pass() -> float:
        trainers = []
        for r, (c, e) in enumerate(zip(cfgs, envs, strict=True)):
            ckpt = tmp / f"group{r}.pt"
            ckpt.unlink(missing_ok=True)
            trainers.append(Trainer(c, e, data, ckpt, progress=False))
        synchronize(device)
        t0 = time.perf_counter()
        fit_group(grouped, trainers, checkpoint_every_s=0.0)
        synchronize(device)
        return time.perf_counter() - t0

    def sequential() -> float:
        return sum(ours_epoch(m, e, data, c, tmp) for m, e, c in zip(single, envs, cfgs, strict=True))

    one_pass()
    sequential()
    seq_t, grp_t, peak = [], [], 0
    for _ in range(repeats):
        seq_t.append(sequential())
        _reset_peak(device)
        grp_t.append(one_pass())
        peak = max(peak, _peak(device) or 0)
    images = runs * len(data.images)
    out = {"runs": runs, "batch_per_run": cfg.batch_size,
           "sequential_images_per_s": images / statistics.median(seq_t),
           "grouped_images_per_s": images / statistics.median(grp_t),
           "ratio_runs": [s / g for s, g in zip(seq_t, grp_t, strict=True)],
           "grouped_peak_memory_bytes": peak if device.type == "cuda" else None}
    out["ratio"] = out["grouped_images_per_s"] / out["sequential_images_per_s"]
    return out


# --------------------------------------------------------------------------------------------------------------
# FLOPs and memory


def step_flops(method, images: torch.Tensor, labels: torch.Tensor, domains: torch.Tensor) -> dict[str, float]:
    """FLOPs per image of the forward pass and of forward + backward (what autograd really computes)."""
    from torch.utils.flop_counter import FlopCounterMode

    method.train()
    env = method.env
    with math_attention(), FlopCounterMode(display=False) as fwd_counter, env.autocast():
        method(images)
    with math_attention(), FlopCounterMode(display=False) as step_counter:
        with env.autocast():
            out = method(images)
        method.loss(out, labels, domains)["loss"].backward()
    method.zero_grad(set_to_none=True)
    n = len(images)
    return {"forward": fwd_counter.get_total_flops() / n, "train_step": step_counter.get_total_flops() / n}


def saved_activation_bytes(method, images: torch.Tensor, labels: torch.Tensor, domains: torch.Tensor,
                           autocast_dtype: torch.dtype | None, math_attn: bool = False) -> int:
    """Bytes autograd keeps for backward in one training step (deduplicated by storage, weights excluded).

    The pattern of :func:`adu_core.prompting.instapg_memory_per_image`, over the whole method and its loss.
    Casts of the frozen weights that autocast saves for backward count: they are real memory on a GPU too.
    """
    seen: dict[int, int] = {}
    weights = {p.untyped_storage().data_ptr() for p in method.parameters()}
    weights |= {b.untyped_storage().data_ptr() for b in method.buffers()}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in weights:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    env = method.env
    method.train()
    ctx = (torch.autocast(env.device.type, dtype=autocast_dtype) if autocast_dtype is not None
           else torch.autocast(env.device.type, enabled=False))
    attn = math_attention() if math_attn else contextlib.nullcontext()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.enable_grad(), attn:
        with ctx:
            out = method(images)
        loss = method.loss(out, labels, domains)["loss"]
    del loss, out
    return sum(seen.values())


def step_memory(method, trainer, idx: torch.Tensor, opt, steps: int = 2) -> int:
    """Peak bytes allocated by the last of ``steps`` training steps (grads, activations, temporaries; the momentum
    buffers exist from the first step on and count as persistent state)."""
    gen = torch.Generator(device=trainer.env.device).manual_seed(0)
    method.train()
    for i in range(steps):
        tracker = LiveMemoryTracker().ignore(
            [p for p in method.parameters()] + [b for b in method.buffers()]
            + [s for st in opt.state.values() for s in st.values() if isinstance(s, torch.Tensor)])
        ctx = tracker if i == steps - 1 else contextlib.nullcontext()
        with ctx:
            trainer.step(method, opt, idx, gen)  # its tensors are freed on return, inside the tracker
    return tracker.peak


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def memory_report(model: str = "ViT-B-16", device: str = "auto", batch: int = 32, n_train: int = 2080,
                  n_classes: int = 65, probe_batches: tuple[int, int] = (1, 2),
                  precisions: Sequence[str] = ("bf16", "fp32"), checkpointing: Sequence[bool] = (False, True),
                  measure_batches: Sequence[int] = (), budget_gib: float = 14.5,
                  log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Memory of one paper-tier ADU run (deep prompts, InstaPG at layers 1-8, DDL) at ``batch``.

    Persistent state is counted from the tensors (the whole CLIP in fp32 as ``run_experiment`` loads it, prompts +
    InstaPG + domain head with their gradients and SGD momentum, the few-shot set as uint8 on the GPU, the text
    features). A step's own allocations are measured with :class:`LiveMemoryTracker` at two small batches and
    extrapolated linearly (activations grow with the batch); autograd's saved tensors are reported alongside
    (:func:`saved_activation_bytes`). On CUDA, ``measure_batches`` also runs real steps and reads
    ``torch.cuda.max_memory_allocated``. ``budget_gib``: what a 16 GB card leaves to PyTorch's allocator after the
    CUDA context and cuBLAS workspaces (about 14.5 GiB of a T4's 15 GiB).
    """
    log = log or (lambda _msg: None)
    dev = resolve_device(device)
    torch.manual_seed(0)
    clip, _, _, tok = load_clip(model, None, device=dev)
    clip.requires_grad_(False)
    size = int(clip.visual.image_size[0])
    layers = len(clip.visual.transformer.resblocks)
    report: dict[str, Any] = {"model": model, "device": peak_bf16_tflops(dev)[1], "image_size": size,
                              "batch": batch, "n_train": n_train, "configs": {}}
    weights = tensor_bytes(list(clip.parameters()) + list(clip.buffers()))
    with tempfile.TemporaryDirectory(prefix="adu-mem-") as tmp:
        for precision in precisions:
            for ckpt in checkpointing:
                name = f"{precision}{'+ckpt' if ckpt else ''}"
                cfg = bench_config(model, layers, batch, "bf16" if precision == "bf16" else "fp32",
                                   grad_checkpointing=ckpt)
                env = bench_env(clip, tok, cfg, dev, n_classes)
                method = make_method(env)
                trainable = [p for p in method.parameters() if p.requires_grad]
                persistent = {
                    "clip_weights": weights, "trainable_params": tensor_bytes(trainable),
                    "grads_and_momentum": 2 * tensor_bytes(trainable),
                    "train_images_uint8": n_train * 3 * size * size, "text_features": n_classes * 4 * 512,
                }
                data = synthetic_train_data(max(probe_batches) * 4, size, 4, n_classes, dev)
                trainer = Trainer(cfg, env, data, Path(tmp) / "c.pt", progress=False)
                extra = {}
                for b in probe_batches:
                    opt = torch.optim.SGD(trainable, lr=1e-3, momentum=0.9)
                    idx = torch.arange(b, device=data.images.device)
                    extra[b] = step_memory(method, trainer, idx, opt)
                    del opt
                b1, b2 = probe_batches
                per_image = (extra[b2] - extra[b1]) / (b2 - b1)
                fixed = extra[b1] - per_image * b1
                probe = data.images[:2].float().div(255)
                saved1, saved2 = (saved_activation_bytes(method, probe[:n], data.labels[:n], data.domains[:n],
                                                         env.autocast_dtype) for n in (1, 2))
                saved = saved2 - saved1  # per image; the rest (e.g. autocast's casts of frozen weights) is fixed
                state = sum(persistent.values()) - persistent["grads_and_momentum"] // 2  # grads are in the step
                # A two-point slope can miss growth when the peak moves (e.g. into a recomputed block with
                # checkpointing); everything autograd saves per image is a floor for it.
                slope, per_image = per_image, max(per_image, saved)
                predicted = state + fixed + per_image * batch
                entry = {"persistent_bytes": persistent, "step_fixed_bytes": fixed,
                         "step_bytes_per_image": per_image, "step_slope_bytes_per_image": slope,
                         "saved_activation_bytes_per_image": saved,
                         "saved_activation_fixed_bytes": saved1 - saved,
                         "predicted_peak_bytes": predicted,
                         "max_batch_in_budget": int((budget_gib * 2**30 - state - fixed) // per_image)}
                if dev.type == "cuda" and measure_batches:
                    entry["measured_peak_bytes"] = _measure_cuda(method, env, cfg, measure_batches, n_train, size,
                                                                 n_classes, Path(tmp))
                report["configs"][name] = entry
                log(f"{name}: predicted peak at batch {batch}: {predicted / 2**30:.2f} GiB "
                    f"(saved activations {saved / 2**20:.1f} MiB/image, step {per_image / 2**20:.1f} MiB/image)")
                del method, trainer, data
    report["budget_gib"] = budget_gib
    return report


def _measure_cuda(method, env, cfg, batches: Sequence[int], n_train: int, size: int, n_classes: int,
                  tmp: Path) -> dict[str, int]:
    """torch.cuda.max_memory_allocated over one epoch of real training steps at each batch size."""
    out = {}
    data = synthetic_train_data(n_train, size, 4, n_classes, env.device)
    for b in batches:
        run_cfg = replace(cfg, batch_size=b)
        _reset_peak(env.device)
        steps_data = replace(data, images=data.images[: b * 4], labels=data.labels[: b * 4],
                             domains=data.domains[: b * 4], true_domains=data.true_domains[: b * 4])
        ours_epoch(method, replace(env, cfg=run_cfg), steps_data, run_cfg, tmp)
        out[str(b)] = _peak(env.device)
    return out


# --------------------------------------------------------------------------------------------------------------


# Above this max/min of the per-repeat ratios, the machine's load moved the figure more than the code did.
RATIO_SPREAD_LIMIT = 1.5


def paired_ratios(ours_rates: Sequence[float], naive_rates: Sequence[float]) -> dict[str, Any]:
    """The ours/naive ratio of each repeat's pair, their median (the figure), their spread (max/min) and whether that
    spread is small enough for the median to mean anything."""
    ratios = [o / n for o, n in zip(ours_rates, naive_rates, strict=True)]
    spread = max(ratios) / min(ratios)
    return {"ratio": statistics.median(ratios), "ratio_runs": ratios, "ratio_spread": spread,
            "ratio_reliable": spread <= RATIO_SPREAD_LIMIT}


def run_bench(opts: BenchOptions, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time both paths (interleaved, ``opts.repeats`` times) and return one JSON-ready dict."""
    from torch.utils.data import DataLoader


    log = log or (lambda _msg: None)
    device = resolve_device(opts.device)
    model = opts.model if opts.model != "auto" else ("ViT-B-16" if device.type == "cuda" else "adu-tiny")
    torch.manual_seed(opts.seed)
    clip, train_tf, eval_tf, tokenizer = load_clip(model, None, device=device)
    clip.requires_grad_(False)
    size = int(clip.visual.image_size[0])
    layers = len(clip.visual.transformer.resblocks)
    cfg = bench_config(model, layers, opts.batch, opts.precision, eval_batch_size=opts.eval_batch)
    env = bench_env(clip, tokenizer, cfg, device, opts.n_classes, seed=opts.seed)
    naive_env = replace(env, autocast_dtype=None)
    ours = make_method(env, opts.seed)
    naive = make_method(naive_env, opts.seed)
    mean, std = clip.visual.preprocess_cfg["mean"], clip.visual.preprocess_cfg["std"]
    data = synthetic_train_data(opts.batch * opts.steps, size, 4, opts.n_classes, device, opts.seed, mean, std)

    # FLOPs and saved activations on small batches, before any compilation
    probe = data.images[:2].float().div(255)
    probe_labels, probe_domains = data.labels[:2], data.domains[:2]
    flops = step_flops(ours, probe, probe_labels, probe_domains)
    act = {"ours_per_image": saved_activation_bytes(ours, probe, probe_labels, probe_domains, env.autocast_dtype) / 2,
           "naive_per_image": saved_activation_bytes(naive, probe, probe_labels, probe_domains, None, True) / 2}
    if opts.compile:
        log("compiling (the first epoch includes it)")
        ours.compile()

    workers = min(4, os.cpu_count() or 1) if opts.workers < 0 else opts.workers
    file_px = opts.file_px or max(64, round(1.5 * size))
    n_eval = opts.eval_images or 4 * opts.eval_batch
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="adu-bench-") as tmp:
        tmp_path = Path(tmp)
        log(f"writing {64} JPEG files of {file_px} px for the naive path")
        paths = write_image_files(tmp_path / "files", 64, file_px, opts.seed)
        naive_len = opts.naive_batch * opts.naive_steps * (opts.repeats + 1) + opts.naive_batch
        loader = DataLoader(FileImages(paths, naive_len, opts.n_classes, 4, train_tf), batch_size=opts.naive_batch,
                            shuffle=True, num_workers=workers, drop_last=True, pin_memory=device.type == "cuda",
                            persistent_workers=workers > 0)
        naive_trainer = NaiveTrainer(naive, naive_env, loader, cfg.lr)

        log("warm-up")
        ours_epoch(ours, env, data, cfg, tmp_path)
        naive_trainer.steps(max(2, opts.naive_steps // 4))
        ours_times, naive_rates, ours_peak, naive_peak = [], [], 0, 0

        def naive_once(trainer: NaiveTrainer = naive_trainer) -> None:
            nonlocal naive_peak
            _reset_peak(device)
            s, n = trainer.steps(opts.naive_steps)
            naive_rates.append(n / s)
            naive_peak = max(naive_peak, _peak(device) or 0)

        def ours_once() -> None:
            nonlocal ours_peak
            _reset_peak(device)
            ours_times.append(ours_epoch(ours, env, data, cfg, tmp_path))
            ours_peak = max(ours_peak, _peak(device) or 0)

        for rep in range(opts.repeats):
            # Each repeat times both loops back to back, in alternating order, so a load that comes and goes on a
            # busy machine hits both halves of a pair alike; the ratio is taken per pair.
            for once in ((naive_once, ours_once) if rep % 2 == 0 else (ours_once, naive_once)):
                once()
            log(f"repeat {rep + 1}/{opts.repeats}: naive {naive_rates[-1]:.1f} img/s, "
                f"ours {len(data.images) / ours_times[-1]:.1f} img/s")
        del naive_trainer, loader
        ours_rates = [len(data.images) / t for t in ours_times]
        train = {
            "naive_images_per_s": statistics.median(naive_rates), "ours_images_per_s": statistics.median(ours_rates),
            "naive_runs": naive_rates, "ours_runs": ours_rates,
        }
        train.update(paired_ratios(ours_rates, naive_rates))
        train["checkpoint_s"] = _checkpoint_seconds(ours, env, data, cfg, tmp_path)
        train["epoch_s"] = statistics.median(ours_times)
        train["ours_peak_memory_bytes"] = ours_peak if device.type == "cuda" else None
        train["naive_peak_memory_bytes"] = naive_peak if device.type == "cuda" else None
        result["train"] = train

        if opts.eval:
            result["eval"] = _bench_eval(ours, naive, env, naive_env, paths, eval_tf, n_eval, opts, workers, size,
                                         log)
        if opts.runs > 1:
            log(f"multi-run: {opts.runs} runs in one pass vs one after another")
            result["multirun"] = bench_group(clip, tokenizer, cfg, device, opts.runs, data, opts.n_classes,
                                             opts.repeats, tmp_path, seed=opts.seed)

    peak, device_name = peak_bf16_tflops(device)
    peak = opts.peak_tflops or peak
    achieved = flops["train_step"] * train["ours_images_per_s"] / 1e12
    result.update({
        "device": device_name, "device_type": device.type, "model": model, "image_size": size,
        "torch": torch.__version__, "precision": str(env.autocast_dtype or torch.float32).replace("torch.", ""),
        "compile": opts.compile, "batch": opts.batch, "naive_batch": opts.naive_batch, "steps": opts.steps,
        "repeats": opts.repeats, "naive_workers": workers, "file_px": file_px,
        "ours_images_per_s": train["ours_images_per_s"], "naive_images_per_s": train["naive_images_per_s"],
        "ratio": train["ratio"],
        "peak_memory_bytes": {"ours": train["ours_peak_memory_bytes"], "naive": train["naive_peak_memory_bytes"]},
        "saved_activation_bytes": act,
        "flops_per_image": flops, "achieved_tflops": achieved,
        "peak_bf16_tflops": peak, "fraction_of_peak": achieved / peak if peak else None,
        "options": asdict(opts),
    })
    if "eval" in result:
        result["eval_images_per_s"] = result["eval"]["ours_images_per_s"]
        result["eval_achieved_tflops"] = flops["forward"] * result["eval_images_per_s"] / 1e12
        grouped = result.get("multirun", {}).get("grouped_images_per_s")
        result["grid_estimate_office_home"] = {
            "one_run_at_a_time": grid_estimate(train["ours_images_per_s"], result["eval_images_per_s"]),
            **({f"{opts.runs}_runs_per_pass": grid_estimate(grouped, result["eval_images_per_s"])} if grouped else {}),
            "note": "meaningful for ViT-B-16 at 224 px on the target GPU only (see benchmarks/README.md)",
        }
    return result


def _checkpoint_seconds(method, env, data, cfg, tmp: Path, repeats: int = 3) -> float:
    """Median seconds of one epoch checkpoint (trainable state + SGD momentum), which the trainer writes per epoch."""
    trainer = Trainer(cfg, env, data, tmp / "ckpt_timing.pt", progress=False)
    params = [p for p in method.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.0, momentum=0.9)
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()  # creates the momentum buffers
    method.zero_grad(set_to_none=True)
    times = []
    for _ in range(repeats):
        synchronize(env.device)
        t0 = time.perf_counter()
        trainer._save(method, opt, 1)
        times.append(time.perf_counter() - t0)
    (tmp / "ckpt_timing.pt").unlink(missing_ok=True)
    return statistics.median(times)


def _bench_eval(ours, naive, env, naive_env, paths, eval_tf, n_eval: int, opts: BenchOptions, workers: int,
                size: int, log: Callable[[str], None]) -> dict[str, Any]:
    from torch.utils.data import DataLoader


    device = env.device
    gen = torch.Generator().manual_seed(opts.seed + 1)
    test = torch.randint(0, 256, (n_eval, 3, size, size), dtype=torch.uint8, generator=gen)  # CPU, as in runs
    mean, std = env.clip.visual.preprocess_cfg["mean"], env.clip.visual.preprocess_cfg["std"]
    loader = DataLoader(FileImages(paths, n_eval, opts.n_classes, 4, eval_tf), batch_size=100,
                        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    predict(ours, env, test[:opts.eval_batch], mean, std, opts.eval_batch)  # warm-up
    naive_eval(naive, naive_env, loader)
    ours_rates, naive_rates, ours_peak = [], [], 0
    for _ in range(opts.repeats):
        s, n = naive_eval(naive, naive_env, loader)
        naive_rates.append(n / s)
        _reset_peak(device)
        synchronize(device)
        t0 = time.perf_counter()
        predict(ours, env, test, mean, std, opts.eval_batch)
        synchronize(device)
        ours_rates.append(n_eval / (time.perf_counter() - t0))
        ours_peak = max(ours_peak, _peak(device) or 0)
    out = {"naive_images_per_s": statistics.median(naive_rates), "ours_images_per_s": statistics.median(ours_rates),
           "naive_runs": naive_rates, "ours_runs": ours_rates, "images": n_eval, "batch": opts.eval_batch,
           "ours_peak_memory_bytes": ours_peak if device.type == "cuda" else None}
    out.update(paired_ratios(ours_rates, naive_rates))
    log(f"eval: naive {out['naive_images_per_s']:.1f} img/s, ours {out['ours_images_per_s']:.1f} img/s")
    return out


# --------------------------------------------------------------------------------------------------------------
# Office-Home Table 1 grid, from measured throughput

# The committed split (adu_core/splits/office_home): 2,080 few-shot images at K=8, 3,123 test images. With Dassl's
# office_home_dg (the authors' protocol) the test set is val/: 1,656 images in the authors' log.
OFFICE_HOME = {"train_images": 2080, "test_images": 3123, "configs": 14, "seeds": 3}


def grid_estimate(train_images_per_s: float, eval_images_per_s: float, *, epochs: int = 50,
                  overhead_s: float = 5.0, prompt_methods: int = 3, feature_methods: int = 2,
                  feature_method_s: float = 10.0, **dataset: int) -> dict[str, float]:
    """Hours for Table 1 on Office-Home from measured throughput (see benchmarks/README.md for the assumptions).

    Prompt-style methods (ADU, Baseline and, assumed of equal cost, CLIPFit) train ``epochs`` x the few-shot set and
    evaluate the test set plus the few-shot set (the domain probe); feature methods (LP++, BBF) reuse cached frozen
    features and are charged ``feature_method_s`` per run. ``overhead_s`` per run covers backbone loading and set-up.
    """
    d = {**OFFICE_HOME, **dataset}
    runs = d["configs"] * d["seeds"]
    train_s = epochs * d["train_images"] / train_images_per_s
    eval_s = (d["test_images"] + d["train_images"]) / eval_images_per_s
    per_prompt_run = train_s + eval_s + overhead_s
    total = runs * (prompt_methods * per_prompt_run + feature_methods * (feature_method_s + overhead_s))
    return {"runs": runs * (prompt_methods + feature_methods), "train_s_per_run": train_s, "eval_s_per_run": eval_s,
            "overhead_s_per_run": overhead_s, "prompt_run_s": per_prompt_run, "hours": total / 3600}


# --------------------------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    d = BenchOptions()
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench",
        description=__doc__.split("\n\n")[0] + " Prints a summary, or one JSON object with --json.")
    p.add_argument("--json", action="store_true", help="print one JSON object (and nothing else on stdout)")
    p.add_argument("--model", default=d.model, help="open_clip architecture; auto = ViT-B-16 on CUDA, adu-tiny on CPU")
    p.add_argument("--batch", type=int, default=d.batch, help=f"our domain-balanced batch (default {d.batch})")
    p.add_argument("--steps", type=int, default=d.steps, help=f"our steps per timed epoch (default {d.steps})")
    p.add_argument("--naive-steps", type=int, default=d.naive_steps, help="naive steps per repeat")
    p.add_argument("--naive-batch", type=int, default=d.naive_batch, help="naive batch (default 4)")
    p.add_argument("--repeats", type=int, default=d.repeats, help="interleaved repeats (median reported)")
    p.add_argument("--device", default=d.device, help="cuda, cpu or auto")
    p.add_argument("--compile", action="store_true", help="torch.compile our model")
    p.add_argument("--precision", default=d.precision, help="our precision: auto (bf16 on CUDA), bf16 or fp32")
    p.add_argument("--workers", type=int, default=d.workers, help="naive DataLoader workers (-1: min(4, CPUs))")
    p.add_argument("--file-px", type=int, default=d.file_px, help="naive JPEG side (0: 1.5 x input size)")
    p.add_argument("--eval-batch", type=int, default=d.eval_batch, help="our evaluation batch")
    p.add_argument("--eval-images", type=int, default=d.eval_images, help="evaluation images (0: 4 batches)")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation benchmark")
    p.add_argument("--runs", type=int, default=d.runs, help="also time R runs in one pass vs one after another")
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's bf16 peak, if not in the table")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: leave as is)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; exit code 2 with one line on stderr for bad sizes or a device that is not there."""
    args = build_parser().parse_args(argv)
    opts = BenchOptions(model=args.model, device=args.device, batch=args.batch, steps=args.steps,
                        naive_steps=args.naive_steps, naive_batch=args.naive_batch, repeats=args.repeats,
                        workers=args.workers, file_px=args.file_px, compile=args.compile, precision=args.precision,
                        eval_images=args.eval_images, eval_batch=args.eval_batch, eval=not args.no_eval,
                        runs=args.runs, peak_tflops=args.peak_tflops)
    if min(opts.batch, opts.steps, opts.naive_steps, opts.naive_batch, opts.repeats) < 1:
        print("bench: error: --batch, --steps, --naive-steps, --naive-batch and --repeats must be >= 1",
              file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        result = run_bench(opts, log=lambda msg: print(f"bench: {msg}", file=sys.stderr))
    except ValueError as err:  # e.g. --device cuda without a GPU
        print(f"bench: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else format_summary(result))
    return 0


def spread_warning(what: str, part: dict[str, Any]) -> list[str]:
    """A line saying the figure means nothing when its per-repeat ratios spread too far (a busy machine)."""
    if part.get("ratio_reliable", True):
        return []
    return [f"       WARNING: the {what} ratios of the repeats range {min(part['ratio_runs']):.2f}-"
            f"{max(part['ratio_runs']):.2f}x (max/min {part['ratio_spread']:.1f} > {RATIO_SPREAD_LIMIT}): the machine's "
            "load moved them more than the code did; rerun on an idle machine (more --repeats help)"]


def format_summary(r: dict[str, Any]) -> str:
    def mib(b: int | None) -> str:
        return "n/a (CPU)" if b is None else f"{b / 2**20:.0f} MiB"

    t = r["train"]
    lines = [
        f"device {r['device']}, model {r['model']} at {r['image_size']} px, ours {r['precision']}"
        f"{' + compile' if r['compile'] else ''}, batch {r['batch']} vs naive fp32 batch {r['naive_batch']}",
        f"train  naive {t['naive_images_per_s']:9.1f} img/s   ours {t['ours_images_per_s']:9.1f} img/s   "
        f"ratio {t['ratio']:.2f}x  (median of the per-repeat pairs: {', '.join(f'{x:.2f}' for x in t['ratio_runs'])})",
        *spread_warning("train", t),
        f"       peak memory naive {mib(t['naive_peak_memory_bytes'])}, ours {mib(t['ours_peak_memory_bytes'])}; "
        f"saved activations/image ours {r['saved_activation_bytes']['ours_per_image'] / 2**20:.2f} MiB, "
        f"naive {r['saved_activation_bytes']['naive_per_image'] / 2**20:.2f} MiB",
        f"       {r['flops_per_image']['train_step'] / 1e9:.2f} GFLOP/image/step -> {r['achieved_tflops']:.2f} TFLOP/s"
        + (f" = {100 * r['fraction_of_peak']:.1f}% of {r['peak_bf16_tflops']:.0f} (bf16 peak)"
           if r.get("fraction_of_peak") else ""),
    ]
    if "eval" in r:
        e = r["eval"]
        lines.append(f"eval   naive {e['naive_images_per_s']:9.1f} img/s   ours {e['ours_images_per_s']:9.1f} img/s   "
                     f"ratio {e['ratio']:.2f}x")
        lines += spread_warning("eval", e)
    if "multirun" in r:
        m = r["multirun"]
        lines.append(f"multi  {m['runs']} runs: one after another {m['sequential_images_per_s']:.1f} img/s, "
                     f"in one pass {m['grouped_images_per_s']:.1f} img/s, ratio {m['ratio']:.2f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
