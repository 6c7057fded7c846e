"""How close runs trained in one pass are to the same runs trained alone, on this device, in fp32 and bf16.

tests/test_multirun.py asserts the equality on CPU in fp32. On a GPU, matrix products of a different batch size may
pick other kernels, so results agree to rounding; this script reports by how much (max relative difference of the
loss history, trained-state difference, and the metrics). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from adu_core.backbones import load_clip, model_config, save_checkpoint
from adu_core.config import make_config
from adu_core.multirun import run_grid
from adu_core.train import run_experiment


def compare(device: str, precision: str, root: Path, ckpt: str, epochs: int) -> dict:
    base = {"epochs": epochs, "device": device, "precision": precision, "pretrained": ckpt}
    cfgs = [make_config("synthetic", forget=("sketch",), seed=1, **base),
            make_config("synthetic", forget=("photo",), seed=2, **base),
            make_config("synthetic", forget=("cartoon", "painting"), seed=1, method="baseline", **base)]
    grouped = run_grid(cfgs, [root / f"{precision}-g{i}" for i in range(3)], max_runs=3, progress=False)
    out = {"history_max_rel_diff": 0.0, "state_max_abs_diff": 0.0, "metrics": []}
    for i, (cfg, g) in enumerate(zip(cfgs, grouped, strict=True)):
        a = run_experiment(cfg, root / f"{precision}-a{i}", progress=False)
        for hg, ha in zip(g["history"], a["history"], strict=True):
            for k in ha:
                if isinstance(ha[k], float) and ha[k]:
                    out["history_max_rel_diff"] = max(out["history_max_rel_diff"], abs(hg[k] - ha[k]) / abs(ha[k]))
        sg = torch.load(root / f"{precision}-g{i}" / "trained.pt", weights_only=True)
        sa = torch.load(root / f"{precision}-a{i}" / "trained.pt", weights_only=True)
        out["state_max_abs_diff"] = max(out["state_max_abs_diff"],
                                        max(float((sg[k] - sa[k]).abs().max()) for k in sa))
        out["metrics"].append({k: (g["metrics"][k], a["metrics"][k]) for k in ("mem", "for", "h")})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        torch.manual_seed(0)
        ckpt = root / "tiny.pt"
        save_checkpoint(load_clip("adu-tiny").model, {"name": "adu-tiny", **model_config("adu-tiny")}, ckpt,
                        half=False)
        result = {"device": args.device,
                  **{prec: compare(args.device, prec, root, str(ckpt), args.epochs) for prec in ("fp32", "bf16")}}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
