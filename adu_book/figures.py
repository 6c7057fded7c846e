"""The figure pages (t-SNE, attention maps): a finished run's trained method beside zero-shot CLIP, on the same images.

:func:`before_after` rebuilds each run with :func:`adu_core.train.load_trained` and adds zero-shot CLIP on the
*same* frozen backbone ("before unlearning"); the rest turns those models into features, embeddings, attention maps
and the statistics the pages print.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from adu_core.attribution import attention_rollout, encoder_of, upsample
from adu_core.backbones import BackboneError
from adu_core.data.base import DataError
from adu_core.data.tensor_cache import cached_images
from adu_core.evaluate import predict, test_subset
from adu_core.methods import get_method
from adu_core.pipeline import normalize
from adu_core.train import load_trained

__all__ = ["ARTIFACT_SCHEMA", "FigureData", "FigureModels", "attention_figure", "before_after", "example_maps",
           "figure_method", "missing_text", "image_features", "marked_domains", "one_per_domain", "rollout_frame", "rollout_maps",
           "rollout_stats", "rollout_table", "separation_scores", "test_images", "tsne_embedding", "tsne_figure",
           "tsne_panels"]


@dataclass
class FigureModels:
    """The models a figure page compares: zero-shot CLIP ("before") then each unlearned method ("after")."""

    models: dict[str, Any]
    dataset: Any
    runs: dict[str, dict]
    reasons: dict[str, str]

    @property
    def env(self):
        return next(iter(self.models.values())).env if self.models else None


def before_after(runs: Sequence[tuple[str, str | Path | None]], device: str | None = None,
                 before: str = "Zero-shot CLIP") -> FigureModels:
    """Rebuild each (label, run folder) with its trained state (:func:`figure_method`); "before" is zero-shot CLIP
    on the first rebuilt run's own frozen backbone (the model every run starts from). Runs that cannot be rebuilt
    are listed in ``reasons``; with none rebuilt, ``models`` is empty."""
    models: dict[str, Any] = {}
    loaded: dict[str, dict] = {}
    reasons: dict[str, str] = {}
    dataset = None
    for label, path in runs:
        got = figure_method(path, device)
        if isinstance(got, str):
            reasons[label] = got
            continue
        method, ds, run = got
        if not models:
            models[before] = get_method("zeroshot")(method.env).eval()
            dataset = ds
        models[label] = method
        loaded[label] = run
    return FigureModels(models, dataset, loaded, reasons)


def figure_method(run_dir: str | Path | None, device: str | None = None) -> tuple[Any, Any, dict] | str:
    """(method, dataset, run.json) of a finished run, rebuilt with its trained state; or the reason (a sentence)
    why it cannot be rebuilt here (no run, no trained state, weights or data missing)."""
    if run_dir is None or not (Path(run_dir) / "run.json").is_file():
        return "the run does not exist, and this execution's run budget does not train it"
    try:
        return load_trained(run_dir, device=device)
    except FileNotFoundError as err:
        return f"its trained state cannot be loaded: {err}"
    except (BackboneError, DataError, OSError) as err:
        return f"it cannot be rebuilt on this machine: {missing_text(err)}"


def missing_text(err: BaseException) -> str:
    """What a reader needs to know about an error that stops a figure or a measurement on this machine: what is
    missing and how to get it, without the exception's name or this machine's folders (which are for whoever
    trains, and show up in their terminal)."""
    if isinstance(err, DataError):
        return ("the dataset is not here (fetch it with `adu data download <dataset>`, or point ADU_DATA_ROOT at a "
                "folder that holds it)")
    if isinstance(err, BackboneError):
        return "the backbone's weights are not here (the page's `pretrained` names them)"
    if isinstance(err, FileNotFoundError):
        return "a file it needs is not here"
    return "a file it needs cannot be read here"


# --- which images -----------------------------------------------------------------------------------------------------
def marked_domains(domains: Sequence[str], names: Sequence[str], forget: Sequence[str]) -> dict[str, str]:
    """Domain id -> "name (forgotten)" or "name (kept)", for legends and column titles."""
    forget = set(forget)
    return {d: f"{n} ({'forgotten' if d in forget else 'kept'})" for d, n in zip(domains, names, strict=True)}


def one_per_domain(samples: Sequence[Any], domains: Sequence[str], label: int, index: int = 0) -> list[Any]:
    """The ``index``-th sample of class ``label`` in each domain (in the split's order)."""
    out = []
    for d in domains:
        those = [s for s in samples if s.domain == d and s.label == label]
        if not those:
            raise ValueError(f"no test image of class {label} in domain {d}")
        out.append(those[min(index, len(those) - 1)])
    return out


def test_images(ds, env, n_per_domain: int | None, samples: Sequence[Any] | None = None) -> tuple[list, torch.Tensor]:
    """(samples, uint8 images at the backbone's resolution): ``samples``, or ``n_per_domain`` test images per domain
    drawn by the fixed rule of :func:`adu_core.evaluate.test_subset` (the same images for every model)."""
    chosen = list(samples) if samples is not None else test_subset(ds.samples("test"), n_per_domain)
    return chosen, cached_images(ds, chosen, env.image_size, desc="decode test", progress=False)


# --- features and their t-SNE -----------------------------------------------------------------------------------------
@torch.inference_mode()
def image_features(method, env, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """L2-normalised image features of uint8 ``images`` [N, 3, S, S] (the features the class logits use)."""
    return predict(method, env, images, env.mean, env.std, batch_size)["features"].numpy()


def tsne_embedding(features: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE (scikit-learn, PCA start, fixed ``seed``) of L2-normalised features; the perplexity is lowered to
    (n − 1)/3 for small sets, as t-SNE requires perplexity < n.

    Runs on one OpenMP/BLAS thread: the few hundred points of a page take about a second that way, whereas on
    shared, loaded cores the thread synchronisation of scikit-learn's Barnes-Hut loop can take minutes.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 4:
        raise ValueError(f"t-SNE needs a [n >= 4, d] feature matrix, got shape {x.shape}")
    x = x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
    perp = float(min(perplexity, (len(x) - 1) / 3))
    with threadpool_limits(limits=1):
        return TSNE(n_components=2, perplexity=perp, init="pca", learning_rate="auto",
                    random_state=seed).fit_transform(x)


def separation_scores(features: np.ndarray, groupings: Mapping[str, Sequence[Any]]) -> dict[str, float]:
    """Silhouette score (cosine distance, −1..1) of each labelling of the points: how well the features separate
    e.g. domains or classes (higher = more separated; ~0 = intermixed). NaN with fewer than 2 groups."""
    from sklearn.metrics import silhouette_score

    out = {}
    for name, labels in groupings.items():
        labels = np.asarray(labels)
        groups = len(np.unique(labels))
        out[name] = float(silhouette_score(features, labels, metric="cosine")) \
            if 2 <= groups < len(labels) else math.nan
    return out


def tsne_panels(fm: FigureModels, marks: Mapping[str, str], n_per_domain: int | None, seed: int = 0,
                perplexity: float = 30.0) -> tuple[list[tuple[str, pd.DataFrame]], pd.DataFrame]:
    """For each model of ``fm``: its t-SNE of the page's test images (a panel: title, frame of x, y, domain as
    ``marks`` writes it, class), and its silhouette scores by domain and by class (one row per model)."""
    panels, scores = [], []
    if fm.models:
        ds, env = fm.dataset, fm.env
        samples, images = test_images(ds, env, n_per_domain)
        domains = [marks[s.domain] for s in samples]
        classes = [ds.classnames[s.label] for s in samples]
        for name, model in fm.models.items():
            feats = image_features(model, env, images)
            xy = tsne_embedding(feats, seed=seed, perplexity=perplexity)
            panels.append((name, pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "domain": domains, "class": classes})))
            scores.append({"model": name, **separation_scores(
                feats, {"domains": [s.domain for s in samples], "classes": classes})})
    return panels, pd.DataFrame(scores, columns=["model", "domains", "classes"]).set_index("model")


# --- attention --------------------------------------------------------------------------------------------------------
def rollout_maps(method, env, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Attention rollout of the class token over the patches ([N, gh, gw], :mod:`adu_core.attribution`) for uint8
    ``images``, with the method's own (prompted) encoder; zero-shot CLIP uses the plain frozen encoder."""
    encoder = encoder_of(method)
    encoder.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = normalize(images[start:start + batch_size].to(env.device), env.mean, env.std)
        out.append(attention_rollout(encoder, x).float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def rollout_stats(maps: torch.Tensor) -> dict[str, np.ndarray]:
    """Per map ([N, gh, gw], non-negative): how spread the attention is over the P patches.

    ``entropy``: Shannon entropy of the map as a distribution over patches, divided by log P (1 = uniform,
    0 = one patch); ``peak``: the largest patch share times P (1 = uniform, P = one patch);
    ``top10``: the share of the attention on the 10 % most attended patches (0.1 = uniform).
    """
    m = maps.reshape(len(maps), -1).double().clamp_min(0)
    n_patches = m.shape[1]
    p = m / m.sum(1, keepdim=True).clamp_min(1e-300)
    ent = -(p * torch.log(p.clamp_min(1e-300))).sum(1) / math.log(n_patches) if n_patches > 1 \
        else torch.zeros(len(p), dtype=torch.float64)
    k = max(1, int(round(0.1 * n_patches)))
    top = p.topk(k, dim=1).values.sum(1)
    return {"entropy": ent.numpy(), "peak": (p.max(1).values * n_patches).numpy(), "top10": top.numpy()}


def example_maps(fm: FigureModels, domains: Sequence[str], class_name: str | None = None,
                 image_index: int = 0, upsampled: bool = True) -> tuple[int, torch.Tensor, list[tuple[str, np.ndarray]]]:
    """One test image of one class per domain, and each model's rollout over it, at image resolution (or at patch
    resolution, ``upsampled=False``): (class index, uint8 images, [(model, maps [N, S, S])]). ``class_name`` None:
    the first class."""
    ds, env = fm.dataset, fm.env
    label = ds.classnames.index(class_name) if class_name is not None else 0
    _, images = test_images(ds, env, None, samples=one_per_domain(ds.samples("test"), domains, label, image_index))
    rows = [(name, (upsample(m, env.image_size) if upsampled else m).numpy())
            for name, m in ((name, rollout_maps(model, env, images)) for name, model in fm.models.items())]
    return label, images, rows


def rollout_frame(fm: FigureModels, marks: Mapping[str, str], forget: Sequence[str],
                  n_per_domain: int | None) -> pd.DataFrame:
    """:func:`rollout_stats` of every model on ``n_per_domain`` test images per domain: one row per (model, image)
    with the domain as ``marks`` writes it and whether it is forgotten (no rows without models)."""
    stats = pd.DataFrame(columns=["model", "domain", "forgotten", "entropy", "peak", "top10"])
    if fm.models:
        samples, images = test_images(fm.dataset, fm.env, n_per_domain)
        parts = []
        for name, model in fm.models.items():
            values = rollout_stats(rollout_maps(model, fm.env, images))
            parts.append(pd.DataFrame({"model": name, "domain": [marks[s.domain] for s in samples],
                                       "forgotten": [s.domain in forget for s in samples], **values}))
        stats = pd.concat(parts, ignore_index=True)
    return stats


ROLLOUT_COLUMNS = {"entropy": "rollout entropy (1 = uniform)",
                   "top10": "share of attention on the top 10 % of patches (0.1 = uniform)"}


def rollout_table(stats: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Per (domain, model): "mean ± sample std" over the images of the rollout's entropy and of its share on the
    10 % most attended patches, headed in words, and the number of images."""
    if not len(stats):
        return stats
    g = stats.groupby(["domain", "model"], sort=False)
    table = pd.DataFrame({
        name: [f"{m:.{digits}f} ± {s:.{digits}f}" if pd.notna(s) else f"{m:.{digits}f}"
               for m, s in zip(g[col].mean(), g[col].std(), strict=True)]
        for col, name in ROLLOUT_COLUMNS.items()}, index=g.size().index)
    table["images"] = g.size().to_numpy()
    return table


# --- what the figure pages draw, kept beside the run ------------------------------------------------------------------
# A figure page computes from the test images, which only a machine with the dataset has. What it draws (t-SNE
# coordinates and scores; rollout maps at patch resolution and their statistics) is therefore written next to the
# run as a small JSON artifact, committed with the run: a machine without the data draws the same figure from it.
# The artifact is keyed by the runs' run.json bytes and the page's parameters, so a changed run or setting is never
# drawn from a stale file; with the data, a missing or stale artifact is recomputed and rewritten.
ARTIFACT_SCHEMA = "adu-figure/1"


@dataclass
class FigureData:
    """What a figure page draws, where it came from (``source``: a sentence for the page), or why it is missing."""

    payload: dict[str, Any] | None
    source: str
    images: torch.Tensor | None = None  # the example images, when the data is on this machine


def artifact_key(status_paths: Sequence[Path], params: Mapping[str, Any]) -> str:
    import hashlib
    import json

    h = hashlib.sha256(json.dumps({k: params[k] for k in sorted(params)}, default=str).encode())
    for path in status_paths:
        h.update(Path(path, "run.json").read_bytes() if Path(path, "run.json").is_file() else b"-")
    return h.hexdigest()


def _artifact(kind: str, runs: Sequence[tuple[str, Path]], params: Mapping[str, Any],
              compute) -> FigureData:
    """The artifact ``<first run>/figure-<kind>.json``: read when current, else computed (``compute()`` returns the
    payload, or raises DataError/BackboneError/OSError when this machine lacks what it needs) and written."""
    import json

    from adu_core.paths import project_relative
    from adu_core.results import git_version, write_json_atomic

    paths = [Path(p) for _, p in runs]
    if not paths or not (paths[0] / "run.json").is_file():
        return FigureData(None, "No figure: the run it shows does not exist here.")
    key = artifact_key(paths, params)
    where = paths[0] / f"figure-{kind}.json"
    stored = None
    if where.is_file():
        try:
            stored = json.loads(where.read_text())
        except (OSError, json.JSONDecodeError) as err:
            stored = {"unreadable": str(err)}
    if stored and stored.get("key") == key:
        made = stored.get("provenance", {})
        return FigureData(stored["payload"], f"Drawn from `{project_relative(where)}` (computed at commit "
                          f"`{str(made.get('commit'))[:10]}`, {made.get('made_at', '?')}), the artifact committed "
                          "with the run.")
    try:
        payload = compute()
    except (DataError, BackboneError, OSError, ValueError) as err:
        why = "the stored artifact is for other runs or settings" if stored else "no artifact is stored"
        return FigureData(None, f"**No figure here:** {why}, and it cannot be computed on this machine: "
                          f"{missing_text(err)}.")
    import time

    write_json_atomic(where, {"schema": ARTIFACT_SCHEMA, "kind": kind, "key": key, "params": dict(params),
                              "runs": {label: project_relative(p) for label, p in runs},
                              "provenance": {**git_version(), "made_at": time.strftime("%Y-%m-%d")},
                              "payload": payload})
    return FigureData(payload, f"Computed now from the test images and stored as `{project_relative(where)}`.")


def tsne_figure(fm: FigureModels, runs: Sequence[tuple[str, Path]], marks: Mapping[str, str],
                n_per_domain: int | None, seed: int = 0, perplexity: float = 30.0
                ) -> tuple[list[tuple[str, pd.DataFrame]], pd.DataFrame, str]:
    """The t-SNE page's panels and scores (:func:`tsne_panels`), through the run's artifact."""
    def compute() -> dict[str, Any]:
        if not fm.models:
            raise ValueError("no unlearned model could be rebuilt here (see above)")
        panels, scores = tsne_panels(fm, marks, n_per_domain, seed=seed, perplexity=perplexity)
        return {"panels": [[name, frame.to_dict(orient="list")] for name, frame in panels],
                "scores": scores.reset_index().to_dict(orient="list")}

    data = _artifact("tsne", runs, {"n_per_domain": n_per_domain, "seed": seed, "perplexity": perplexity,
                                    "marks": dict(marks)}, compute)
    if data.payload is None:
        return [], pd.DataFrame(columns=["domains", "classes"]).rename_axis("model"), data.source
    panels = [(name, pd.DataFrame(frame)) for name, frame in data.payload["panels"]]
    scores = pd.DataFrame(data.payload["scores"]).set_index("model")
    return panels, scores, data.source


def attention_figure(fm: FigureModels, runs: Sequence[tuple[str, Path]], domains: Sequence[str],
                     marks: Mapping[str, str], forget: Sequence[str], class_name: str | None, image_index: int,
                     n_per_domain: int | None) -> tuple[FigureData, list[tuple[str, np.ndarray]], pd.DataFrame]:
    """The attention page's example maps (patch resolution, one image per domain) and rollout statistics, through
    the run's artifact; the example images themselves come only from the data (they are never committed)."""
    def compute() -> dict[str, Any]:
        if not fm.models:
            raise ValueError("no unlearned model could be rebuilt here (see above)")
        label, _, rows = example_maps(fm, domains, class_name, image_index, upsampled=False)
        stats = rollout_frame(fm, marks, forget, n_per_domain)
        return {"label": label, "class": fm.dataset.classnames[label],
                "maps": [[name, maps.tolist()] for name, maps in rows], "stats": stats.to_dict(orient="list")}

    data = _artifact("attention", runs, {"domains": list(domains), "class_name": class_name,
                                         "image_index": image_index, "n_per_domain": n_per_domain,
                                         "marks": dict(marks)}, compute)
    if data.payload is None:
        return data, [], pd.DataFrame(columns=["model", "domain", "forgotten", "entropy", "peak", "top10"])
    rows = [(name, np.asarray(maps, dtype=np.float32)) for name, maps in data.payload["maps"]]
    if fm.dataset is not None and fm.env is not None:
        try:  # the pictures under the maps, where the data is
            label = int(data.payload["label"])
            _, data.images = test_images(fm.dataset, fm.env, None, samples=one_per_domain(
                fm.dataset.samples("test"), domains, label, image_index))
        except (DataError, OSError, ValueError):
            data.images = None
    return data, rows, pd.DataFrame(data.payload["stats"])
