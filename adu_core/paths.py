"""Where the project lives, wherever the code runs from (a notebook in book/, a shell elsewhere, Colab).

The project root is the folder that holds both ``_config.yml`` (the book) and ``adu_core/`` (the library). It is
looked for, in this order:

1. ``ADU_PROJECT_ROOT``, when set (an explicit choice always wins; it must be a project root);
2. the current directory and its parents (Jupyter and papermill run a notebook in its own folder, so ``book/``
   leads to the root);
3. the folder above this package and its parents (an editable install or a plain clone on ``sys.path``);
4. otherwise the current directory (a non-editable install, e.g. on Colab: results land in ``./results``).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["is_project_root", "project_relative", "project_root", "resolve_path", "results_dir"]

PROJECT_ROOT_ENV = "ADU_PROJECT_ROOT"
RESULTS_DIR_ENV = "ADU_RESULTS_DIR"


def is_project_root(path: Path) -> bool:
    """True where ``path`` holds the book's ``_config.yml`` and the ``adu_core/`` package."""
    return (path / "_config.yml").is_file() and (path / "adu_core").is_dir()


def _search_up(start: Path) -> Path | None:
    for candidate in (start, *start.parents):
        if is_project_root(candidate):
            return candidate
    return None


def project_root() -> Path:
    """The project's root folder (see the module doc for the search order)."""
    explicit = os.environ.get(PROJECT_ROOT_ENV)
    if explicit:
        root = Path(explicit).expanduser().resolve()
        if not is_project_root(root):
            raise FileNotFoundError(f"{PROJECT_ROOT_ENV}={explicit!r} holds no _config.yml and adu_core/")
        return root
    cwd = Path.cwd().resolve()
    return _search_up(cwd) or _search_up(Path(__file__).resolve().parent.parent) or cwd


def results_dir(tier: str) -> Path:
    """Where runs of ``tier`` keep their ``run.json`` files: ``<root>/results/<tier>``.

    ``ADU_RESULTS_DIR`` replaces ``<root>/results`` (the tier stays a sub-folder). Nothing is created here.
    """
    if not tier or tier in {".", ".."} or any(sep in tier for sep in "/\\"):
        raise ValueError(f"tier must be a plain folder name, got {tier!r}")
    override = os.environ.get(RESULTS_DIR_ENV)
    base = Path(override).expanduser().resolve() if override else project_root() / "results"
    return base / tier


def resolve_path(path: str | os.PathLike) -> Path:
    """A path as given when it exists (absolute, or relative to the current directory), else relative to the project
    root: configs record project files (``models/testbed/testbed_clip.pt``) relative, so a run.json made on one
    machine names the same file on another, whatever the working directory."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    candidate = project_root() / p
    return candidate if candidate.exists() else p


def project_relative(path: str | os.PathLike) -> str:
    """``path`` relative to the project root when it lies inside it (POSIX separators), else unchanged."""
    p = Path(path).expanduser()
    try:
        return p.resolve().relative_to(project_root()).as_posix()
    except ValueError:
        return str(path)
