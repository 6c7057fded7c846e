"""Issue 27, item 1: mixed precision on CUDA is chosen by compute capability (a T4 emulates bf16), and recorded.

No GPU is needed: the capability is faked. ``torch.cuda.is_bf16_supported`` is faked to True throughout, as this
torch answers on a T4, so a choice made by it would pick bf16 there.
"""

from __future__ import annotations

import pytest
import torch

from adu_core import device as dev
from adu_core import train
from adu_core.config import make_config

CUDA = torch.device("cuda")


@pytest.fixture
def fake_gpu(monkeypatch):
    def set_capability(major: int, minor: int) -> None:
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, minor))

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what torch says on a T4
    return set_capability


@pytest.mark.parametrize(("capability", "dtype"), [
    ((7, 5), torch.float16),   # T4 (Colab's free GPU): no bf16 tensor cores
    ((7, 0), torch.float16),   # V100
    ((6, 1), torch.float16),   # P100 / GTX 10xx
    ((8, 0), torch.bfloat16),  # A100
    ((8, 6), torch.bfloat16),  # A10, RTX 30xx
    ((9, 0), torch.bfloat16),  # H100
])
def test_auto_precision_follows_the_compute_capability(fake_gpu, capability, dtype):
    fake_gpu(*capability)
    assert train.autocast_dtype(make_config("office_home"), CUDA) is dtype


def test_fp16_is_loss_scaled_and_the_choice_is_explained(fake_gpu):
    fake_gpu(7, 5)
    cfg = make_config("office_home")
    dtype = train.autocast_dtype(cfg, CUDA)
    assert train.precision_name(dtype) == "fp16"
    note = dev.precision_note(cfg.precision, dtype, CUDA)
    assert note == ("fp16 autocast with loss scaling (GradScaler): auto on CUDA capability 7.5 "
                    "(no native bf16 below capability 8.0)")
    # the trainer scales the loss exactly when the autocast dtype is fp16 (Trainer.fit_gradient)
    scaler = torch.amp.GradScaler("cpu", enabled=dtype == torch.float16)
    assert scaler.is_enabled()
    fake_gpu(8, 0)
    assert dev.precision_note("auto", train.autocast_dtype(cfg, CUDA), CUDA) == \
        "bf16 autocast: auto on CUDA capability 8.0 (native bf16)"


def test_explicit_precision_wins_and_emulated_bf16_is_named(fake_gpu):
    fake_gpu(7, 5)
    cfg = make_config("office_home", precision="bf16")
    assert train.autocast_dtype(cfg, CUDA) is torch.bfloat16
    assert "emulated" in dev.precision_note("bf16", torch.bfloat16, CUDA)
    assert train.autocast_dtype(make_config("office_home", precision="fp32"), CUDA) is None


def test_run_json_records_the_precision_and_why(tmp_path):
    result = train.run_experiment(make_config("synthetic", forget=("sketch",), epochs=1), tmp_path, progress=False)
    prov = result["provenance"]
    assert prov["precision"] == "fp32" and prov["precision_note"] == "fp32: precision=fp32 as asked on cpu"
