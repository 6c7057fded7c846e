"""adu_core: Approximate Domain Unlearning (Kawamura et al., NeurIPS 2025) on open_clip — the method, as a library.

What a builder imports (names below are loaded lazily, so ``import adu_core`` and ``adu --help`` stay cheap)::

    from adu_core import make_config, run_experiment
    result = run_experiment(make_config("office_home", forget=("clipart",), method="adu"), "runs/oh-clipart")

Modules: ``backbones`` (open_clip loading), ``prompting`` (the prompted ViT and InstaPG), ``losses``
(L_memorize, L_forget, DDL), ``methods`` (the registry: ADU, Baseline, LP++, CLIPFit, BBF, zero-shot), ``config``,
``train`` and ``evaluate``, ``metrics``, ``results`` (run.json I/O), ``data`` (datasets and splits), ``multirun`` and
``dispatch`` (grids of runs), ``cli`` (the ``adu`` command).

Not here, and never imported from here: the book's engine (the package ``adu_book``) and the benchmarks
(``benchmarks/`` in the repository). Both import this library.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "RunConfig": "config",
    "make_config": "config",
    "run_experiment": "train",
    "run_folder": "train",
    "load_trained": "train",
    "get_method": "methods",
    "list_methods": "methods",
    "get_dataset": "data",
    "load_clip": "backbones",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    # Lazy: `import adu_core` must stay cheap (the CLI's --help should not import torch).
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
