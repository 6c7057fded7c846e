"""Which device a run uses, and waiting for it: shared by training, grouped runs and the benchmarks."""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "synchronize"]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when a GPU is visible, else the CPU; any other name as torch spells it (``cuda:1``)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but no CUDA GPU is visible")
    return torch.device(name)


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (CUDA runs asynchronously; the CPU needs no wait), e.g. before timing."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
