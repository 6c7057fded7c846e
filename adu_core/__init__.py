"""adu_core: Approximate Domain Unlearning (Kawamura et al., NeurIPS 2025) on open_clip."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_clip"]


def __getattr__(name: str):
    # Lazy: `import adu_core` must stay cheap (the CLI's --help should not import torch).
    if name == "load_clip":
        from .backbones import load_clip

        return load_clip
    raise AttributeError(name)
