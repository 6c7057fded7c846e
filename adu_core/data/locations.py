"""Where data and caches live.

- data root: explicit argument > ``ADU_DATA_ROOT`` > ``<user cache>/adu/data``. Datasets sit in sub-folders
  (``<root>/pacs``, ``<root>/office_home``, ...). The root may be read-only (the shared PACS copy is): loading and
  verifying never write there; only ``download`` does.
- cache dir: explicit argument > ``ADU_CACHE_DIR`` > ``<user cache>/adu/cache``. Generated few-shot lists and the
  decoded tensor cache go here, never under the data root.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DATA_ROOT_ENV = "ADU_DATA_ROOT"
CACHE_DIR_ENV = "ADU_CACHE_DIR"


def user_cache_dir() -> Path:
    """The platform's per-user cache folder (XDG on Linux, ~/Library/Caches on macOS, %LOCALAPPDATA% on Windows)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = str(Path.home() / "Library" / "Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base)


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The data root (nothing is created)."""
    if root is not None and str(root) != "":
        return Path(root).expanduser().resolve()
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return user_cache_dir() / "adu" / "data"


def cache_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder for generated splits and tensor caches (nothing is created)."""
    if path is not None and str(path) != "":
        return Path(path).expanduser().resolve()
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return user_cache_dir() / "adu" / "cache"
