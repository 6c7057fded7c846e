"""Shared test set-up: offline hubs, two threads, fixed seeds, and fixtures for data locations.

The no-network guard itself is the plugin ``tests/no_network.py`` (loaded by ``addopts`` in pyproject.toml).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

# Set before anything imports huggingface_hub / transformers / open_clip: they read these at import time.
for _name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ[_name] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# Tests never write into the user's cache: decoded-image and feature caches go to a per-session folder.
if "ADU_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["ADU_CACHE_DIR"] = tempfile.mkdtemp(prefix="adu-test-cache-")

pytest_plugins = ("pytester",)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SEED = 0
THREADS = 1  # tiny test models: one intra-op thread avoids OpenMP spinning against other processes


def _seed_everything(seed: int = SEED) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pytest_sessionstart(session: pytest.Session) -> None:
    import torch

    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    _seed_everything()


@pytest.fixture(autouse=True)
def _reseed() -> None:
    """Every test starts from the same seeds, whatever ran before it."""
    _seed_everything()


@pytest.fixture
def tmp_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data root: ``ADU_DATA_ROOT`` -> ``tmp/data``, ``ADU_CACHE_DIR`` -> ``tmp/cache``; returns the data root."""
    data_root = tmp_path / "data"
    cache_dir = tmp_path / "cache"
    data_root.mkdir()
    cache_dir.mkdir()
    monkeypatch.setenv("ADU_DATA_ROOT", str(data_root))
    monkeypatch.setenv("ADU_CACHE_DIR", str(cache_dir))
    return data_root


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The read-only real datasets in ``../shared/datasets`` beside the repository (skips where absent)."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"no shared datasets at {SHARED_DATASETS}")
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
