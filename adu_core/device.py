"""Which device a run uses, how it computes, and waiting for it: shared by training, grouped runs and the benchmarks.

Mixed precision on CUDA is chosen by the GPU's compute capability, not by ``torch.cuda.is_bf16_supported()``:
recent torch answers True there on GPUs that only *emulate* bf16 (a T4, capability 7.5, has no bf16 tensor cores,
so bf16 runs far slower than fp16). bf16 is native from capability 8.0 on (Ampere: A100, A10, RTX 30xx; Ada; Hopper);
below that the trainer autocasts to fp16 and scales the loss with a ``GradScaler``.
"""

from __future__ import annotations

import torch

__all__ = ["NATIVE_BF16_CAPABILITY", "cuda_capability", "native_bf16", "precision_note", "resolve_device",
           "synchronize"]

NATIVE_BF16_CAPABILITY = (8, 0)


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


def cuda_capability(device: torch.device) -> tuple[int, int] | None:
    """The CUDA compute capability of ``device`` ((7, 5) on a T4, (8, 0) on an A100), None off CUDA."""
    if device.type != "cuda":
        return None
    major, minor = torch.cuda.get_device_capability(device)
    return int(major), int(minor)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware: CUDA capability 8.0 or newer (see the module doc)."""
    capability = cuda_capability(device)
    return capability is not None and capability >= NATIVE_BF16_CAPABILITY


def precision_note(asked: str, dtype: torch.dtype | None, device: torch.device) -> str:
    """One line for run.json: what ran and why (``asked`` is the config's ``precision``)."""
    ran = {torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast with loss scaling (GradScaler)"}.get(
        dtype, "fp32")
    capability = cuda_capability(device)
    where = f"CUDA capability {capability[0]}.{capability[1]}" if capability else device.type
    if asked != "auto":
        emulated = dtype is torch.bfloat16 and capability is not None and capability < NATIVE_BF16_CAPABILITY
        return f"{ran}: precision={asked} as asked on {where}" + (" (bf16 is emulated here, slow)" if emulated else "")
    if capability is not None:
        why = "native bf16" if dtype is torch.bfloat16 else "no native bf16 below capability 8.0"
        return f"{ran}: auto on {where} ({why})"
    return f"{ran}: auto on the {where}" + (" (bf16 units)" if dtype is torch.bfloat16 else "")
