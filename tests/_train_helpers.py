"""Shared scaffolding of the training tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adu_core.train import Trainer, run_experiment


def as_stored(value: Any) -> Any:
    """A result as its JSON file holds it (tuples as lists), to compare what a call returned with what was written."""
    return json.loads(json.dumps(value))


def interrupt_after_epoch(monkeypatch: pytest.MonkeyPatch, cfg, out: Path, epoch: int) -> None:
    """Run ``cfg`` into ``out`` and kill it (KeyboardInterrupt) right after it checkpoints ``epoch``."""
    original = Trainer._save

    def save_then_die(self, method, opt, epochs_done):
        original(self, method, opt, epochs_done)
        if epochs_done == epoch:
            raise KeyboardInterrupt

    with monkeypatch.context() as patched:  # the real _save is back for the resumed run
        patched.setattr(Trainer, "_save", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            run_experiment(cfg, out, progress=False)
