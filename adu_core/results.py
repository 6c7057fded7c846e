"""Results store: one ``run.json`` per run, written atomically, found by path, read back into tables.

Layout: ``<root>/<dataset>/<method>/forget-<d1+d2>/seed<k>[_<overrides>]/run.json`` where ``<overrides>`` is a short
hash of the config fields that differ from the tier defaults, so ablations and sweeps never collide with the
main runs and a run that exists is found again (and skipped) without reading any log.

Besides ``config``, ``metrics``, ``timings`` and ``provenance`` (code, packages, weights with the architecture really
built and whether they are random, data manifest sha256, hardware, ``precision`` and ``precision_note``: what ran
and why), a run records its data under ``data`` (:meth:`adu_core.data.Dataset.data_record`): ``layout`` (which
on-disk layout was read, e.g. Office-Home ``original`` or Dassl's ``dassl``), ``protocol`` (the split protocol's
id), ``authors_protocol`` (whether it is the paper authors' own), ``protocol_note``, ``test_images`` (evaluated,
after any cap) and ``test_split_images``.

This module knows configs, not methods: the switches a method implies (``Method.config_overrides``, e.g. the
Baseline's ``ddl=False``) are passed in by the caller (:func:`adu_core.train.run_folder` does).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from .config import RunConfig, make_config
from .paths import project_root

SCHEMA = "adu-run/1"


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON to a temp file in the same folder, fsync, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False, default=_jsonable)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def overrides_of(cfg: RunConfig, implied: Mapping[str, Any]) -> dict[str, Any]:
    """Fields that differ from the tier defaults for this dataset/method (identity fields excluded); ``implied``:
    the switches ``cfg.method`` implies, which are part of the method rather than overrides."""
    base = make_config(cfg.dataset, cfg.tier, method=cfg.method, forget=cfg.forget, seed=cfg.seed)
    ref = {**base.to_dict(), **implied}
    mine = cfg.to_dict()
    return {k: v for k, v in mine.items() if ref.get(k) != v and k not in ("data_root", "device")}


def run_dir(root: str | os.PathLike, cfg: RunConfig, implied: Mapping[str, Any]) -> Path:
    """``<root>/<dataset>/<method>/forget-<d1+d2>/seed<k>[_<overrides hash>]``; ``implied`` as for
    :func:`overrides_of`."""
    forget = "+".join(sorted(cfg.forget))
    name = f"seed{cfg.seed}"
    extra = overrides_of(cfg, implied)
    if extra:
        import hashlib

        name += "_" + hashlib.sha256(json.dumps(extra, sort_keys=True).encode()).hexdigest()[:8]
    return Path(root) / cfg.dataset / cfg.method / f"forget-{forget}" / name


def git_version(root: Path | None = None) -> dict[str, Any]:
    root = root or project_root()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "adu_core"],
                                    cwd=root, capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def package_versions(names: Iterable[str] = ("adu-core", "torch", "torchvision", "open_clip_torch", "numpy")) -> dict:
    out = {"python": sys.version.split()[0]}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def device_info(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"device": device, "platform": platform.platform(), "cpu": platform.processor() or
                            platform.machine(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    return info


def provenance(device: str, weights: dict, data_sha256: str) -> dict[str, Any]:
    return {"code": git_version(), "packages": package_versions(), "weights": weights, "data_sha256": data_sha256,
            "hardware": device_info(device), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


class RunFileError(ValueError):
    """A run.json that is not a run of this project (truncated, hand-edited, foreign); the message names the file,
    what is wrong and the fix, in one line."""


def read_run(path: str | os.PathLike) -> dict[str, Any]:
    """A run.json, checked: valid JSON of this project's schema with a config and Mem/For/H metrics."""
    path = Path(path)
    fix = "delete it to train the run again, or restore it from git"
    try:
        run = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise RunFileError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
                           f"{fix}") from None
    except OSError as err:
        raise RunFileError(f"{path}: cannot be read ({err.strerror}); {fix}") from None
    if not isinstance(run, dict) or run.get("schema") != SCHEMA:
        found = run.get("schema") if isinstance(run, dict) else type(run).__name__
        raise RunFileError(f"{path}: not a run of this project (schema {found!r}, expected {SCHEMA!r}); {fix}")
    cfg, metrics = run.get("config"), run.get("metrics")
    missing = [k for k in ("dataset", "method", "seed", "tier", "forget") if not isinstance(cfg, dict) or k not in cfg]
    missing += [f"metrics.{k}" for k in ("mem", "for", "h")
                if not isinstance(metrics, dict) or not isinstance(metrics.get(k), int | float)]
    if missing:
        raise RunFileError(f"{path}: incomplete run (missing or not a number: {', '.join(missing)}); {fix}")
    return run


def load_runs(root: str | os.PathLike, problems: list[str] | None = None):
    """All run.json files under ``root`` as a flat pandas DataFrame (one row per run). A file that is not a valid
    run is left out; its one-line reason goes to ``problems`` (or raises, without a list)."""
    import pandas as pd

    rows = []
    for path in sorted(Path(root).rglob("run.json")):
        try:
            run = read_run(path)
        except RunFileError as err:
            if problems is None:
                raise
            problems.append(str(err))
            continue
        cfg = run["config"]
        row = {k: cfg[k] for k in ("dataset", "method", "seed", "tier")}
        row.update(forget="+".join(sorted(cfg["forget"])), n_forget=len(cfg["forget"]), path=str(path))
        row.update({k: run["metrics"][k] for k in ("mem", "for", "h")})
        row["domain_acc_probe"] = run["metrics"].get("domain_acc_probe")
        row["domain_acc_head"] = run["metrics"].get("domain_acc_head")
        row["overrides"] = json.dumps(run.get("overrides", {}), sort_keys=True)
        rows.append(row)
    return pd.DataFrame(rows)
