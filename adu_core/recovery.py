"""Is the knowledge gone, or only hidden? Two measurements of an unlearned model on its forgotten domains.

* **Linear-probe recovery**: a logistic-regression *class* probe fitted on the model's image features of the forgotten
  domains' few-shot images and scored on their test images. If it recovers most of the accuracy, the class
  information is still in the features: what forgets is the head (or the text alignment), not the representation.
* **Relearning**: the model's trainable parameters fine-tuned with plain cross-entropy on the forgotten domains'
  few-shot images (the run's own augmentation, SGD with the run's learning rate and momentum); forgotten-domain test
  accuracy after each number of steps. Knowledge that was only hidden comes back in a few steps.

Both are measured for the unlearned model and for the *original* one, the same method before training (prompts at
their initialisation, i.e. nearly zero-shot CLIP), so every number has its reference. A method without gradient
parameters (zero-shot, the gate, BBF's black-box context) has no relearning curve. KVW, a training-free weight edit,
relearns its per-unit gains of the MLP value vectors (the edit itself; 1 for the original, i.e. zero-shot CLIP).

:func:`measure_run` does both for a finished run and writes ``recovery.json`` next to its ``run.json`` (atomically,
with the run's identity and the code version); a second call returns the file.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import evaluate as ev
from .data.tensor_cache import cached_images
from .results import git_version, write_json_atomic
from .train import TrainData, Trainer, build_train_data, load_trained

SCHEMA = "adu-recovery/1"
RELEARN_STEPS = (0, 5, 20, 50)


def forgotten(data: TrainData, forget_idx: Sequence[int]) -> TrainData:
    """The training images of the forgotten domains (by their true domain)."""
    keep = torch.isin(data.true_domains.cpu(), torch.tensor(list(forget_idx)))
    idx = torch.nonzero(keep).flatten()
    on = data.images.device
    full = data.full_images
    return TrainData(images=data.images[idx.to(on)], labels=data.labels[idx.to(data.labels.device)],
                     domains=data.true_domains[idx.to(data.true_domains.device)],
                     true_domains=data.true_domains[idx.to(data.true_domains.device)], mean=data.mean, std=data.std,
                     full_images=None if full is None else full[idx.to(full.device)],
                     full_valid=None if data.full_valid is None else data.full_valid[idx])


def probe_recovery(method, env, train: TrainData, test_images: torch.Tensor, test_labels: np.ndarray,
                   batch_size: int = 256) -> float:
    """Test accuracy (%) of a class probe on the method's features, fitted on ``train`` (forgotten domains)."""
    from sklearn.linear_model import LogisticRegression

    fit = ev.predict(method, env, train.images, train.mean, train.std, batch_size)["features"].numpy()
    test = ev.predict(method, env, test_images, train.mean, train.std, batch_size)["features"].numpy()
    probe = LogisticRegression(max_iter=3000).fit(fit, train.labels.cpu().numpy())
    return float((probe.predict(test) == test_labels).mean() * 100.0)


def _relearns(method) -> bool:
    """Whether relearning applies: a trained method with gradient parameters. A method fitted without gradients
    relearns only when it says its state is relearnable (``relearnable``: KVW's gains, a weight edit)."""
    relearnable = getattr(method, "relearnable", not method.gradient_free)
    return method.trains and relearnable and any(p.requires_grad for p in method.parameters())


def relearn_curve(method, env, cfg, train: TrainData, test_images: torch.Tensor, test_labels: np.ndarray,
                  steps: Sequence[int] = RELEARN_STEPS, history: Sequence[dict] = ()) -> list[dict[str, float]] | None:
    """Forgotten-domain test accuracy after each of ``steps`` cross-entropy steps on ``train``; None when the method
    has no gradient parameters. The method's trainable state is restored afterwards."""
    if not _relearns(method):
        return None
    saved = method.trainable_state()
    opt = method.relearn_optimizer(history)
    trainer = Trainer(cfg, env, train, Path(os.devnull), progress=False)
    gen = torch.Generator(device=env.device).manual_seed(cfg.seed * 1_000_003 + 99)
    order = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 98)
    curve, done = [], 0
    try:
        for target in sorted(set(steps)):
            losses = []
            while done < target:
                idx = torch.randperm(len(train.labels), generator=order)[:cfg.batch_size]
                images, labels, _ = trainer.batch(idx.to(train.images.device), gen)
                method.train()
                with env.autocast():
                    logits = method(images).logits
                loss = F.cross_entropy(logits.float(), labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(loss.detach())
                done += 1
            pred = ev.predict(method, env, test_images, train.mean, train.std, cfg.eval_batch_size)["logits"]
            curve.append({"step": target, "acc": float((pred.argmax(-1).numpy() == test_labels).mean() * 100.0),
                          "train_loss": float(torch.stack(losses).mean()) if losses else None})
    finally:
        method.load_trainable_state(saved)
        method.eval()
    return curve


def _step_sizes(method, history: Sequence[dict]) -> list[float] | None:
    """The relearning step size of each parameter group (None: the method does not relearn)."""
    if not _relearns(method):
        return None
    return [float(g["lr"]) for g in method.relearn_optimizer(history).param_groups]


def measure(method, env, cfg, data: TrainData, ds, steps: Sequence[int] = RELEARN_STEPS,
            history: Sequence[dict] = ()) -> dict[str, Any]:
    """Probe recovery and relearning curve of ``method`` on the forgotten domains of ``cfg``."""
    test_samples = [s for s in ev.test_subset(ds.samples("test"), cfg.max_test_per_domain) if s.domain in cfg.forget]
    test_images = cached_images(ds, test_samples, env.image_size, desc="decode forgotten test", progress=False)
    labels = np.array([s.label for s in test_samples])
    train = forgotten(data, env.forget_idx)
    return {"probe_acc": probe_recovery(method, env, train, test_images, labels, cfg.eval_batch_size),
            "relearn": relearn_curve(method, env, cfg, train, test_images, labels, steps, history),
            "relearn_lr": _step_sizes(method, history),
            "n_train": len(train.labels), "n_test": len(test_samples)}


def measure_run(run_dir: str | os.PathLike, steps: Sequence[int] = RELEARN_STEPS, device: str | None = None,
                force: bool = False) -> dict[str, Any]:
    """Both measurements for a finished run, for the unlearned model and the original one; ``recovery.json``."""
    from .methods import get_method

    run_dir = Path(run_dir)
    out = run_dir / "recovery.json"
    if out.exists() and not force:
        return json.loads(out.read_text())
    t0 = time.perf_counter()
    method, ds, run = load_trained(run_dir, device=device)
    cfg, env = method.cfg, method.env
    data, _, _ = build_train_data(cfg, ds, env, progress=False)
    history = run.get("history") or []  # the method's own step sizes (Method.relearn_optimizer)
    unlearned = measure(method, env, cfg, data, ds, steps, history)
    torch.manual_seed(cfg.seed)  # the same initialisation the run started from
    original_method = get_method(cfg.method)(env).to(env.device).eval()
    original = measure(original_method, env, cfg, data, ds, steps, history)
    result = {"schema": SCHEMA, "run": run_dir.name, "config": run["config"], "metrics": run["metrics"],
              "unlearned": unlearned, "original": original, "relearn_steps": list(steps),
              "provenance": {"code": git_version(), "run_code": run["provenance"]["code"],
                             "device": str(env.device), "seconds": round(time.perf_counter() - t0, 1)}}
    write_json_atomic(out, result)
    return result


__all__ = ["RELEARN_STEPS", "forgotten", "measure", "measure_run", "probe_recovery", "relearn_curve"]
