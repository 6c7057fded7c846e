"""The library behind the book's analysis pages: sweep grids, their run plans, t-SNE and attention statistics.

The pages ``sensitivity``, ``shots``, ``pseudo_labels``, ``tsne`` and ``attention`` stay thin::

    points = analysis.sweep_points("gamma", "0,1,10,30,100", pg.session_cfg())
    plan = analysis.sweep_plan(pg, points, sets)           # one PlannedRun per (point, forget set, seed)
    status = pg.ensure(plan)                               # trains only what is missing (the page's budget)
    table = analysis.ours_table(status.runs, ["sweep", "setting"])

Every sweep changes one configuration field while the others keep the tier's defaults, so the point at the default
value of every sweep is one and the same run (and the same run as Table 1's ADU row): it is planned once per
forget set and seed and trained once. The figure pages (t-SNE, attention maps) rebuild a finished run's trained
method with :func:`adu_core.train.load_trained` and compare it with zero-shot CLIP on the *same* frozen backbone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .config import RunConfig
from .report import METHOD_NAMES, METRIC_NAMES, PlannedRun, Variant, parse_list, summary_table

__all__ = [
    "FIGURE_DOMAINS",
    "LABELLERS",
    "PLACEMENTS",
    "SWEEPS",
    "SweepPoint",
    "backbone_layers",
    "depth_grid",
    "FigureModels",
    "before_after",
    "describe_curve",
    "describe_levels",
    "figure_forget_sets",
    "figure_method",
    "image_features",
    "like_domain",
    "marked_domains",
    "one_per_domain",
    "ours_table",
    "plateau",
    "pseudo_label_plan",
    "rollout_maps",
    "rollout_stats",
    "separation_scores",
    "shots_plan",
    "sweep_plan",
    "sweep_points",
    "test_images",
    "trend_after_peak",
    "with_unit",
    "tsne_embedding",
    "with_run_metrics",
]

# Sweeps of the sensitivity page: RunConfig field (InstaPG's placement: `instapg`/`instapg_layers`) -> axis label.
SWEEPS: dict[str, str] = {
    "gamma": "γ (weight of DDL's domain CE)",
    "lam": "λ (weight of DDL's MMD²)",
    "prompt_depth": "prompt depth (first layers prompted)",
    "n_ctx": "prompt tokens per layer",
    "mmd_kernel": "MMD kernel",
    "instapg": "InstaPG placement",
    "epochs": "training epochs",
}
# InstaPG placements among the prompted layers 0..depth-1 ("default" is RunConfig's: every prompted layer after
# the first, whose prompts pass the encoder's ln_pre instead).
PLACEMENTS = ("none", "first", "middle", "default", "all")
LABELLERS = ("kmeans", "zeroshot")
# The paper's figures: the attention figure forgets Mini DomainNet's *real* domain; Table 4 forgets Office-Home's
# *Art*. "auto" forget sets of the figure pages use the datasets' matching domains (PACS: photo, art_painting).
FIGURE_DOMAINS = (("real", "photo"), ("art", "painting"))


# --- which domains ------------------------------------------------------------------------------------------------------
def like_domain(domains: Sequence[str], keys: Iterable[str]) -> str | None:
    """The first domain with one of ``keys`` (in order) as a word of its id (``real_world`` has ``real``)."""
    for key in keys:
        for d in domains:
            if key in d.split("_"):
                return d
    return None


def figure_forget_sets(domains: Sequence[str], spec: Any = "auto", n: int | None = None,
                       parse=None) -> list[tuple[str, ...]]:
    """``"auto"``: one single-domain forget set per entry of :data:`FIGURE_DOMAINS` that the dataset has (the
    real/photo-like domain, then the art/painting-like one), the first ``n`` of them; anything else goes to
    ``parse(spec)`` (the page's own parser, e.g. ``Page.forget``)."""
    if isinstance(spec, str) and spec.strip().lower() == "auto":
        found = [like_domain(domains, keys) for keys in FIGURE_DOMAINS]
        sets = list(dict.fromkeys((d,) for d in found if d is not None)) or [(domains[0],)]
        return sets[:n] if n else sets
    if parse is None:
        raise ValueError(f"forget sets {spec!r}: only 'auto' is understood without a parser")
    return list(parse(spec))


# --- sweeps -----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: the axis label, its position, the config overrides (empty at the default)."""

    sweep: str
    value: str
    position: int
    overrides: tuple[tuple[str, Any], ...]
    default: bool
    x: float | None = None  # the numeric value, when the swept field is numeric

    def variant(self, method: str = "adu") -> Variant:
        return Variant(f"{self.sweep}={self.value}", self.value, method, self.overrides)


def backbone_layers(cfg: RunConfig) -> int:
    """Transformer layers of ``cfg``'s image encoder: from a self-describing checkpoint when the file exists here,
    else from the named open_clip architecture (no weights are loaded)."""
    from .backbones import _looks_like_path, model_config

    if cfg.pretrained and _looks_like_path(cfg.pretrained) and Path(cfg.pretrained).expanduser().is_file():
        try:
            payload = torch.load(Path(cfg.pretrained).expanduser(), map_location="cpu", weights_only=True, mmap=True)
            layers = (payload.get("model_cfg") or {}).get("vision_cfg", {}).get("layers") \
                if isinstance(payload, dict) else None
            if layers:
                return int(layers)
        except Exception:  # noqa: BLE001 - an unreadable file: fall back to the architecture's config
            pass
    return int(model_config(cfg.backbone)["vision_cfg"]["layers"])


def depth_grid(n_layers: int, default: int, points: int = 4) -> list[int]:
    """``points`` prompt depths spread from 1 to ``n_layers`` (rounded), plus the default depth.

    The testbed's 6-layer encoder with its default depth 4 gives [1, 3, 4, 6]; ViT-B/16 (12 layers, depth 9)
    gives [1, 5, 8, 9, 12].
    """
    if n_layers < 1 or points < 1:
        raise ValueError(f"need n_layers >= 1 and points >= 1, got {n_layers}, {points}")
    spread = {int(round(float(x))) for x in np.linspace(1, n_layers, points)} if points > 1 else {n_layers}
    return sorted(spread | ({int(default)} if 1 <= default <= n_layers else set()))


def _placement(name: str, depth: int) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """(axis label, overrides) of an InstaPG placement for a prompt depth."""
    last = depth - 1
    if name == "none":
        return "none", (("instapg", False),)
    if name == "first":
        return "first (0)", (("instapg_layers", (0,)),)
    if name == "middle":
        return f"middle ({depth // 2})", (("instapg_layers", (depth // 2,)),)
    if name == "default":
        return ("after the first " + (f"(1–{last})" if last > 1 else f"({last})" if last == 1 else "(none)")), ()
    if name == "all":
        return f"all (0–{last})" if last > 0 else "all (0)", (("instapg_layers", tuple(range(depth))),)
    raise ValueError(f"unknown InstaPG placement {name!r}; choose among {', '.join(PLACEMENTS)}")


def _sweep_number(sweep: str, item: Any, kind: type[int] | type[float]) -> Any:
    try:
        return kind(item)
    except ValueError:
        what = "numbers" if kind is float else "whole numbers"
        raise ValueError(f"the {sweep} sweep takes {what}, got {item!r}") from None


def sweep_points(sweep: str, values: Any, cfg: RunConfig, depth_points: int = 4) -> list[SweepPoint]:
    """The points of one sweep around ``cfg`` (the page's default configuration).

    ``values``: a list or ``"a,b,c"``; ``None`` means the default grid (prompt depth: :func:`depth_grid` over the
    backbone's layers; epochs: ½, 1, 2 and 4 times ``cfg.epochs``; the others have no default here). A value equal
    to ``cfg``'s own gives no override, so it is the shared default run.
    """
    if sweep not in SWEEPS:
        raise ValueError(f"unknown sweep {sweep!r}; choose among {', '.join(SWEEPS)}")
    if values is None:
        if sweep == "prompt_depth":
            items: list[Any] = depth_grid(backbone_layers(cfg), cfg.prompt_depth, depth_points)
        elif sweep == "epochs":  # half, the default, twice and four times the default schedule
            items = sorted({max(1, cfg.epochs // 2), cfg.epochs, 2 * cfg.epochs, 4 * cfg.epochs})
        else:
            raise ValueError(f"the {sweep} sweep needs its values")
    else:
        items = [values] if isinstance(values, int | float) and not isinstance(values, bool) else parse_list(values)
    points: list[SweepPoint] = []
    for i, item in enumerate(items):
        if sweep in ("gamma", "lam"):
            v = _sweep_number(sweep, item, float)
            label = f"{v:g}"
            default = math.isclose(v, getattr(cfg, sweep))
            over = () if default else ((sweep, v),)
            x = v
        elif sweep in ("prompt_depth", "n_ctx", "epochs"):
            v = _sweep_number(sweep, item, int)
            if v < 1:
                raise ValueError(f"{sweep} values start at 1, got {v}")
            label, default, x = str(v), v == getattr(cfg, sweep), float(v)
            over = () if default else ((sweep, v),)
        elif sweep == "mmd_kernel":
            label, default, x = str(item), str(item) == cfg.mmd_kernel, None
            over = () if default else (("mmd_kernel", str(item)),)
        else:
            label, over = _placement(str(item), cfg.prompt_depth)
            default, x = not over, None
        points.append(SweepPoint(sweep, label, i, over, default, x))
    labels = [p.value for p in points]
    if len(set(labels)) != len(labels):
        raise ValueError(f"repeated values in the {sweep} sweep: {labels}")
    return points


def sweep_plan(page, points: Sequence[SweepPoint], forget: Sequence[Sequence[str]], method: str = "adu",
               **labels: Any) -> list[PlannedRun]:
    """One planned run per (point, forget set, seed), labelled ``sweep``, ``setting`` (the point's label),
    ``position``, ``default`` and ``x`` (its numeric value, or None)."""
    plan: list[PlannedRun] = []
    for p in points:
        plan += page.plan([p.variant(method)], forget, sweep=p.sweep, setting=p.value, position=p.position,
                          default=p.default, x=p.x, **labels)
    return plan


def shots_plan(page, methods: Sequence[str], shots: Sequence[int], forget: Sequence[Sequence[str]],
               default_shots: int) -> list[PlannedRun]:
    """Trained methods at every number of shots; ``zeroshot`` (which trains nothing) once, at the default."""
    plan: list[PlannedRun] = []
    for m in methods:
        name = METHOD_NAMES.get(m, m)
        if m == "zeroshot":
            plan += page.plan([Variant(m, name, m)], forget, shots=default_shots, reference=True)
            continue
        for k in shots:
            over = () if int(k) == int(default_shots) else (("shots", int(k)),)
            plan += page.plan([Variant(f"{m}@{k}", name, m, over)], forget, shots=int(k), reference=False)
    return plan


def pseudo_label_plan(page, methods: Sequence[str], labellers: Sequence[str], fractions: Sequence[float],
                      forget: Sequence[Sequence[str]]) -> tuple[list[PlannedRun], list[str]]:
    """Runs per (method, labeller, labelled fraction): (plan, notes on skipped points).

    A fraction of 1 keeps every domain label, so no labeller is used: it is the method's default run, shown at
    fraction 1 for every labeller. ``kmeans`` needs at least one labelled image per domain, so fraction 0 is
    skipped for it (noted).
    """
    plan: list[PlannedRun] = []
    notes: list[str] = []
    for labeller in labellers:
        if labeller not in LABELLERS:
            raise ValueError(f"unknown labeller {labeller!r}; choose among {', '.join(LABELLERS)}")
    for m in methods:
        name = METHOD_NAMES.get(m, m)
        for labeller in labellers:
            for f in fractions:
                f = float(f)
                if not 0.0 <= f <= 1.0:
                    raise ValueError(f"labelled fractions lie within [0, 1], got {f}")
                if labeller == "kmeans" and f == 0.0:
                    note = "kmeans needs at least one labelled image per domain, so it has no point at fraction 0"
                    if note not in notes:
                        notes.append(note)
                    continue
                over = () if f >= 1.0 else (("domain_label_fraction", f), ("pseudo_labeler", labeller))
                plan += page.plan([Variant(f"{m}/{labeller}@{f:g}", name, m, over)], forget, labeller=labeller,
                                  fraction=f)
    return plan, notes


# --- tables from runs --------------------------------------------------------------------------------------------------
def with_run_metrics(runs: pd.DataFrame, wanted: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """``runs`` plus one column per ``wanted`` name, read from each run's run.json at ``metrics[key1][key2]...``
    (NaN where absent, e.g. ``{"pseudo_label_acc": ("pseudo_labels", "pseudo_label_acc")}``)."""
    out = runs.copy()
    cache: dict[str, dict] = {}
    for name, keys in wanted.items():
        values = []
        for path in out.get("path", pd.Series(dtype=str)):
            if path not in cache:
                cache[path] = json.loads(Path(path).read_text()).get("metrics", {})
            value: Any = cache[path]
            for k in keys:
                value = value.get(k) if isinstance(value, dict) else None
            values.append(float(value) if isinstance(value, int | float) else math.nan)
        out[name] = pd.Series(values, index=out.index, dtype=float)
    return out


def ours_table(runs: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str] = ("h", "mem", "for"),
               key_names: Mapping[str, str] | None = None, digits: int = 2, sort: bool = False) -> pd.DataFrame:
    """Our numbers without a paper column: one row per key combination, "mean ± sample std" per metric ("–" where
    no run has it), and n (the runs averaged; the largest over metrics). Rows keep their first appearance in
    ``runs``, or are sorted (numbers numerically) with ``sort``; float keys are shown as ``%g``. Uses
    :func:`adu_core.report.summary_table`'s aggregation."""
    keys = list(keys)
    empty_paper = pd.DataFrame(columns=[*keys, "metric", "value"])
    cols = [m for m in metrics if m in runs.columns]
    s = summary_table(runs, empty_paper, keys=keys, metrics=cols, digits=digits)
    names = {m: METRIC_NAMES.get(m, m) for m in cols}
    if not len(s):
        return pd.DataFrame(columns=[*(names[m] for m in cols), "n"],
                            index=pd.MultiIndex.from_arrays([[]] * len(keys), names=keys) if len(keys) > 1
                            else pd.Index([], name=keys[0]))
    # unstack(sort=False) keeps summary_table's row order (pivot_table re-sorts each key's values on its own)
    wide = s.set_index([*keys, "metric"])["ours"].unstack("metric", sort=False)
    wide = wide.reindex(columns=cols).rename(columns=names).fillna("–")
    wide["n"] = s.groupby(keys, sort=False)["n"].max().reindex(wide.index).astype(int)
    if sort:
        wide = wide.sort_index(key=lambda idx: idx.map(_sort_key))
    wide.index = wide.index.map(lambda k: tuple(map(_key_text, k)) if isinstance(k, tuple) else _key_text(k))
    wide.columns.name = None
    wide.index.names = [(key_names or {}).get(k, k) for k in keys]
    return wide


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers first, in numeric order, then text (so that "–" rows go last)."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return (0, float(value))
    return (1, str(value))


def _key_text(value: Any) -> Any:
    return f"{value:g}" if isinstance(value, float | np.floating) else value


# --- conclusions from curves --------------------------------------------------------------------------------------------
def plateau(labels: Sequence[Any], values: Sequence[float], tol: float = 2.0) -> Any | None:
    """The first grid value from which every later value stays within ``tol`` of each other (at least two
    points), or None when the curve does not settle within the grid. Missing values (NaN) are skipped."""
    pairs = [(lab, float(v)) for lab, v in zip(labels, values, strict=True) if not pd.isna(v)]
    for i in range(len(pairs) - 1):
        rest = [v for _, v in pairs[i:]]
        if max(rest) - min(rest) <= tol:
            return pairs[i][0]
    return None


def with_unit(label: Any, unit: str) -> str:
    """``1`` + ``" shots"`` -> ``"1 shot"``; other labels keep the plural unit."""
    return f"{label}{unit[:-1] if str(label) == '1' and unit.endswith('s') else unit}"


def describe_curve(labels: Sequence[Any], values: Sequence[float], what: str = "", unit: str = "") -> str:
    """A phrase for a glued sentence: where the curve starts and ends, and its best point."""
    pairs = [(lab, float(v)) for lab, v in zip(labels, values, strict=True) if not pd.isna(v)]
    if not pairs:
        return "not measurable yet (no runs)"
    if len(pairs) == 1:
        return f"{pairs[0][1]:.2f} at {what}{with_unit(pairs[0][0], unit)} (one point only)"
    (l0, v0), (l1, v1) = pairs[0], pairs[-1]
    best = max(pairs, key=lambda p: p[1])
    text = f"{v0:.2f} at {what}{with_unit(l0, unit)} and {v1:.2f} at {what}{with_unit(l1, unit)} ({v1 - v0:+.2f})"
    if best[0] not in (l0, l1):
        text += f", highest ({best[1]:.2f}) at {what}{with_unit(best[0], unit)}"
    return text


def describe_levels(labels: Sequence[Any], values: Sequence[float], what: str = "") -> str:
    """A phrase for unordered levels (kernels, placements): the highest and the lowest and their values."""
    pairs = [(lab, float(v)) for lab, v in zip(labels, values, strict=True) if not pd.isna(v)]
    if not pairs:
        return "not measurable yet (no runs)"
    if len(pairs) == 1:
        return f"{pairs[0][1]:.2f} with {what}{pairs[0][0]} (one point only)"
    best = max(pairs, key=lambda p: p[1])
    worst = min(pairs, key=lambda p: p[1])
    return f"highest with {what}{best[0]} ({best[1]:.2f}), lowest with {what}{worst[0]} ({worst[1]:.2f})"


def trend_after_peak(labels: Sequence[Any], values: Sequence[float], unit: str = "") -> str:
    """Where the curve peaks and what follows: the sign of overfitting the shots page looks for."""
    pairs = [(lab, float(v)) for lab, v in zip(labels, values, strict=True) if not pd.isna(v)]
    if len(pairs) < 2:
        return "not measurable yet (fewer than two points)"
    best = max(range(len(pairs)), key=lambda i: pairs[i][1])
    if best == len(pairs) - 1:
        return f"highest at the largest value, {with_unit(pairs[-1][0], unit)} ({pairs[-1][1]:.2f})"
    (lb, vb), (ll, vl) = pairs[best], pairs[-1]
    return f"highest at {with_unit(lb, unit)} ({vb:.2f}), then {vl - vb:+.2f} by {with_unit(ll, unit)}"


# --- the figure pages -----------------------------------------------------------------------------------------------------
def marked_domains(domains: Sequence[str], names: Sequence[str], forget: Iterable[str]) -> dict[str, str]:
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
    from .data.tensor_cache import cached_images
    from .evaluate import test_subset

    chosen = list(samples) if samples is not None else test_subset(ds.samples("test"), n_per_domain)
    return chosen, cached_images(ds, chosen, env.image_size, desc="decode test", progress=False)


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
    from .methods import get_method

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
    from .backbones import BackboneError
    from .data.base import DataError
    from .train import load_trained

    if run_dir is None or not (Path(run_dir) / "run.json").is_file():
        return "the run does not exist, and this execution's run budget does not train it"
    try:
        return load_trained(run_dir, device=device)
    except FileNotFoundError as err:
        return f"its trained state cannot be loaded: {err}"
    except (BackboneError, DataError, OSError) as err:
        return f"it cannot be rebuilt on this machine: {type(err).__name__}: {err}"


@torch.inference_mode()
def image_features(method, env, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """L2-normalised image features of uint8 ``images`` [N, 3, S, S] (the features the class logits use)."""
    from .evaluate import predict

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


def rollout_maps(method, env, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Attention rollout of the class token over the patches ([N, gh, gw], :mod:`adu_core.attribution`) for uint8
    ``images``, with the method's own (prompted) encoder; zero-shot CLIP uses the plain frozen encoder."""
    from .attribution import attention_rollout, encoder_of
    from .pipeline import normalize

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
