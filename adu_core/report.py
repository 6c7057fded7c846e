"""The library behind the book: which runs a table needs, running only the missing ones, tables beside the paper.

A notebook of the book stays thin::

    plan = report.plan_runs("pacs", "testbed", report.method_variants(["adu", "baseline"]), sets, seeds=(1,))
    status = report.ensure_runs(plan, results_dir("testbed"), max_new_runs=0)   # trains what is missing, if asked
    table = report.summary_table(status.runs, paper_rows, keys=["n_forget", "variant"])

Runs are ``run.json`` files found by :func:`adu_core.train.run_folder`; a run whose file exists is never redone unless
``force``. How many missing runs one call may train is its *budget* (:func:`resolve_budget`): unlimited for the
``paper`` and ``smoke`` tiers, zero for ``testbed`` (whose results are committed, so the book build stays fast and
shows what exists, stating n). ``ADU_MAX_NEW_RUNS`` or the notebook parameter ``max_new_runs`` override it.

The paper's numbers are data: ``book/paper_numbers.csv`` (see :func:`load_paper_numbers`).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import platform
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import RunConfig, field_docs, make_config
from .paths import project_root

__all__ = [
    "DATASET_NAMES",
    "METHOD_NAMES",
    "METRIC_NAMES",
    "PAPER_METHODS",
    "Page",
    "TABLE2_VARIANTS",
    "TABLE3_VARIANTS",
    "TIER_RUN_BUDGET",
    "TIER_SEEDS",
    "PlannedRun",
    "RunStatus",
    "Variant",
    "analogous_domain",
    "display_table",
    "ensure_data",
    "ensure_runs",
    "fmt",
    "forget_sets",
    "gap",
    "get_dataset",
    "method_options_table",
    "page",
    "parse_ints",
    "load_paper_numbers",
    "method_variants",
    "paper_for_variants",
    "paper_reference",
    "parse_forget_sets",
    "parse_list",
    "plan_runs",
    "protocol_table",
    "provenance_banner",
    "resolve_budget",
    "resolve_seeds",
    "select_variants",
    "session_banner",
    "styled",
    "summary_table",
    "verdict",
]

BUDGET_ENV = "ADU_MAX_NEW_RUNS"
# Seeds per tier when a notebook's `seeds` parameter is None. The paper averages 3 seeds [I6]; the testbed keeps
# one per forget/keep combination (the spread shown is then over combinations), the smoke tier one.
TIER_SEEDS: dict[str, tuple[int, ...]] = {"paper": (1, 2, 3), "testbed": (1,), "smoke": (1,)}
# Missing runs one notebook execution may train when `max_new_runs` is None and ADU_MAX_NEW_RUNS is unset
# (-1 = all). The testbed's results are committed, so building the book never trains; the paper tier is what a
# reproducer runs on a GPU (all of it, resumable); smoke runs take seconds.
TIER_RUN_BUDGET: dict[str, int] = {"paper": -1, "testbed": 0, "smoke": -1}

PAPER_METHODS = ("lp++", "clipfit", "bbf", "baseline", "adu")  # Table 1's rows, in the paper's order
METHOD_NAMES = {"zeroshot": "Zero-shot CLIP", "lp++": "LP++", "clipfit": "CLIPFit", "bbf": "BBF",
                "baseline": "Baseline", "adu": "ADU"}
METRIC_NAMES = {"h": "H", "mem": "Mem", "for": "For", "domain_acc": "Domain acc. (probe)",
                "domain_acc_head": "Domain acc. (ADU head)", "pseudo_label_acc": "Pseudo-label acc."}
DATASET_NAMES = {"imagenet": "ImageNet", "office_home": "Office-Home", "mini_domainnet": "Mini DomainNet",
                 "pacs": "PACS", "synthetic": "synthetic", "domainnet": "DomainNet"}
# Where the paper has no numbers for a dataset, its numbers for the closest dataset it has are shown (labelled):
# PACS and the synthetic styles pair domain by domain with Mini DomainNet (photo~real, art/painting, cartoon~clipart,
# sketch); Office-Home is next; ImageNet has only two domains.
REFERENCE_ORDER = ("mini_domainnet", "office_home", "imagenet")


# --- the paper's numbers ---------------------------------------------------------------------------------------------
PAPER_CSV_COLUMNS = ("table", "dataset", "n_forget", "forget", "method", "instapg", "ddl", "ddl_ce", "ddl_mmd",
                     "metric", "value", "source", "flag", "note")
SWITCHES = ("instapg", "ddl", "ddl_ce", "ddl_mmd")


def paper_numbers_path() -> Path:
    return project_root() / "book" / "paper_numbers.csv"


def load_paper_numbers(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The paper's Tables 1-4 as a tidy frame: one row per printed number, switches as nullable booleans.

    ``value`` is the number as printed (float); ``flag`` names a known inconsistency (empty when none).
    """
    explicit = path is not None
    path = Path(path) if explicit else paper_numbers_path()
    if path.is_file():
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    else:
        url = None if explicit else _installed_repo_file("book/paper_numbers.csv")
        if url is None:
            raise FileNotFoundError(f"{path} is missing: the paper's numbers live in book/paper_numbers.csv of the "
                                    "repository (clone it, or set ADU_PROJECT_ROOT to a clone)")
        import io
        import urllib.request

        with urllib.request.urlopen(url, timeout=30) as response:  # a pip install from git (Colab): same commit
            df = pd.read_csv(io.StringIO(response.read().decode()), dtype=str, keep_default_na=False)
    missing = set(PAPER_CSV_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)}")
    df["table"] = df["table"].astype(int)
    df["n_forget"] = df["n_forget"].astype(int)
    df["value"] = df["value"].astype(float)
    for col in SWITCHES:
        df[col] = df[col].map({"true": True, "false": False, "": pd.NA}).astype("boolean")
    return df


def _installed_repo_file(relpath: str) -> str | None:
    """The raw URL of ``relpath`` at the commit that pip installed adu-core from, for an install from a GitHub
    repository (PEP 610 ``direct_url.json``), e.g. the set-up cell on Colab; None otherwise."""
    from importlib import metadata

    try:
        info = json.loads(metadata.distribution("adu-core").read_text("direct_url.json") or "{}")
    except (metadata.PackageNotFoundError, json.JSONDecodeError):
        return None
    url, commit = info.get("url", ""), (info.get("vcs_info") or {}).get("commit_id")
    prefix = "https://github.com/"
    if not commit or not url.startswith(prefix):
        return None
    repo = url[len(prefix):].removesuffix(".git").strip("/")
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{relpath}"


def paper_reference(dataset: str, paper: pd.DataFrame, table: int) -> str:
    """``dataset`` itself when the paper's ``table`` has it, else the closest dataset it has (see REFERENCE_ORDER)."""
    have = set(paper.loc[paper["table"] == table, "dataset"])
    if dataset in have:
        return dataset
    for name in REFERENCE_ORDER:
        if name in have:
            return name
    raise ValueError(f"the paper's Table {table} has no dataset")


def paper_label(dataset: str, reference: str) -> str:
    """Column label for the paper's numbers, naming the paper's dataset when it is not ours."""
    name = DATASET_NAMES.get(reference, reference)
    return "paper" if dataset == reference else f"paper ({name})"


# --- what to run ---------------------------------------------------------------------------------------------------------
def forget_sets(domains: Sequence[str], sizes: Iterable[int] = (1, 2, 3)) -> list[tuple[str, ...]]:
    """Every forget set of each size, in domain order; sizes that would forget every domain are skipped.

    ``forget_sets(("a", "b", "c", "d"))`` gives the paper's 4 + 6 + 4 = 14 configurations; a two-domain dataset
    gives only its 2 single-domain sets.
    """
    domains = list(domains)
    if len(set(domains)) != len(domains):
        raise ValueError(f"repeated domains in {domains}")
    out: list[tuple[str, ...]] = []
    for k in sizes:
        if int(k) < 1:
            raise ValueError(f"forget-set sizes start at 1, got {k}")
        if int(k) < len(domains):
            out += [tuple(c) for c in itertools.combinations(domains, int(k))]
    return out


def parse_list(spec: Any) -> list[str]:
    """A papermill-friendly list: a list/tuple as is, or a string split on commas (blank items dropped)."""
    if spec is None:
        return []
    if isinstance(spec, str):
        return [s.strip() for s in spec.split(",") if s.strip()]
    if isinstance(spec, Iterable):
        return [str(s) for s in spec]
    return [str(spec)]


def parse_forget_sets(spec: Any, domains: Sequence[str], sizes: Iterable[int] = (1, 2, 3),
                      canonical=None) -> list[tuple[str, ...]]:
    """``"all"`` -> :func:`forget_sets`; ``"sketch;photo+sketch"`` (sets split by ``;``, domains by ``+``) or a list
    of lists -> those sets. ``canonical`` (e.g. ``Dataset.check_domains``) maps user spellings to domain ids."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return forget_sets(domains, sizes)
    groups: list[Any] = [g for g in spec.split(";") if g.strip()] if isinstance(spec, str) else list(spec)
    out: list[tuple[str, ...]] = []
    for g in groups:
        names = [n.strip() for n in g.replace(",", "+").split("+") if n.strip()] if isinstance(g, str) else list(g)
        if canonical is not None:
            names = list(canonical(names))
        unknown = set(names) - set(domains)
        if unknown:
            raise ValueError(f"unknown domains {sorted(unknown)}; valid: {', '.join(domains)}")
        if not names or len(set(names)) >= len(domains):
            raise ValueError(f"a forget set needs 1 to {len(domains) - 1} domains, got {names}")
        out.append(tuple(d for d in domains if d in set(names)))
    return out


def parse_ints(spec: Any) -> tuple[int, ...]:
    """An int, a list of ints, or ``"1,2,3"`` as a tuple of ints."""
    if isinstance(spec, bool):
        raise ValueError(f"expected integers, got {spec!r}")
    if isinstance(spec, int):
        return (spec,)
    return tuple(int(s) for s in parse_list(spec))


def resolve_seeds(seeds: Any, tier: str) -> tuple[int, ...]:
    """``None`` -> the tier's seeds; an int N -> the first N seeds (1..N); a list or ``"1,2,3"`` -> those seeds."""
    if seeds is None:
        return TIER_SEEDS.get(tier, (1,))
    if isinstance(seeds, bool):
        raise ValueError(f"seeds must be None, a count or a list, not {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds as a count must be >= 1, got {seeds}")
        return tuple(range(1, seeds + 1))
    return tuple(int(s) for s in parse_list(seeds))


def resolve_budget(max_new_runs: int | None, tier: str, force: bool = False) -> int:
    """Missing runs one call may train (-1 = all): the argument, else $ADU_MAX_NEW_RUNS, else all when ``force``,
    else the tier's default (:data:`TIER_RUN_BUDGET`)."""
    if max_new_runs is not None:
        return int(max_new_runs)
    env = os.environ.get(BUDGET_ENV, "").strip()
    if env:
        try:
            return int(env)
        except ValueError:
            raise ValueError(f"{BUDGET_ENV} must be an integer (-1 = all), got {env!r}") from None
    if force:
        return -1
    return TIER_RUN_BUDGET.get(tier, -1)


def analogous_domain(domains: Sequence[str], wanted: str = "art") -> str:
    """The domain with ``wanted`` as a word of its id (Table 4 forgets Office-Home's Art: PACS has art_painting),
    else the painting-like one, else the first domain."""
    for key in (wanted, "painting"):
        for d in domains:
            if key in d.split("_"):
                return d
    return domains[0]


@dataclass(frozen=True)
class Variant:
    """One row of a table: a method plus config switches, and how the paper's CSV marks the same row."""

    key: str
    label: str
    method: str
    overrides: tuple[tuple[str, Any], ...] = ()
    switches: tuple[tuple[str, bool], ...] = ()

    @property
    def override_dict(self) -> dict[str, Any]:
        return dict(self.overrides)


def method_variants(methods: Iterable[str]) -> list[Variant]:
    """One variant per method, labelled by its display name (Table 1, Table 4)."""
    return [Variant(m, METHOD_NAMES.get(m, m), m) for m in methods]


def select_variants(variants: Sequence[Variant], spec: Any) -> list[Variant]:
    """``"all"``/None -> all; else the variants whose keys are listed (comma-separated or a list)."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return list(variants)
    keys = parse_list(spec)
    known = {v.key for v in variants}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise ValueError(f"unknown rows {unknown}; valid: {', '.join(sorted(known))}")
    return [v for v in variants if v.key in keys]


# Table 2: DDL x InstaPG. Its (-, -) row is the Baseline and its (DDL, InstaPG) row is ADU, exactly as in Table 1,
# so those two reuse the Table 1 runs.
TABLE2_VARIANTS: tuple[Variant, ...] = (
    Variant("baseline", "neither (= Baseline)", "baseline", (), (("ddl", False), ("instapg", False))),
    Variant("instapg_only", "InstaPG only", "adu", (("ddl", False),), (("ddl", False), ("instapg", True))),
    Variant("ddl_only", "DDL only", "adu", (("instapg", False),), (("ddl", True), ("instapg", False))),
    Variant("adu", "DDL + InstaPG (= ADU)", "adu", (), (("ddl", True), ("instapg", True))),
)
# Table 3: CE x MMD inside DDL, InstaPG on. The (no CE, no MMD) row is the "InstaPG only" run of Table 2.
TABLE3_VARIANTS: tuple[Variant, ...] = (
    Variant("instapg_only", "neither (= InstaPG only)", "adu", (("ddl", False),), (("ddl_ce", False), ("ddl_mmd", False))),
    Variant("mmd_only", "MMD only", "adu", (("ddl_ce", False),), (("ddl_ce", False), ("ddl_mmd", True))),
    Variant("ce_only", "CE only", "adu", (("ddl_mmd", False),), (("ddl_ce", True), ("ddl_mmd", False))),
    Variant("adu", "CE + MMD (= ADU)", "adu", (), (("ddl_ce", True), ("ddl_mmd", True))),
)


def paper_for_variants(paper: pd.DataFrame, table: int, dataset: str, variants: Sequence[Variant]) -> pd.DataFrame:
    """The paper's rows of ``table`` for ``dataset`` with a ``variant`` column: rows are matched on the method (when
    the variant has no switches) or on the switches."""
    rows = paper[(paper["table"] == table) & (paper["dataset"] == dataset)]
    parts = []
    for v in variants:
        if v.switches:
            mask = pd.Series(True, index=rows.index)
            for name, value in v.switches:
                mask &= rows[name].fillna(False).astype(bool) == value
        else:
            mask = rows["method"] == v.method
        parts.append(rows[mask].assign(variant=v.label))
    return pd.concat(parts, ignore_index=True) if parts else rows.assign(variant=pd.Series(dtype=str))


@dataclass
class PlannedRun:
    """A run a table needs: its resolved config and its labels in the table (variant, table, ...)."""

    cfg: RunConfig
    labels: dict[str, Any] = field(default_factory=dict)


def plan_runs(dataset: str, tier: str, variants: Sequence[Variant], forget: Sequence[Sequence[str]],
              seeds: Sequence[int], labels: Mapping[str, Any] | None = None, **overrides: Any) -> list[PlannedRun]:
    """Every (seed, forget set, variant) run, seeds outermost so that a partial budget fills every cell first.

    ``overrides`` are RunConfig fields given by the notebook's parameters (``None`` = the tier's default); they
    apply to every run, under each variant's own switches. Configs are validated and resolved (domain names,
    switches the method implies) exactly as ``adu run`` does, so the run folders are the CLI's.
    """
    from .train import resolve_config

    given = {k: v for k, v in overrides.items() if v is not None}
    plan: list[PlannedRun] = []
    for seed in seeds:
        for fs in forget:
            for v in variants:
                cfg = make_config(dataset, tier, **{**given, **v.override_dict, "method": v.method,
                                                     "forget": tuple(fs), "seed": int(seed)})
                plan.append(PlannedRun(resolve_config(cfg), {**(labels or {}), "variant": v.label}))
    return plan


# --- running what is missing -------------------------------------------------------------------------------------------
def missing_weights(cfg: RunConfig) -> str | None:
    """Why ``cfg`` cannot run here for lack of local weights (a checkpoint path that does not exist), else None.

    open_clip tags (``openai``) are downloaded by the run itself and are never reported here.
    """
    from .backbones import _looks_like_path

    if cfg.pretrained is None or not _looks_like_path(cfg.pretrained):
        return None
    path = Path(cfg.pretrained).expanduser()
    if path.exists():
        return None
    try:
        shown = path.resolve().relative_to(project_root())
    except ValueError:
        shown = path
    return f"the weights file {shown} does not exist"


@dataclass
class RunStatus:
    """What :func:`ensure_runs` found and did. ``runs``: one row per planned run whose run.json exists."""

    planned: list[PlannedRun]
    results_root: Path
    runs: pd.DataFrame
    existed: int
    trained: int
    missing: list[PlannedRun]
    blocked: dict[str, int]
    budget: int

    @property
    def n_unique(self) -> int:
        return len({str(p.labels.get("_path")) for p in self.planned})

    def message(self, notebook: str = "NOTEBOOK", params: Mapping[str, Any] | None = None) -> str:
        """A Markdown paragraph for the page: what is shown, what is missing and the command that completes it."""
        total = self.n_unique
        have = total - len({str(p.labels.get("_path")) for p in self.missing})
        where = _short(self.results_root)
        text = (f"**{have} of {total} runs** needed by this page exist under `{where}`"
                f" ({self.existed} found, {self.trained} trained now).")
        if self.missing:
            n_missing = total - have
            args = " ".join(f"-p {k} {v}" for k, v in (params or {}).items())
            text += (f" **{n_missing} run{'s are' if n_missing != 1 else ' is'} missing**, so the tables below average the runs that exist (n is "
                     f"stated per cell). To complete them, run `papermill book/{notebook}.ipynb out.ipynb "
                     f"{args + ' ' if args else ''}-p max_new_runs -1` (resumable: runs that exist are skipped).")
            for reason, n in self.blocked.items():
                text += f" {n} of them cannot run on this machine: {reason}."
        else:
            text += " Nothing is missing."
        return text


def _short(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(project_root()))
    except ValueError:
        return str(path)


def ensure_data(datasets: Iterable[tuple[str, str | None]], progress: bool = True) -> None:
    """Download every (dataset, data_root) whose folder is missing (``adu data download NAME``), before training."""
    from .data import get_dataset as _get
    from .data.download import download_dataset

    for name, root in sorted(datasets, key=str):
        ds = _get(name, root=root)
        if getattr(ds, "on_disk", False) and not ds.dir.is_dir():
            print(f"{name}: {ds.dir} is missing, downloading it (adu data download {name})")
            download_dataset(ds, progress=progress)


def ensure_runs(plan: Sequence[PlannedRun | RunConfig], results_root: str | os.PathLike, force: bool = False,
                progress: bool = True, max_new_runs: int = -1, download: bool = True,
                group_size: int = 1) -> RunStatus:
    """Train the planned runs whose ``run.json`` is missing (all of them when ``force``), at most ``max_new_runs``
    (-1 = no limit), with one progress bar over runs; then read every planned run that exists. Datasets whose
    folder is missing are downloaded first (``download``), only when there is something to train.

    A run is found at :func:`adu_core.train.run_folder` under ``results_root`` (the CLI's layout), so runs made with
    ``adu run`` are reused. Runs whose local weights file is missing are not attempted and are reported in
    ``RunStatus.blocked``. An interrupted run resumes from its epoch checkpoint on the next call. ``group_size`` > 1
    trains up to that many compatible runs together in one pass over the frozen backbone
    (:func:`adu_core.multirun.run_grid`: same results, much faster on a GPU).
    """
    from .train import run_experiment, run_folder

    root = Path(results_root)
    planned = [p if isinstance(p, PlannedRun) else PlannedRun(p) for p in plan]
    unique: dict[Path, PlannedRun] = {}
    for p in planned:
        path = run_folder(root, p.cfg)
        p.labels["_path"] = path
        unique.setdefault(path, p)
    exists = {path: (path / "run.json").is_file() for path in unique}
    existed = sum(exists.values())
    todo = [path for path in unique if force or not exists[path]]
    blocked: Counter[str] = Counter()
    runnable = []
    for path in todo:
        reason = missing_weights(unique[path].cfg)
        if reason is None:
            runnable.append(path)
        else:
            blocked[reason] += 1
    if max_new_runs >= 0:
        runnable = runnable[:max_new_runs]
    trained = 0
    if runnable and download:
        ensure_data({(unique[p].cfg.dataset, unique[p].cfg.data_root) for p in runnable}, progress=progress)
    if runnable and group_size > 1:
        from .multirun import run_grid

        run_grid([unique[p].cfg for p in runnable], runnable, max_runs=group_size, force=force, progress=progress)
        trained = len(runnable)
    elif runnable:
        from tqdm.auto import tqdm

        bar = tqdm(runnable, desc="runs", unit="run", disable=not progress)
        for path in bar:
            cfg = unique[path].cfg
            bar.set_postfix_str(f"{cfg.method} forget={'+'.join(cfg.forget)} seed={cfg.seed}")
            run_experiment(cfg, path, force=force, progress=False)
            trained += 1
        bar.close()
    rows, missing = [], []
    for p in planned:
        run_json = p.labels["_path"] / "run.json"
        if run_json.is_file():
            rows.append(_run_row(json.loads(run_json.read_text()), p, run_json))
        else:
            missing.append(p)
    runs = pd.DataFrame(rows, columns=RUN_COLUMNS if not rows else None)
    return RunStatus(planned, root, runs, existed, trained, missing, dict(blocked), max_new_runs)


RUN_COLUMNS = ["variant", "dataset", "method", "tier", "seed", "forget", "n_forget", "h", "mem", "for",
               "domain_acc_probe", "domain_acc_head", "path", "commit", "dirty", "adu_core", "torch", "weights",
               "weights_sha256", "data_sha256", "device", "gpu", "total_s"]


def _run_row(run: dict, planned: PlannedRun, path: Path) -> dict[str, Any]:
    cfg, metrics, prov = run["config"], run["metrics"], run.get("provenance", {})
    hw, pkgs, code, weights = (prov.get(k) or {} for k in ("hardware", "packages", "code", "weights"))
    row = {k: v for k, v in planned.labels.items() if not k.startswith("_")}
    row.update(dataset=cfg["dataset"], method=cfg["method"], tier=cfg["tier"], seed=cfg["seed"],
               forget="+".join(sorted(cfg["forget"])), n_forget=len(cfg["forget"]))
    row.update({k: metrics.get(k) for k in ("h", "mem", "for", "domain_acc_probe", "domain_acc_head")})
    row.update(path=str(path), commit=code.get("commit"), dirty=code.get("dirty"), adu_core=pkgs.get("adu-core"),
               torch=pkgs.get("torch"), weights=weights.get("pretrained") or weights.get("name"),
               weights_sha256=weights.get("sha256"), data_sha256=prov.get("data_sha256"),
               device=hw.get("gpu") or hw.get("device"), gpu=hw.get("gpu"),
               total_s=(run.get("timings") or {}).get("total_s"))
    return row


# --- tables --------------------------------------------------------------------------------------------------------------
def fmt(x: Any, digits: int = 2) -> str:
    """A number for a table or a glued sentence: fixed digits, "n/a" for missing."""
    try:
        if x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x):
            return "n/a"
    except (TypeError, ValueError):
        pass
    return f"{float(x):.{digits}f}"


def summary_table(runs: pd.DataFrame, paper: pd.DataFrame, keys: Sequence[str],
                  metrics: Sequence[str] = ("h", "mem", "for"), digits: int = 2) -> pd.DataFrame:
    """Paper value beside ours, one row per (keys..., metric).

    ``runs`` has one row per run with the ``keys`` and metric columns (H is per run, then averaged, as the paper
    does); ``paper`` is the tidy paper frame restricted to the matching table and dataset, with the same ``keys``
    (and ``metric``/``value``). Columns: keys, metric, paper, mean, std (sample, NaN for n = 1), n, diff (ours −
    paper), ours ("mean ± std" text). Rows are in the order of first appearance in ``paper`` then ``runs``, key by
    key within the keys before it.
    """
    keys = list(keys)
    long = runs.melt(id_vars=keys, value_vars=[m for m in metrics if m in runs.columns], var_name="metric",
                     value_name="value") if len(runs) else pd.DataFrame(columns=[*keys, "metric", "value"])
    long = long.dropna(subset=["value"])
    ours = (long.groupby([*keys, "metric"], sort=False, dropna=False)["value"]
            .agg(mean="mean", std="std", n="count").reset_index())
    ref = paper[paper["metric"].isin(metrics)][[*keys, "metric", "value"]].rename(columns={"value": "paper"})
    for k in keys:  # align dtypes so that merge keys compare equal
        if k in ours.columns and len(ours):
            ref[k] = ref[k].astype(ours[k].dtype)
    out = ref.merge(ours, on=[*keys, "metric"], how="outer", sort=False)
    out["n"] = out["n"].fillna(0).astype(int)
    out["diff"] = out["mean"] - out["paper"]
    out["ours"] = [_mean_std(m, s, n, digits) for m, s, n in zip(out["mean"], out["std"], out["n"], strict=True)]
    # rows in nested order of first appearance (the paper's rows first, then ours-only rows): each key's values in
    # the order they first appear within the group of the keys before it, so that a value seen earlier under
    # another group (a sweep's "4" under prompt depth) does not move ahead in this one
    seen = pd.concat([ref[keys], ours[keys]], ignore_index=True) if len(ours) else ref[keys]
    sort_cols = []
    for i, k in enumerate(keys):
        group, col = keys[:i], f"_{k}"
        first = seen.drop_duplicates(subset=[*group, k])
        rank = first.groupby(group, sort=False, dropna=False).cumcount() if group else pd.Series(range(len(first)),
                                                                                                   index=first.index)
        out = out.merge(first[[*group, k]].assign(**{col: rank.to_numpy()}), on=[*group, k], how="left")
        sort_cols.append(col)
    out["_metric"] = out["metric"].map({m: i for i, m in enumerate(metrics)})
    sort_cols.append("_metric")
    return out.sort_values(sort_cols, kind="stable").drop(columns=sort_cols).reset_index(drop=True)


def _mean_std(mean: float, std: float, n: int, digits: int) -> str:
    if n == 0 or pd.isna(mean):
        return "–"
    if n == 1 or pd.isna(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def display_table(summary: pd.DataFrame, keys: Sequence[str], paper_col: str = "paper",
                  key_names: Mapping[str, str] | None = None, digits: int = 2) -> pd.DataFrame:
    """The summary as a wide, formatted table: per metric the paper's value, ours ("mean ± std") and Δ = ours −
    paper; then n (runs averaged). Missing values show as "–"."""
    keys = list(keys)
    metrics = list(dict.fromkeys(summary["metric"]))
    blocks = {}
    for m in metrics:
        part = summary[summary["metric"] == m].set_index(keys)
        name = METRIC_NAMES.get(m, m)
        blocks[(name, paper_col)] = part["paper"].map(lambda x: "–" if pd.isna(x) else f"{x:.{digits}f}")
        blocks[(name, "ours")] = part["ours"]
        blocks[(name, "Δ")] = part["diff"].map(lambda x: "–" if pd.isna(x) else f"{x:+.{digits}f}")
    wide = pd.DataFrame(blocks)
    n = summary.groupby(keys, sort=False)["n"].max()
    wide[("", "n")] = n.reindex(wide.index).fillna(0).astype(int)
    wide.columns = pd.MultiIndex.from_tuples(wide.columns)
    wide.index.names = [(key_names or {}).get(k, k) for k in keys]
    return wide


# --- provenance ------------------------------------------------------------------------------------------------------------
def _counted(values: Iterable[Any], width: int = 12) -> str:
    counts = Counter("none" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values)
    parts = [f"{(k[:width] + '…') if len(k) > width + 1 and all(c in '0123456789abcdef' for c in k) else k}"
             f" ({n} run{'s' if n != 1 else ''})" for k, n in counts.most_common()]
    return "; ".join(parts) if parts else "–"


def provenance_banner(results: RunStatus | pd.DataFrame) -> str:
    """Code versions, weights and data hashes and devices recorded in the shown runs' run.json files."""
    runs = results.runs if isinstance(results, RunStatus) else results
    if runs is None or not len(runs):
        return "Runs shown: none yet (no run.json of this page's plan exists)."
    code = [f"{'uncommitted' if c is None else c[:10]}{'' if d is None else (' (dirty)' if d else '')}"
            for c, d in zip(runs["commit"], runs["dirty"], strict=True)]
    unique = runs.drop_duplicates("path")
    lines = [
        f"Runs shown: {len(unique)} run.json files",
        f"  code (git commit):   {_counted(code[i] for i in np.flatnonzero(~runs.duplicated('path')))}",
        f"  adu-core / torch:    {_counted(f'{a} / {t}' for a, t in zip(unique['adu_core'], unique['torch'], strict=True))}",
        f"  weights:             {_counted(unique['weights'])}",
        f"  weights sha256:      {_counted(unique['weights_sha256'])}",
        f"  data manifest sha256: {_counted(unique['data_sha256'])}",
        f"  device:              {_counted(unique['device'])}",
    ]
    return "\n".join(lines)


def session_banner(cfg: RunConfig | None = None) -> str:
    """This session's code version, device, and the weights and data that new runs of ``cfg`` would use."""
    import torch

    from .results import git_version, package_versions

    git = git_version()
    pk = package_versions()
    commit = git.get("commit")
    code = "no git commit" if commit is None else f"git {commit[:10]}{' (adu_core modified)' if git.get('dirty') else ''}"
    if torch.cuda.is_available():
        device = f"cuda: {torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    else:
        device = f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    lines = [f"Code: adu-core {pk.get('adu-core')}, {code}; python {pk['python']}, torch {pk.get('torch')}, "
             f"open_clip {pk.get('open_clip_torch')}",
             f"Device: {device}"]
    if cfg is not None:
        lines.append(f"Weights: {_weights_text(cfg)}")
        lines.append(f"Data: {_data_text(cfg)}")
    return "\n".join(_wrap(line) for line in lines)


def _wrap(line: str, width: int = 88) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(line, width, subsequent_indent="    ", break_on_hyphens=False,
                                   break_long_words=True))


def _weights_text(cfg: RunConfig) -> str:
    from .backbones import _looks_like_path, file_sha256

    if cfg.pretrained is None:
        return f"{cfg.backbone}, random initialisation (no weights)"
    if _looks_like_path(cfg.pretrained):
        reason = missing_weights(cfg)
        if reason:
            return f"{cfg.backbone}: MISSING — {reason}; new runs of this tier cannot start here"
        return f"{_short(Path(cfg.pretrained))} sha256 {file_sha256(cfg.pretrained)}"
    return f"open_clip {cfg.backbone} '{cfg.pretrained}' (downloaded at the first run; its sha256 goes in run.json)"


def get_dataset(name: str, **kwargs: Any):
    """The registry's dataset (re-exported for the notebooks)."""
    from .data import get_dataset as _get

    return _get(name, **kwargs)


def _data_text(cfg: RunConfig) -> str:
    try:
        ds = get_dataset(cfg.dataset, root=cfg.data_root)
        where = f" at {ds.dir}" if getattr(ds, "on_disk", False) else " (generated in process)"
        return f"{cfg.dataset}{where}, manifest sha256 {ds.manifest_sha256()}"
    except Exception as err:  # the page still renders the runs that exist; say why new runs cannot start
        return f"{cfg.dataset}: not available here ({type(err).__name__}: {err})"


# --- protocol --------------------------------------------------------------------------------------------------------------
# What the paper states for each RunConfig field (with its source tag from PAPER.md); fields not listed: not stated.
PAPER_PROTOCOL: dict[str, str] = {
    "dataset": "ImageNet (+ a 2nd domain), Office-Home, Mini DomainNet, a 4th dataset [KB, PN]",
    "forget": "every forget/keep combination for |D_forget| = 1, 2, 3 [KB Table 1 caption]",
    "method": "ADU; Baseline, LP++, CLIPFit, BBF [KB Table 1]",
    "seed": "3 seeds, averaged [I6]",
    "backbone": "CLIP ViT-B/16 [PN]",
    "pretrained": "CLIP (OpenAI weights) [PN]",
    "templates": "\"a photo of a [CLASS].\" [PP Fig. 2a]",
    "shots": "\"8 labeled samples per domain\" [PN]",
    "n_ctx": "8 [PN]",
    "prompt_depth": "9 (first 9 layers) [PN]",
    "instapg": "on (Table 2 switch) [KB]",
    "ddl": "on (Table 2 switch) [KB]",
    "ddl_ce": "on (Table 3 switch) [PN]",
    "ddl_mmd": "on (Table 3 switch) [PN]",
    "gamma": "30 [PN]",
    "lam": "10 [PN]",
    "epochs": "50 [PN]",
    "lr": "0.0025, SGD [PN]",
}


def _cell(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value) if value else "()"
    if isinstance(value, dict):
        return json.dumps(value) if value else "{}"
    return "None" if value is None else str(value)


def protocol_table(paper_dataset: str = "office_home", testbed_dataset: str = "pacs",
                   tier: str = "testbed") -> pd.DataFrame:
    """Every RunConfig field: the paper's value (or "not stated"), our paper-tier default, the value at ``tier``
    (the testbed by default), whether that tier changes it, whether the choice is ours ([G] in its doc), and the
    field's doc line."""
    paper_cfg = make_config(paper_dataset, "paper").to_dict()
    testbed_cfg = make_config(testbed_dataset, tier).to_dict()
    root = str(project_root())
    rows = []
    for name, doc in field_docs().items():
        p, t = paper_cfg[name], testbed_cfg[name]
        t_text = _cell(t).replace(root + os.sep, "") if isinstance(t, str) else _cell(t)
        identity = name in ("dataset", "tier", "forget", "method", "seed")
        rows.append({
            "field": name,
            "paper": PAPER_PROTOCOL.get(name, "not stated"),
            "paper tier (default)": _cell(p),
            f"{tier} tier": t_text,
            f"{tier} differs": "" if identity or p == t else "yes",
            "our choice [G]": "yes" if "[G" in doc else "",
            "doc": doc,
        })
    return pd.DataFrame(rows)


def method_options_table() -> pd.DataFrame:
    """Every registered method's own options (``method_options``): default and doc line."""
    import dataclasses

    from .methods import get_method, list_methods

    rows = []
    for name in list_methods():
        cls = get_method(name).options_cls
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else "required")
            doc = f.metadata.get("doc", "")
            rows.append({"method": name, "option": f.name, "default": _cell(default), "our choice [G]":
                         "yes" if "[G" in doc else "", "doc": doc})
        if not dataclasses.fields(cls):
            rows.append({"method": name, "option": "–", "default": "", "our choice [G]": "",
                         "doc": (cls.__doc__ or "").strip()})
    return pd.DataFrame(rows)


# --- conclusions from the numbers ------------------------------------------------------------------------------------------
def gap(summary: pd.DataFrame, metric: str, a: str, b: str, column: str = "mean", key: str = "variant",
        by: str | None = "n_forget") -> dict[Any, float]:
    """``a − b`` of ``column`` ("mean": ours, "paper") for ``metric``, per value of ``by`` where both exist."""
    part = summary[summary["metric"] == metric]
    groups = part.groupby(by, sort=True) if by else [(None, part)]
    out: dict[Any, float] = {}
    for k, g in groups:
        va = g.loc[g[key] == a, column]
        vb = g.loc[g[key] == b, column]
        if len(va) and len(vb) and pd.notna(va.iloc[0]) and pd.notna(vb.iloc[0]):
            out[k] = float(va.iloc[0]) - float(vb.iloc[0])
    return out


def mean_of(values: Mapping[Any, float]) -> float:
    return float(np.mean(list(values.values()))) if values else math.nan


def verdict(gaps: Mapping[Any, float], expected: Iterable[Any], higher: str = "higher", lower: str = "lower",
            what: str = "|D_forget|") -> str:
    """A phrase for a glued sentence: where ``gaps`` (a − b per group) is positive, over the groups ``expected``."""
    expected = list(expected)
    have = [k for k in expected if k in gaps]
    if not have:
        return "not measurable yet (no runs)"
    pos = [k for k in have if gaps[k] > 0]
    neg = [k for k in have if gaps[k] <= 0]
    where = ", ".join(str(k) for k in have)
    tail = "" if len(have) == len(expected) else f" (only {what} = {where} have runs)"
    if not neg:
        return f"{higher} at every {what} ({where}){tail}"
    if not pos:
        return f"{lower} at every {what} ({where}){tail}"
    return (f"{higher} at {what} = {', '.join(str(k) for k in pos)} but {lower} at "
            f"{', '.join(str(k) for k in neg)}{tail}")


def signed(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.{digits}f}"


# --- one page of the book ----------------------------------------------------------------------------------------------
@dataclass
class Page:
    """A notebook's parameters, resolved once: data set, tier, seeds, config overrides, results folder, budget."""

    name: str
    dataset: str
    tier: str
    seeds: tuple[int, ...]
    overrides: dict[str, Any]
    results_root: Path
    force: bool
    budget: int
    paper: pd.DataFrame
    paper_dataset: str | None
    command_params: dict[str, Any]
    domains: tuple[str, ...] = ()
    domain_names: tuple[str, ...] = ()
    group_size: int = 1
    _dataset: Any = None

    @property
    def data(self):
        return self._dataset

    def forget(self, spec: Any = "all", sizes: Any = (1, 2, 3)) -> list[tuple[str, ...]]:
        return parse_forget_sets(spec, self.domains, parse_ints(sizes), canonical=self._dataset.check_domains)

    def methods(self, spec: Any, default: Sequence[str]) -> tuple[list[str], list[str]]:
        """(registered methods to run, requested but not implemented here)."""
        from .methods import list_methods

        wanted = list(default) if spec is None or (isinstance(spec, str) and spec.strip() == "all") \
            else parse_list(spec)
        have = set(list_methods())
        return [m for m in wanted if m in have], [m for m in wanted if m not in have]

    def plan(self, variants: Sequence[Variant], forget: Sequence[Sequence[str]], **labels: Any) -> list[PlannedRun]:
        return plan_runs(self.dataset, self.tier, variants, forget, self.seeds, labels=labels, **self.overrides)

    def ensure(self, plan: Sequence[PlannedRun], progress: bool = True) -> RunStatus:
        return ensure_runs(plan, self.results_root, force=self.force, progress=progress, max_new_runs=self.budget,
                           group_size=self.group_size)

    def reference(self, table: int) -> str:
        return self.paper_dataset or paper_reference(self.dataset, self.paper, table)

    def paper_label(self, table: int) -> str:
        return paper_label(self.dataset, self.reference(table))

    def paper_note(self, table: int) -> str:
        """A Markdown line naming the paper's dataset beside ours, and the setting of ours."""
        ref, ours = self.reference(table), DATASET_NAMES.get(self.dataset, self.dataset)
        name = DATASET_NAMES.get(ref, ref)
        if ref == self.dataset:
            return f"The paper's column and ours are both **{name}** (ours: `{self.tier}` tier)."
        return (f"The paper's column is **{name}**; ours is **{ours}** (`{self.tier}` tier), which the paper's "
                f"Table {table} does not have, so Δ compares two settings rather than measuring a reproduction gap.")

    def session_cfg(self, method: str = "adu") -> RunConfig:
        return make_config(self.dataset, self.tier, **{**self.overrides, "method": method})

    def describe(self) -> str:
        where = _short(self.results_root)
        budget = "all missing runs" if self.budget < 0 else f"at most {self.budget} missing run(s)"
        over = ", ".join(f"{k}={v}" for k, v in self.overrides.items()) or "none"
        return _wrap(f"Page {self.name}: dataset {self.dataset}, tier {self.tier}, seeds {list(self.seeds)}, "
                     f"overrides of the tier's defaults: {over}; results under {where}; this execution trains "
                     f"{budget}{' (force: existing runs are redone)' if self.force else ''}.")


def page(name: str, dataset: str, tier: str, seeds: Any = None, epochs: int | None = None,
         backbone: str | None = None, pretrained: str | None = None, device: str | None = "auto",
         results_root: str | os.PathLike | None = None, force: bool = False, max_new_runs: int | None = None,
         paper_dataset: str | None = None, group_size: int = 1) -> Page:
    """Resolve a notebook's common parameters (``None`` = the tier's default) into a :class:`Page`."""
    from .config import TIERS
    from .data import get_dataset
    from .paths import results_dir

    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")
    ds = get_dataset(dataset)
    overrides = {k: v for k, v in {"epochs": epochs, "backbone": backbone, "pretrained": pretrained,
                                   "device": None if device in (None, "auto") else device}.items() if v is not None}
    root = Path(results_root).expanduser().resolve() if results_root else results_dir(tier)
    cmd = {"dataset": dataset, "tier": tier, **{k: v for k, v in overrides.items()}}
    if seeds is not None:
        cmd["seeds"] = json.dumps(seeds) if not isinstance(seeds, str | int) else seeds
    if results_root:
        cmd["results_root"] = str(results_root)
    return Page(name=name, dataset=dataset, tier=tier, seeds=resolve_seeds(seeds, tier), overrides=overrides,
                results_root=root, force=bool(force), budget=resolve_budget(max_new_runs, tier, bool(force)),
                paper=load_paper_numbers(), paper_dataset=paper_dataset, command_params=cmd,
                domains=tuple(ds.domains), domain_names=tuple(ds.domain_names), group_size=max(1, int(group_size)),
                _dataset=ds)


def styled(df: pd.DataFrame, font_size: str = "0.8em", min_widths: Mapping[str, str] | None = None) -> Any:
    """A wide table in a smaller font, so that it fits the book's text column (a pandas Styler); ``min_widths``
    keeps long text columns readable (e.g. ``{"doc": "18em"}``)."""
    props = [("font-size", font_size), ("padding", "2px 6px"), ("vertical-align", "top")]
    sty = df.style.set_table_styles([{"selector": "th, td", "props": props}])
    for column, width in (min_widths or {}).items():
        sty = sty.set_properties(subset=[column], **{"min-width": width})
    return sty
