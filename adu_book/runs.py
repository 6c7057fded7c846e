"""Running only the missing runs of a page, within its budget, then reading back every run that exists.

Runs are ``run.json`` files found by :func:`adu_core.train.run_folder`; a run whose file exists is never redone
unless ``force``. How many missing runs one call may train is its *budget* (:func:`resolve_budget`): unlimited for
the ``paper`` and ``smoke`` tiers, zero for ``testbed`` (whose results are committed, so the book build stays fast
and shows what exists, stating n). ``ADU_MAX_NEW_RUNS`` or the notebook parameter ``max_new_runs`` override it.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from adu_core.backbones import looks_like_path
from adu_core.config import RunConfig
from adu_core.data import download as data_download
from adu_core.data import get_dataset
from adu_core.multirun import run_grid
from adu_core.paths import project_root, resolve_path
from adu_core.results import RunFileError, read_run
from adu_core.train import run_experiment, run_folder

from .plans import PlannedRun

__all__ = ["BUDGET_ENV", "RUN_COLUMNS", "SHARD_ENV", "shard_slice", "TIER_RUN_BUDGET", "RunStatus", "count_runs", "ensure_data", "ensure_runs",
           "missing_weights", "resolve_budget", "short_path"]

BUDGET_ENV = "ADU_MAX_NEW_RUNS"
# "k/n": this process trains only the planned runs at positions k, k + n, k + 2n, ... (0-based), so n processes
# (e.g. one per CPU core, each on one thread) share a page's grid without waiting on each other's run locks.
SHARD_ENV = "ADU_RUN_SHARD"
# Missing runs one notebook execution may train when `max_new_runs` is None and ADU_MAX_NEW_RUNS is unset
# (-1 = all). The testbed's results are committed, so building the book never trains; the paper tier is what a
# reproducer runs on a GPU (all of it, resumable); smoke runs take seconds.
TIER_RUN_BUDGET: dict[str, int] = {"paper": -1, "testbed": 0, "smoke": -1}

RUN_COLUMNS = ["variant", "dataset", "method", "tier", "seed", "forget", "n_forget", "h", "mem", "for",
               "domain_acc_probe", "domain_acc_head", "path", "commit", "dirty", "adu_core", "torch", "weights",
               "weights_sha256", "random_weights", "data_sha256", "data_layout", "data_protocol", "device", "gpu",
               "precision", "total_s"]


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


def shard_slice() -> slice:
    """The share of a plan's runs this process may train (``ADU_RUN_SHARD=k/n``; all when unset)."""
    spec = os.environ.get(SHARD_ENV, "").strip()
    if not spec:
        return slice(None)
    try:
        k, n = (int(x) for x in spec.split("/"))
        if not 0 <= k < n:
            raise ValueError
    except ValueError:
        raise ValueError(f"{SHARD_ENV} must be 'k/n' with 0 <= k < n (e.g. 0/2 and 1/2), got {spec!r}") from None
    return slice(k, None, n)


def short_path(path: str | os.PathLike) -> str:
    """``path`` relative to the project root when it lies inside it (what a page prints), else as given."""
    try:
        return str(Path(path).resolve().relative_to(project_root()))
    except ValueError:
        return str(path)


def missing_weights(cfg: RunConfig) -> str | None:
    """Why ``cfg`` cannot run here for lack of local weights (a checkpoint path that does not exist), else None.

    open_clip tags (``openai``) are downloaded by the run itself and are never reported here.
    """
    if cfg.pretrained is None or not looks_like_path(cfg.pretrained):
        return None
    path = resolve_path(cfg.pretrained)  # project-relative in configs: found from book/ as from the root
    if path.exists():
        return None
    return f"the weights file {short_path(path)} does not exist"


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
    problems: tuple[str, ...] = ()  # run.json files that are not valid runs: one line each (file, what, fix)

    @property
    def n_unique(self) -> int:
        return len({str(p.labels.get("_path")) for p in self.planned})

    def grid(self) -> str:
        """The page's grid in words: settings × forget sets (by size) × seeds."""
        if not self.planned:
            return "The page plans no runs."
        sets = {p.cfg.forget for p in self.planned}
        sizes = sorted({len(f) for f in sets})
        settings = len({json.dumps({**p.cfg.to_dict(), "forget": None, "seed": None}, sort_keys=True, default=str)
                        for p in self.planned})  # distinct configurations apart from forget set and seed
        seeds = sorted({p.cfg.seed for p in self.planned})
        return (f"Its grid: {settings} configuration{'s' if settings != 1 else ''} × {len(sets)} forget "
                f"set{'s' if len(sets) != 1 else ''} (|D_forget| = {', '.join(map(str, sizes))}) × "
                f"seed{'s' if len(seeds) != 1 else ''} {', '.join(map(str, seeds))}.")

    def message(self, notebook: str = "NOTEBOOK", params: Mapping[str, Any] | None = None) -> str:
        """A Markdown paragraph for the page: what is shown, what is missing and the command that completes it."""
        total = self.n_unique
        have = total - len({str(p.labels.get("_path")) for p in self.missing})
        text = (f"**{have} of {total} runs** needed by this page exist under `{short_path(self.results_root)}`"
                f" ({self.existed} found, {self.trained} trained now). {self.grid()}")
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
        if notebook != "regime" and any(p.cfg.tier != "paper" for p in self.planned):
            # a proxy's numbers come with where they stop carrying (the regime page)
            text += (" These runs are not on the paper's CLIP ViT-B/16: which verdicts carry to the paper's regime is "
                     "on [How far the testbed carries](regime.html).")
        for problem in self.problems:
            text += f"\n\n**Left out, not a valid run:** `{problem}`"
        return text


def count_runs(runs: pd.DataFrame) -> int:
    """Distinct runs in a frame of :attr:`RunStatus.runs` (a run shared by two rows of a page counts once)."""
    return runs["path"].nunique() if len(runs) else 0


def ensure_data(datasets: Iterable[tuple[str, str | None]], progress: bool = True) -> None:
    """Download every (dataset, data_root) whose folder is missing (``adu data download NAME``), before training."""
    for name, root in sorted(datasets, key=str):
        ds = get_dataset(name, root=root)
        if getattr(ds, "on_disk", False) and not ds.dir.is_dir():
            print(f"{name}: {ds.dir} is missing, downloading it (adu data download {name})")
            data_download.download_dataset(ds, progress=progress)


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
    root = Path(results_root)
    planned = [p if isinstance(p, PlannedRun) else PlannedRun(p) for p in plan]
    unique: dict[Path, PlannedRun] = {}
    for p in planned:
        path = run_folder(root, p.cfg)
        p.labels["_path"] = path
        unique.setdefault(path, p)
    exists = {path: (path / "run.json").is_file() for path in unique}  # a broken file counts: never overwritten
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
    mine = set(list(unique)[shard_slice()])  # a share of the whole plan, the same whatever is done already
    runnable = [path for path in runnable if path in mine]
    if max_new_runs >= 0:
        runnable = runnable[:max_new_runs]
    trained = 0
    if runnable and download:
        ensure_data({(unique[p].cfg.dataset, unique[p].cfg.data_root) for p in runnable}, progress=progress)
    if runnable and group_size > 1:
        run_grid([unique[p].cfg for p in runnable], runnable, max_runs=group_size, force=force, progress=progress)
        trained = len(runnable)
    elif runnable:
        bar = tqdm(runnable, desc="runs", unit="run", disable=not progress)
        for path in bar:
            cfg = unique[path].cfg
            bar.set_postfix_str(f"{cfg.method} forget={'+'.join(cfg.forget)} seed={cfg.seed}")
            run_experiment(cfg, path, force=force, progress=False)
            trained += 1
        bar.close()
    rows, missing, problems = [], [], {}
    for p in planned:
        run_json = p.labels["_path"] / "run.json"
        try:
            rows.append(_run_row(read_run(run_json), p, run_json) if run_json.is_file() else None)
        except RunFileError as err:  # a broken file is reported, and its run counted as missing
            problems[str(run_json)] = short_message(err)
            rows.append(None)
        if rows[-1] is None:
            rows.pop()
            missing.append(p)
    runs = pd.DataFrame(rows, columns=RUN_COLUMNS if not rows else None)
    return RunStatus(planned, root, runs, existed, trained, missing, dict(blocked), max_new_runs,
                     tuple(problems.values()))


def short_message(err: Exception) -> str:
    """An error's one line with the project-relative path of the file it names."""
    text = str(err)
    path = text.split(":", 1)[0]
    return short_path(path) + text[len(path):] if path.endswith("run.json") else text


def _run_row(run: dict, planned: PlannedRun, path: Path) -> dict[str, Any]:
    cfg, metrics, prov = run["config"], run["metrics"], run.get("provenance", {})
    hw, pkgs, code, weights = (prov.get(k) or {} for k in ("hardware", "packages", "code", "weights"))
    row = {k: v for k, v in planned.labels.items() if not k.startswith("_")}
    row.update(dataset=cfg["dataset"], method=cfg["method"], tier=cfg["tier"], seed=cfg["seed"],
               forget="+".join(sorted(cfg["forget"])), n_forget=len(cfg["forget"]))
    row.update({k: metrics.get(k) for k in ("h", "mem", "for", "domain_acc_probe", "domain_acc_head")})
    data = run.get("data") or {}  # layout and split protocol (runs before they were recorded have none)
    row.update(path=str(path), commit=code.get("commit"), dirty=code.get("dirty"), adu_core=pkgs.get("adu-core"),
               torch=pkgs.get("torch"), weights=weights.get("pretrained") or weights.get("name"),
               weights_sha256=weights.get("sha256"),
               random_weights=bool(weights.get("random", weights.get("pretrained") in (None, "random"))),
               data_sha256=prov.get("data_sha256"), data_layout=data.get("layout"),
               data_protocol=data.get("protocol"),
               device=hw.get("gpu") or hw.get("device"), gpu=hw.get("gpu"), precision=prov.get("precision"),
               total_s=(run.get("timings") or {}).get("total_s"))
    return row
